"""The resource model's calibration: the fit recovers a linear model, samples are named clearly."""
import argparse
import json

import pytest

from benchmarks.calibrate_resources import fit, main, predict, sample_fold, shaped_fold
from boards.yosys import counts_by_instance
from gen import resources
from gen.fold import (LayerFold, divisors, fold_for_interval, fold_to_json, layer_cycles,
                      simd_choices)
from gen.graph import build_graph
from gen.networks import DEFAULT_NETWORK, random_cnv_small


def test_fit_recovers_the_coefficients_that_made_the_counts():
    truth = {"lanes_binary": 1.5, "memory_luts": 1.0, "const": 90.0}
    rows = []
    for lanes, memory_luts in [(16, 0), (64, 32), (128, 0), (576, 96), (32, 8)]:
        features = {"lanes_binary": lanes, "memory_luts": memory_luts, "const": 1}
        lut = sum(truth[name] * value for name, value in features.items())
        rows.append({"kind": "mvu", "lut_features": features, "counted_ff": 0,
                     "yosys": {"lut": lut}})
    rows.append({"kind": "window", "lut_features": {"const": 1}, "counted_ff": 0,
                 "yosys": {"lut": 1_000}})
    table = fit(rows, "mvu", "lut")
    assert table == pytest.approx(truth)
    predict(rows, {"MVU_LUT": table})
    assert [row["model"].get("lut") for row in rows[:-1]] == [
        round(row["yosys"]["lut"]) for row in rows[:-1]]


def test_fit_keeps_coefficients_non_negative():
    rows = [{"kind": "fifo", "counted_ff": 0, "yosys": {"lut": 40 - 2 * bits},
             "lut_features": {"address_bits": bits, "const": 1}} for bits in (2, 4, 8, 12)]
    table = fit(rows, "fifo", "lut")
    assert table["address_bits"] == 0 and table["const"] > 0


def test_flip_flops_the_model_counts_are_not_fitted():
    rows = [{"kind": "mvu", "counted_ff": counted, "yosys": {"ff": 10 + 3 * acc + counted},
             "ff_features": {"acc_bits": acc, "const": 1}}
            for acc, counted in [(8, 100), (12, 0), (20, 40)]]
    assert fit(rows, "mvu", "ff") == pytest.approx({"acc_bits": 3.0, "const": 10.0})


@pytest.mark.parametrize("text", ["random-vgg16", "random-vgg16@fast", "vgg16@36864",
                                  "random-vgg16@36864:wide", "missing/vgg16.json@73728"])
def test_a_bad_fold_names_itself_and_what_is_accepted(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"fold '{text}'.*NETWORK@CYCLES"):
        sample_fold(text)


def test_a_fold_names_a_sample_network_or_a_network_file_and_a_shape():
    assert sample_fold("random-vgg16@36864") == ("random-vgg16", 36864, "")
    shipped = str(DEFAULT_NETWORK)
    assert sample_fold(f"{shipped}@9408:simd") == (shipped, 9408, "simd")


@pytest.mark.parametrize("shape", ["pe", "simd"])
def test_shaped_folds_meet_the_target_with_the_fewest_lanes(shape):
    net = random_cnv_small()
    fold = shaped_fold(net, 6000, shape)
    for layer in net.compute_layers:
        chosen = fold[layer.name]
        assert layer_cycles(layer, chosen) <= 6000
        rivals = [(pe, simd) for pe in divisors(layer.mh) for simd in simd_choices(layer)
                  if layer_cycles(layer, LayerFold(pe, simd)) <= 6000]
        assert chosen.pe * chosen.simd == min(pe * simd for pe, simd in rivals)
        extreme = max(value for pe, simd in rivals if pe * simd == chosen.pe * chosen.simd
                      for value in [pe if shape == "pe" else simd])
        assert getattr(chosen, shape) == extreme


def test_refit_reads_earlier_counts_and_writes_only_the_measured(tmp_path):
    """A refit fits every table to the counts of an earlier run and writes back only what was
    measured (the features and predictions are recomputed from the model on each run)."""
    net = random_cnv_small()
    rows, folds = [], {}
    for label, fold in [("20000", fold_for_interval(net, 20000)),
                        ("6000:pe", shaped_fold(net, 6000, "pe"))]:
        folds[f"random-cnv-small@{label}"] = fold_to_json(net, fold)["layers"]
        layers = {layer.name: layer for layer in net.layers}
        for stage in build_graph(net, fold).stages:
            priced = resources.stage_resources(stage, layers[stage.layer], fold.get(stage.layer))
            rows.append({"network": "random-cnv-small", "fold_label": label,
                         "stage": stage.name, "kind": stage.kind, "layer": stage.layer,
                         "yosys": {"lut": round(priced.lut), "ff": round(priced.ff)}})
    assert {row["kind"] for row in rows} == set(resources.STAGE_TABLES)
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"tables": {}, "folds": folds, "samples": rows,
                                   "held_out": []}))
    main(["--refit", str(earlier), "--out", str(tmp_path / "new")])
    written = json.loads((tmp_path / "new" / "calibration.json").read_text())
    assert written["samples"] == rows and written["held_out"] == []
    assert written["folds"] == folds
    assert set(written["tables"]) == {f"{kind.upper()}_{count}" for kind in resources.STAGE_TABLES
                                      for count in ("LUT", "FF")}
    assert not list((tmp_path / "new").glob("*.tmp*"))


@pytest.mark.parametrize("text", [None, "not json", '{"samples": []}'])
def test_a_refit_of_a_file_it_did_not_write_is_refused_in_one_line(tmp_path, capsys, text):
    path = tmp_path / "calibration.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SystemExit):
        main(["--refit", str(path), "--out", str(tmp_path / "new")])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"python -m benchmarks.calibrate_resources: error: --refit {path}: "
                            "expected a calibration.json")
    assert not (tmp_path / "new").exists()


def test_counts_by_instance_sums_each_stage_with_its_submodules():
    modules = {"xnorflow_top": {"lut": 1}, "\\xnorflow_top.conv0_fifo": {"lut": 20, "ff": 2},
               "\\xnorflow_top.conv0_fifo.buffer": {"lut": 8, "ff": 1},
               "\\xnorflow_top.conv0_mvu": {"lut": 300, "ff": 90}}
    assert counts_by_instance(modules, "xnorflow_top") == {
        "conv0_fifo": {"lut": 28, "ff": 3}, "conv0_mvu": {"lut": 300, "ff": 90}}


@pytest.mark.parametrize("option", ["--folds", "--held-out"])
def test_a_fold_faster_than_the_network_goes_is_refused_before_any_synthesis(tmp_path, capsys,
                                                                             option):
    with pytest.raises(SystemExit):
        main([option, "random-cnv-small@900:pe", "--out", str(tmp_path)])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith(f"error: {option} random-cnv-small@900: no fold reaches 900 cycles per "
                          "frame; the fastest is 1,024")
    assert not list(tmp_path.iterdir())
