"""gen bench: FINN's CNV fold, the report files, per-layer cycles measured in Verilator, and
per-stage Fmax (benchmarks.stage_fmax)."""
import json

from gen.bench import finn_fold, run_bench, summary_line
from gen.fold import fold_for_interval, layer_cycles
from gen.graph import build_graph
from gen.networks import random_cnv, random_network
from sim.layer import measure_layer_cycles


def test_finn_fold_of_cnv_is_within_finns_published_interval():
    net = random_cnv()
    fold = finn_fold(net)
    assert [(f.pe, f.simd) for f in fold.values()][:3] == [(16, 3), (32, 32), (16, 32)]
    assert max(layer_cycles(layer, fold[layer.name]) for layer in net.compute_layers) <= 32_768


def small_net():
    return random_network("bench-small", (8, 8, 2), [("conv", 4, 3, 1), ("pool", 2),
                                                      ("dense", 6)], seed=2)


def test_bench_writes_json_markdown_and_plot(tmp_path):
    net = small_net()
    folds = [("slow", fold_for_interval(net, 400)), ("fast", fold_for_interval(net, 100))]
    report = run_bench(net, folds, tmp_path, synth=False, sim=True, images=5, log=lambda _: None)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert [f["fold"] for f in saved["folds"]] == ["slow", "fast"]
    for entry in report["folds"]:
        assert entry["bit_exact"]
        assert abs(entry["interval_measured"] - entry["interval_expected"]) <= 0.02 * entry[
            "interval_expected"]
    markdown = (tmp_path / "bench.md").read_text()
    assert "| slow |" in markdown and "| conv0 |" in markdown
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_a_synthesis_past_its_time_limit_is_reported_and_the_bench_goes_on(tmp_path):
    net = small_net()
    report = run_bench(net, [("slow", fold_for_interval(net, 400))], tmp_path, sim=False,
                       synth_timeout=0.01, log=lambda _: None)
    entry = report["folds"][0]
    assert entry["yosys_error"] == "yosys synth_xilinx of top.v did not finish within 0.01 s"
    assert "yosys" not in entry and entry["estimate"]["lut"] > 0


def test_summary_line_names_the_fmax_and_a_failed_tool():
    entry = {"fold": "FINN", "interval_expected": 32_768, "frames_per_second": 9_155.3,
             "estimate": {"lut": 12_235}, "generator_seconds": 9.2}
    assert summary_line({**entry, "ecp5": {"fmax_mhz": 102.44}}, 300.0) == (
        "FINN: interval 32,768 expected; 9,155 frames/s at 300 MHz; 12,235 LUTs (estimate); "
        "Verilog in 9.2 s; ECP5-85F 102.4 MHz")
    failed = summary_line({**entry, "ecp5_error": "nextpnr-ecp5 of top failed: killed"}, 300.0)
    assert failed.endswith("Verilog in 9.2 s; nextpnr-ecp5 of top failed: killed")


def test_a_layer_alone_takes_its_modelled_cycles():
    net = small_net()
    fold = fold_for_interval(net, 100)
    graph = build_graph(net, fold)
    conv = net.compute_layers[0]
    assert measure_layer_cycles(graph, conv.name) == graph.layer_cycles(conv.name)


def test_stage_fmax_places_the_chosen_stages_alone():
    from benchmarks.stage_fmax import stage_fmax

    graph = build_graph(small_net(), fold_for_interval(small_net(), 100))
    results = stage_fmax(graph, kinds=["pool", "label"], log=lambda _: None)
    assert sorted(results) == ["label", "pool1"]
    for result in results.values():
        assert result["fmax_mhz"] > 50 and result["LUT4"] > 0 and len(result["critical_path"]) == 2
