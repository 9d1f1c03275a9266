"""The ultrascale target: AXI4-Stream Verilog, overlay layout, the Vivado script run in Tcl with
Vivado's commands stubbed, the Yosys resource estimate and the fit check; the target list."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from amaranth.back import verilog

from boards import BuildError, TARGETS
from boards.vivado import PYTHON_TCL, dry_run, tcl_command
from boards.yosys import (PART_CAPACITY, check_fit, estimate_xcup, summarize_xcup,
                          synthesis_failure)
from gen.build import build
from gen.ir import load_network
from gen.networks import random_network
from hw.mvu import MatrixVectorUnit
from sim.runner import lint
from tests.handmade import write_tiny_network

# A developer machine without any Tcl skips the dry run; CI (CI=true) never does, so a CI image
# that lost Tcl fails here instead of dropping the check of the Vivado script.
IN_CI = bool(os.environ.get("CI"))
needs_tcl = pytest.mark.skipif(tcl_command() is None and not IN_CI, reason="the Vivado script's "
                               "dry run needs a Tcl interpreter: neither tclsh nor Python's "
                               "tkinter is installed")


def gen(*args):
    return subprocess.run([sys.executable, "-m", "gen", *args], capture_output=True, text=True)


def build_tiny(directory, estimate):
    net = load_network(write_tiny_network(directory))
    out = directory / "out"
    report = build(net, out, target="ultrascale", board="ultra96", estimate=estimate, scores=True)
    return out, report


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("ultrascale"), estimate=False)


def test_build_writes_the_axis_top_layout_script_and_estimate(tmp_path):
    out, report = build_tiny(tmp_path, estimate=True)
    assert report["board"] == "ultra96" and report["part"] == "xczu3eg-sbva484-1-i"
    assert report["clock_mhz"] == 150.0
    text = (out / "xnorflow_axis.v").read_text()
    assert "module xnorflow_axis(" in text
    for port in ("ap_clk", "ap_rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
                 "s_axis_tlast", "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"):
        assert f"input {port};" in text or f" {port};" in text, port
    assert lint(out / "xnorflow_axis.v").returncode == 0
    layout = json.loads((out / "overlay.json").read_text())
    assert layout == report["axis_layout"] and layout["beat_bytes"] == 4
    assert layout["scores"] and layout["score_words"] == 7 and layout["label_words"] == 1
    resources = report["resources"]
    assert 200 < resources["lut"] < 20_000 and resources["ff"] > 100
    assert resources["available"]["lut"] == 70_560
    assert (out / "yosys_xcup.log").exists()


@needs_tcl
@pytest.mark.parametrize("board_files", [False, True])
def test_vivado_script_runs_in_tclsh_with_stubs(tiny_build, board_files):
    out, report = tiny_build
    run = dry_run(out / "vivado" / "build.tcl",
                  board_parts="avnet.com:ultra96v2:part0:1.2" if board_files else "")
    calls = [" ".join(call) for call in run.calls]
    names = [call[0] for call in run.calls]

    def index(needle):
        return next(i for i, call in enumerate(calls) if needle in call)

    # The IP is packaged from the AXI4-Stream top, then used in the block design.
    assert index("add_files -norecurse") < index("ipx::package_project") < index("ipx::save_core")
    assert calls[index("add_files -norecurse")].endswith("/vivado/../xnorflow_axis.v")
    assert "set_property top xnorflow_axis" in calls[index("set_property top")]
    for association in ("-busif s_axis -clock ap_clk", "-busif m_axis -clock ap_clk",
                        "-clock ap_clk -reset ap_rst_n"):
        assert index("ipx::package_project") < index(f"ipx::associate_bus_interfaces {association}")
    cells = [call[-1] for call in run.calls if call[0] == "create_bd_cell"]
    assert cells == ["ps", "dma", "accel", "rst", "ctrl", "mem", "irq"]
    assert "xnorflow.org:xnorflow:xnorflow_axis:1.0" in calls[index("create_bd_cell -type ip -vlnv xnorflow")]
    dma = calls[index("c_include_sg")]
    assert f"CONFIG.c_m_axis_mm2s_tdata_width {8 * report['axis_layout']['beat_bytes']}" in dma
    assert "CONFIG.c_s_axis_s2mm_tdata_width 32" in dma
    assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 150" in calls[index("PSU__USE__M_AXI_GP0")]
    assert index("connect_bd_intf_net /dma/M_AXIS_MM2S /accel/s_axis") < index("validate_bd_design")
    assert index("launch_runs impl_1 -to_step write_bitstream") > index("make_wrapper")
    copies = [call for call in run.calls if call[:2] == ["file", "copy"]]
    assert [c[-1].rsplit("/", 1)[-1] for c in copies] == ["xnorflow.bit", "xnorflow.hwh",
                                                          "overlay.json"]
    # Board files: used (with the PS preset) when installed, else a warning and plain part.
    assert ("apply_bd_automation" in names) == board_files
    assert any(call.startswith("set_property board_part") for call in calls) == board_files
    assert any("WARNING: no board files" in line for line in run.printed) != board_files


@pytest.mark.parametrize("command", [None, pytest.param(
    [sys.executable, "-c", PYTHON_TCL], id="python-tcl", marks=pytest.mark.skipif(
        importlib.util.find_spec("tkinter") is None and not IN_CI,
        reason="Python's tkinter is not installed"))])
@needs_tcl
def test_dry_run_catches_a_mistyped_command_and_an_unknown_cell(tmp_path, command):
    script = tmp_path / "build.tcl"
    script.write_text("create_project p [file join /x p] -part x\nconect_bd_net a b\n")
    with pytest.raises(RuntimeError, match='invalid command name "conect_bd_net"'):
        dry_run(script, command=command)
    script.write_text("create_bd_cell -type ip -vlnv x:y:z:1 dma\nget_bd_pins dmb/aclk\n")
    with pytest.raises(RuntimeError, match="get_bd_pins dmb/aclk: no cell dmb"):
        dry_run(script, command=command)
    script.write_text("create_bd_cell -type ip -vlnv x:y:z:1 dma\nputs done\n")
    run = dry_run(script, command=command)
    assert run.printed == ["done"] and run.calls[0][0] == "create_bd_cell"


def test_estimate_summary_and_fit_check():
    cells = {"LUT2": 10, "LUT6": 5, "RAM64M8": 2, "SRLC32E": 3, "FDRE": 40, "FDSE": 2,
             "RAMB36E2": 3, "RAMB18E2": 3, "DSP48E2": 1, "CARRY8": 4, "MUXF7": 9}
    estimate = summarize_xcup(cells)
    assert estimate["lut"] == 15 + 16 + 3 and estimate["lut_as_memory"] == 19
    assert estimate["ff"] == 42 and estimate["bram36"] == 4.5 and estimate["dsp"] == 1
    assert check_fit(estimate, "xczu3eg-sbva484-1-i")["lut"] == 70_560
    assert check_fit(estimate, "xcvu9p-flga2104-2L-e") is None  # a part we have no figures for
    big = dict(estimate, lut=80_000)
    with pytest.raises(BuildError, match=r"does not fit xczu3eg-sbva484-1-i: it needs 80000 LUTs "
                                         r"\(Yosys estimate\), the part has 70560"):
        check_fit(big, "xczu3eg-sbva484-1-i")


def test_every_ultrascale_board_part_has_capacity_figures_for_the_fit_check():
    for board in TARGETS["ultrascale"].boards:
        for part in board.parts:
            assert part in PART_CAPACITY, f"{board.name}: {part}"


def test_a_yosys_out_of_webassembly_memory_says_how_to_build_anyway():
    assert synthesis_failure("top.v", "ERROR: no module") == (
        "yosys synth_xilinx of top.v failed: ERROR: no module")
    message = synthesis_failure("xnorflow_axis.v", "thrown Wasm exception")
    assert message.startswith("yosys synth_xilinx of xnorflow_axis.v failed: thrown Wasm exception")
    assert "--no-estimate" in message and "$YOSYS" in message and "\n" not in message


def test_weights_far_past_the_parts_block_rams_stop_before_any_verilog(tmp_path):
    # 18.9 M weight bits: the resource model puts the accelerator at 551 BRAM36, the xczu7ev 312.
    net = random_network("wide-mlp", (16, 16, 2), [("dense", 4096), ("dense", 4096),
                                                   ("dense", 10)], calibration_images=4)
    with pytest.raises(BuildError, match=r"^the design does not fit xczu7ev-ffvc1156-2-e: the "
                                         r"resource model puts it at 551 36 Kb block RAMs, the "
                                         r"part has 312; accepted: a part with more, --board "
                                         r"zcu102 \(912\)$"):
        build(net, tmp_path / "out", target="ultrascale", estimate=False)
    assert not (tmp_path / "out").exists()


def test_estimate_maps_a_512_deep_one_bit_input_buffer_to_lut_ram(tmp_path):
    # 512 words of 1 bit with one address for reading and writing: Yosys's own UltraScale+
    # library offers this RAM under an option its mapping file rejects (boards.yosys).
    unit = MatrixVectorUnit(weights=np.random.default_rng(0).integers(0, 2, (10, 512)),
                            thresholds=np.zeros((10, 1), int), pe=5, simd=1)
    (tmp_path / "mvu.v").write_text(verilog.convert(unit, name="mvu"))
    estimate = estimate_xcup(tmp_path / "mvu.v", "mvu")
    assert estimate["cells"].get("RAM512X1S") == 1 and estimate["lut_as_memory"] == 8
    assert 100 < estimate["lut"] < 1_000


def test_a_tool_past_its_time_limit_is_a_one_line_build_error(tmp_path):
    (tmp_path / "mvu.v").write_text(verilog.convert(MatrixVectorUnit(
        weights=np.ones((4, 8), int), thresholds=np.zeros((4, 1), int), pe=1, simd=1),
        name="mvu"))
    with pytest.raises(BuildError, match=r"^yosys synth_xilinx of mvu.v did not finish within "
                                         r"0.01 s$"):
        estimate_xcup(tmp_path / "mvu.v", "mvu", timeout=0.01)


def test_list_targets_names_every_board_and_part():
    run = gen("build", "--list-targets")
    assert run.returncode == 0, run.stderr
    for target in TARGETS.values():
        assert f"{target.name}:" in run.stdout
        for board in target.boards:
            assert f"--board {board.name}" in run.stdout
            for part in board.parts:
                assert part in run.stdout


def test_unknown_board_or_part_stops_in_one_line_without_output(tmp_path):
    out = tmp_path / "out"
    run = gen("build", "--board", "zedboard", "--out", str(out), "--no-estimate")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "target 'ultrascale' has no board 'zedboard'; accepted: zcu104, zcu102, kv260, ultra96" in run.stderr
    run = gen("build", "--target", "ecp5", "--part", "LFE5U-85F", "--out", str(out))
    assert run.returncode == 2 and "board 'ulx3s' has no part 'LFE5U-85F'; accepted: " \
                                   "LFE5U-85F-6BG381C" in run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
