"""The AXI4-Stream top's price: its width converters and its fitted logic, against Yosys."""
import argparse
import json

import pytest
from amaranth import unsigned

from benchmarks.calibrate_axis_top import main, sample
from boards.axis import axis_layout, axis_top_resources
from gen.fold import default_fold, fold_for_interval
from gen.graph import build_graph
from gen.networks import random_network, random_sfc
from gen.resources import AXIS_LOGIC, converter_resources


def test_the_top_is_priced_as_its_converters_and_its_logic():
    net = random_sfc()
    graph = build_graph(net, fold_for_interval(net, 50))
    gather = converter_resources(unsigned(8), 4, graph.input_lanes)
    spread = converter_resources(graph.score_stage.component.out_shape,
                                 graph.stages[-2].out_lanes, 1)
    plain = axis_top_resources(graph, beat_bytes=4)
    assert (plain.lut, plain.ff) == pytest.approx((AXIS_LOGIC.lut + gather.lut,
                                                   AXIS_LOGIC.ff + gather.ff))
    with_scores = axis_top_resources(graph, beat_bytes=4, scores=True)
    assert (with_scores.lut, with_scores.ff) == pytest.approx((plain.lut + spread.lut,
                                                               plain.ff + spread.ff))


def test_the_model_of_the_top_is_within_tens_of_luts_of_yosys(tmp_path, capsys):
    main(["--samples", "random-sfc@2000/4", "random-sfc@50:pe/4+scores", "--out",
          str(tmp_path)])
    samples = json.loads((tmp_path / "axis_top.json").read_text())["samples"]
    assert [s["sample"] for s in samples] == ["random-sfc@2000/4", "random-sfc@50:pe/4+scores"]
    assert samples[1]["lanes"] == {"gather": [4, 16], "spread": [2, 1]}
    for s in samples:  # AXIS_LOGIC as shipped: within 30 LUTs and 5 flip-flops on every sample
        assert abs(s["model"]["lut"] - s["yosys"]["lut"]) <= 30, s
        assert abs(s["model"]["ff"] - s["yosys"]["ff"]) <= 5, s
    assert "AXIS_LOGIC = Resources(lut=" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["random-sfc@2000", "random-sfc@2000/four",
                                  "random-sfc@2000/4+labels", "random-sfc/4"])
def test_a_bad_sample_names_itself_and_what_is_accepted(text):
    with pytest.raises(argparse.ArgumentTypeError, match="NETWORK@CYCLES"):
        sample(text)


def test_a_network_the_top_cannot_carry_is_still_priced():
    net = random_network("imagenet-head", (4, 4, 3), [("dense", 300)])
    graph = build_graph(net, default_fold(net))
    with pytest.raises(ValueError, match="300 classes"):
        axis_layout(graph)
    assert axis_top_resources(graph).lut > AXIS_LOGIC.lut
