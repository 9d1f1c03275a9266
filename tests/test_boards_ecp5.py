# amaranth: UnusedElaboratable=no
"""The ecp5 target: a real bitstream of a small network with the YoWASP tools, the board tops of
every board prepared for the toolchain, a --luts budget of LUT4s, the PLL search, the
UART-matched fold, the fit check."""
import json
import subprocess
import sys

import pytest

from boards import TARGETS, BuildError, DoesNotFit
from boards.ecp5 import (BoardTop, board_platform, check_fit, check_timing, parse_utilisation,
                         pll_config, uart_fold)
from boards.uart_top import UartAccelerator
from gen.fold import fold_for_luts, mvu_cycles
from gen.graph import build_graph
from gen.ir import load_network
from tests.handmade import write_tiny_network

ECP5 = TARGETS["ecp5"]


def gen(*args):
    return subprocess.run([sys.executable, "-m", "gen", *args], capture_output=True, text=True)


def test_bitstream_of_a_small_network_on_the_ulx3s(tmp_path):
    model = write_tiny_network(tmp_path)
    out = tmp_path / "out"
    run = gen("build", "--target", "ecp5", "--board", "ulx3s", "--model", str(model),
              "--out", str(out))
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    ecp5 = report["ecp5"]
    assert report["target"] == "ecp5" and ecp5["part"] == "LFE5U-85F-6BG381C"
    bitstream = (out / "ecp5" / "xnorflow.bit").read_bytes()
    assert len(bitstream) > 10_000 and bitstream[:2] == b"\xff\x00"  # ecppack's header comment
    assert 100 < ecp5["lut4"]["used"] < ecp5["lut4"]["available"] == 83_640
    assert ecp5["ff"]["used"] > 50 and ecp5["ebr"]["available"] == 208
    assert ecp5["fmax_mhz"] > ecp5["clock_mhz"] == 25.0
    assert ecp5["uart_divisor"] == 25 and ecp5["pll"] is None
    assert report["uart_frames_per_second"] == pytest.approx(1e6 / (10 * 12 * 12 * 3))
    assert f"Fmax {ecp5['fmax_mhz']} MHz" in run.stdout
    assert report["interval_cycles"] <= 10 * 25 * 12 * 12 * 3  # keeps up with the UART


def test_a_luts_budget_counts_nextpnrs_lut4s_and_is_chosen_again_by_them(tmp_path):
    # 3,000 LUT4s: the model's pick (the 1,296-cycle fold, 1,141 model LUTs, 2,510 at 2.2 LUT4s
    # a model LUT) counts 2,139 in nextpnr, under by enough to try the 864-cycle fold (1,440).
    model, out = write_tiny_network(tmp_path), tmp_path / "out"
    run = gen("build", "--target", "ecp5", "--model", str(model), "--luts", "3000",
              "--out", str(out))
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    rounds, net = report["lut_budget_rounds"], load_network(model)
    first, second = rounds[0], rounds[1]
    scale = ECP5.luts_per_model_lut

    def interval_within(budget):
        return build_graph(net, fold_for_luts(net, budget, None, scale)).interval

    assert first["interval_cycles"] == interval_within(3000)
    miss = first["nextpnr_lut4"] - scale * first["resource_model_lut"]
    assert second["interval_cycles"] == interval_within(3000 - miss) < first["interval_cycles"]
    within = [r for r in rounds if r["nextpnr_lut4"] <= 3000]
    kept = min(within, key=lambda r: r["interval_cycles"])
    assert [r["kept"] for r in rounds] == [r is kept for r in rounds]
    assert kept["nextpnr_lut4"] == report["ecp5"]["lut4"]["used"]
    assert kept["interval_cycles"] == report["interval_cycles"]
    tried = ", then ".join(f"nextpnr counted {r['nextpnr_lut4']:,} LUT4s for the "
                           f"{r['interval_cycles']:,}-cycle fold" for r in rounds if not r["kept"])
    assert (f"--luts 3,000: the resource model puts the chosen fold at "
            f"{kept['resource_model_lut']:,} UltraScale+ LUTs (chosen again: {tried}); nextpnr "
            f"counts {kept['nextpnr_lut4']:,}, within the budget") in run.stdout


