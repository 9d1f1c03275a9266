"""The command line: build outputs, lint, help, and clean failures."""
import json
import subprocess
import sys

import pytest

from boards import TARGETS
from boards.axis import axis_top_resources
from boards.ecp5 import uart_fold
from boards.uart import uart_divisor
from gen.__main__ import fold_from_args, make_parser
from gen.fold import default_fold, fold_for_interval, fold_for_luts, load_fold, target_interval
from gen.ir import load_network
from gen.networks import DEFAULT_NETWORK
from gen.report import lut_budget_check
from sim.runner import lint
from tests.handmade import write_tiny_network


def gen(*args):
    return subprocess.run([sys.executable, "-m", "gen", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", [[], ["build"], ["sim"], ["report"]])
def test_every_subcommand_has_help(command):
    run = gen(*command, "--help")
    assert run.returncode == 0 and "usage:" in run.stdout


def test_build_of_the_shipped_network_writes_a_lint_clean_project(tmp_path):
    out = tmp_path / "out"
    run = gen("build", "--target", "ultrascale", "--out", str(out), "--no-estimate")
    assert run.returncode == 0, run.stderr
    assert f"shipped default network '{load_network(DEFAULT_NETWORK).name}'" in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["part"] == "xczu7ev-ffvc1156-2-e" and report["interval_cycles"] > 0
    assert [layer["name"] for layer in report["layers"]][-1] == "label"
    conv0 = report["layers"][0]
    assert {"pe", "simd", "expected_cycles", "in_shape", "out_shape"} <= set(conv0)
    assert report["frames_per_second"] == pytest.approx(report["clock_mhz"] * 1e6 / report["interval_cycles"])
    net = load_network(out / "network.json")
    assert set(load_fold(out / "fold.json", net)) == {l.name for l in net.compute_layers}
    tcl = (out / "vivado" / "build.tcl").read_text()
    for needle in ("create_project", "xczu7ev-ffvc1156-2-e", "xnorflow_axis.v", "synth_1", "impl_1"):
        assert needle in tcl
    result = lint(out / "xnorflow_top.v")
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_failing_build_leaves_no_output_directory(tmp_path):
    fold = tmp_path / "fold.json"
    fold.write_text('{"layers": {"conv0": {"pe": 5}}}')
    out = tmp_path / "out"
    run = gen("build", "--fold", str(fold), "--out", str(out))
    assert run.returncode == 2
    mh = load_network(DEFAULT_NETWORK).compute_layers[0].mh
    assert run.stderr.strip().count("\n") == 0 and f"PE must divide MH={mh}, not 5" in run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [fold]


@pytest.mark.parametrize("out", ["taken", "taken/build"])
def test_a_file_in_the_way_of_the_output_directory_is_one_line(tmp_path, out):
    taken = tmp_path / "taken"
    taken.write_text("keep")
    run = gen("build", "--out", str(tmp_path / out), "--no-estimate")
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert f"output directory {tmp_path / out}: {taken} is a file" in run.stderr
    assert taken.read_text() == "keep" and list(tmp_path.iterdir()) == [taken]


def test_unknown_model_suffix_is_refused(tmp_path):
    run = gen("build", "--model", str(tmp_path / "net.pb"))
    assert run.returncode == 2 and "accepted: an xnorflow network header" in run.stderr
    assert "or a QONNX model (.onnx)" in run.stderr


def chosen_fold(command, *options):
    """The fold ``gen COMMAND OPTIONS`` would take for the shipped network."""
    net = load_network(DEFAULT_NETWORK)
    return fold_from_args(net, make_parser().parse_args([command, *options])).fold


@pytest.mark.parametrize("command", ["sim", "report", "build"])
def test_fps_and_luts_choose_the_fold_of_every_command(command):
    net = load_network(DEFAULT_NETWORK)
    assert (chosen_fold(command, "--fps", "30000", "--clock", "300")
            == fold_for_interval(net, target_interval(30_000, 300)))
    assert chosen_fold(command, "--luts", "20000") == fold_for_luts(net, 20_000, axis_top_resources)
    assert chosen_fold(command) == default_fold(net)


@pytest.mark.parametrize("command", ["sim", "report", "build"])
def test_the_ecp5_fold_keeps_up_with_the_uart_and_counts_luts_as_lut4s(command):
    """With ``--target ecp5`` every command takes the fold ``gen build`` makes there: by default
    the cheapest one that keeps up with the UART at the board's clock, and a ``--luts`` budget
    in LUT4s."""
    net = load_network(DEFAULT_NETWORK)
    ulx3s = uart_fold(net, uart_divisor(25e6, 1_000_000))
    assert chosen_fold(command, "--target", "ecp5") == ulx3s
    slower_uart = uart_fold(net, uart_divisor(50e6, 115_200))
    assert chosen_fold(command, "--target", "ecp5", "--board", "ecpix5",
                       "--baud", "115200") == slower_uart != ulx3s
    assert (chosen_fold(command, "--target", "ecp5", "--luts", "40000")
            == fold_for_luts(net, 40_000, None, TARGETS["ecp5"].luts_per_model_lut))


def test_report_prices_the_fold_in_the_target_s_luts_and_refuses_an_unknown_board():
    run = gen("report", "--target", "ecp5", "--luts", "40000")
    assert run.returncode == 0, run.stderr
    assert "frames/s at 25 MHz" in run.stdout and "LUT4s at 2.2 a model LUT" in run.stdout
    run = gen("report", "--target", "ecp5", "--board", "zcu104")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: target 'ecp5' has no board 'zcu104'; accepted: ulx3s, ecpix5, orangecrab"]


def build_tiny_within(tmp_path, luts):
    """``gen build --luts`` of the tiny network on the Ultra96, with Yosys' estimate: the run,
    its report and its output directory."""
    out = tmp_path / "out"
    run = gen("build", "--model", str(write_tiny_network(tmp_path)), "--luts", str(luts),
              "--board", "ultra96", "--out", str(out))
    assert run.returncode == 0, run.stderr
    return run, json.loads((out / "report.json").read_text()), out


def test_build_sets_the_luts_budget_against_yosys(tmp_path):
    run, report, _ = build_tiny_within(tmp_path, 100_000)
    assert report["lut_budget"] == 100_000
    model, counted = report["resource_model"]["lut"], report["resources"]["lut"]
    stages = sum(layer["resource_model"]["lut"] for layer in report["layers"])
    assert abs(model - stages - report["resource_model_top"]["lut"]) <= len(report["layers"])
    assert (f"--luts 100,000: the resource model puts the chosen fold at {model:,} LUTs; "
            f"Yosys counts {counted:,}, within the budget") in run.stdout


def test_a_fold_yosys_counts_past_the_luts_budget_is_chosen_again(tmp_path):
    # On the tiny network the model puts the 432-cycle fold at 2,137 LUTs and Yosys at 2,206:
    # a 2,150 budget passes the model's first choice, and Yosys' count sends the build on to
    # the next cheaper fold.
    run, report, out = build_tiny_within(tmp_path, 2150)
    first, last = report["lut_budget_rounds"]
    assert first["resource_model_lut"] <= 2150 < first["yosys_lut"] and not first["kept"]
    assert last == {"interval_cycles": report["interval_cycles"],
                    "resource_model_lut": report["resource_model"]["lut"],
                    "yosys_lut": report["resources"]["lut"], "kept": True}
    assert last["yosys_lut"] <= 2150 and last["interval_cycles"] > first["interval_cycles"]
    assert (f"(chosen again: Yosys counted {first['yosys_lut']:,} LUTs for the "
            f"{first['interval_cycles']:,}-cycle fold); Yosys counts {last['yosys_lut']:,}, "
            "within the budget") in run.stdout
    net = load_network(out / "network.json")
    assert load_fold(out / "fold.json", net) == fold_for_luts(
        net, first["resource_model_lut"] - (first["yosys_lut"] - 2150), axis_top_resources)


def test_a_fold_yosys_counts_well_under_the_luts_budget_is_traded_for_a_faster_one(tmp_path):
    # The model puts the 720-cycle fold at 1,867 LUTs and Yosys at 1,638: within a 1,900
    # budget by 262, which buys the 460-cycle fold (model 1,952, Yosys 1,735).
    run, report, out = build_tiny_within(tmp_path, 1900)
    first, last = report["lut_budget_rounds"]
    assert first["yosys_lut"] < first["resource_model_lut"] <= 1900 and not first["kept"]
    assert last["kept"] and last["interval_cycles"] == report["interval_cycles"]
    assert last["resource_model_lut"] > 1900 >= last["yosys_lut"]
    assert last["interval_cycles"] < first["interval_cycles"]
    assert (f"(chosen again: Yosys counted {first['yosys_lut']:,} LUTs for the "
            f"{first['interval_cycles']:,}-cycle fold)") in run.stdout
    net = load_network(out / "network.json")
    assert load_fold(out / "fold.json", net) == fold_for_luts(
        net, 1900 - (first["yosys_lut"] - first["resource_model_lut"]), axis_top_resources)


def test_a_luts_budget_overrun_says_by_how_much_and_what_to_ask():
    report = {"lut_budget": 50_000, "resource_model": {"lut": 49_460}}
    assert lut_budget_check(report).endswith("49,460 LUTs (no Yosys estimate to check it by)")
    report["resources"] = {"lut": 51_412}
    assert lut_budget_check(report).endswith("Yosys counts 51,412, 1,412 (2.8%) over the budget: "
                                             "ask for about 48,588 or set the fold with --fold")
    assert lut_budget_check({"resource_model": {"lut": 1}}) is None