@pytest.mark.parametrize("board", [b.name for b in ECP5.boards])
def test_every_board_top_prepares_for_the_toolchain(board, tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    spec = ECP5.board(board)
    platform = board_platform(spec, spec.default_part)
    oscillator = platform.default_clk_frequency / 1e6
    pll = None if spec.clock_mhz == oscillator else pll_config(oscillator, spec.clock_mhz)
    core = UartAccelerator(build_graph(net, uart_fold(net, 25)), divisor=25)
    plan = platform.prepare(BoardTop(core, board_mhz=oscillator, clock_mhz=spec.clock_mhz,
                                     pll=pll), name="xnorflow")
    rtlil = plan.files["xnorflow.il"]
    rtlil = rtlil.decode() if isinstance(rtlil, bytes) else rtlil
    assert ("EHXPLLL" in rtlil) == (pll is not None)
    assert (board == "ecpix5") == (pll is not None)
    lpf = plan.files["xnorflow.lpf"]
    lpf = lpf.decode() if isinstance(lpf, bytes) else lpf
    assert "uart_0__rx" in lpf and "uart_0__tx" in lpf
    assert "dfu-suffix" not in plan.files["build_xnorflow.sh"]


def test_pll_search_respects_the_vco_and_pfd_ranges():
    config = pll_config(100, 50)
    assert config["output_mhz"] == 50 and 400 <= config["vco_mhz"] <= 800
    assert 100 / config["input_div"] * config["feedback_div"] == 50
    odd = pll_config(25, 66.6)
    assert abs(odd["output_mhz"] - 66.6) < 0.5
    with pytest.raises(BuildError, match="no ECP5 PLL setting makes 2000 MHz"):
        pll_config(25, 2000)


def test_uart_fold_keeps_every_layer_within_the_uart_frame_time(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    for divisor in (4, 25, 100):
        budget = 10 * divisor * 12 * 12 * 3
        fold = uart_fold(net, divisor)
        assert all(mvu_cycles(layer, fold[layer.name]) <= budget for layer in net.compute_layers)
    lanes = [sum(f.pe * f.simd for f in uart_fold(net, divisor).values())
             for divisor in (1, 4, 25, 100)]
    assert lanes == sorted(lanes, reverse=True)     # a slower UART never takes more lanes
    # slow UART: the cheapest fold of all, which need not be one lane per layer (a narrow FIFO
    # or line buffer twice as deep can take more LUT RAM)
    assert uart_fold(net, 100) == uart_fold(net, 10 ** 6)


NEXTPNR_LOG = """\
Info: Device utilisation:
Info: \t          TRELLIS_IO:       8/    197     4%
Info: \t                DCCA:       1/     56     1%
Info: \t              DP16KD:      12/     56    21%
Info: \t          TRELLIS_FF:    9210/  24288    37%
Info: \t        TRELLIS_COMB:   31877/  24288   131%
Info: \t         TRELLIS_RAMW:      40/   3036     1%

Info: Placed 8 cells based on constraints.
"""


def test_utilisation_is_parsed_and_an_overfull_part_stops_the_build():
    table = parse_utilisation(NEXTPNR_LOG)
    assert table["TRELLIS_COMB"] == (31877, 24288) and table["DP16KD"] == (12, 56)
    assert len(table) == 6
    with pytest.raises(DoesNotFit, match=r"^the design does not fit LFE5U-25F-6BG381C: it needs "
                                          r"31877 LUT4s, the part has 24288$") as past:
        check_fit(table, "LFE5U-25F-6BG381C")
    assert (past.value.resource, past.value.used, past.value.available) == ("LUT4s", 31877, 24288)
    check_fit({"TRELLIS_COMB": (10, 24288)}, "LFE5U-25F-6BG381C")


def test_a_missed_clock_stops_the_build_with_the_fmax():
    log = "Info: ...\nERROR: Max frequency for clock '$glbnet$core.clk': 86.21 MHz (FAIL at 150.01 MHz)\n"
    with pytest.raises(BuildError, match=r"^the design does not meet timing on LFE5UM5G-85F-8BG554I: "
                                         r"Fmax 86.21 MHz, clock 150.01 MHz; build with --clock "
                                         r"86.21 or less$"):
        check_timing(log, "LFE5UM5G-85F-8BG554I")
    check_timing("Info: Max frequency for clock 'clk': 61.55 MHz (PASS at 25.00 MHz)", "x")
