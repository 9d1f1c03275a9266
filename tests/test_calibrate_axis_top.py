"""The AXI4-Stream top's price: its width converters and its fitted logic, against Yosys."""
import argparse
import json

import pytest
from amaranth import unsigned

from benchmarks.calibrate_axis_top import main, sample
from boards.axis import axis_layout, axis_logic_features, axis_top_resources
from gen.fold import default_fold, fold_for_interval
from gen.graph import build_graph
from gen.networks import random_network, random_sfc
from gen.resources import AXIS_LUT, axis_logic_resources, converter_resources


def test_the_top_is_priced_as_its_converters_and_its_logic():
    net = random_sfc()
    graph = build_graph(net, fold_for_interval(net, 50))
    gather_shape = {"elem_shape": unsigned(8), "in_lanes": 4, "out_lanes": graph.input_lanes}
    gather = converter_resources(**gather_shape)
    spread = converter_resources(graph.score_stage.component.out_shape,
                                 graph.stages[-2].out_lanes, 1)
    for scores, converters in ((False, gather), (True, gather + spread)):
        logic = axis_logic_resources(axis_logic_features(gather_shape, 4, scores))
        top = axis_top_resources(graph, beat_bytes=4, scores=scores)
        assert (top.lut, top.ff) == pytest.approx((logic.lut + converters.lut,
                                                   logic.ff + converters.ff))


@pytest.mark.parametrize("in_lanes, out_lanes, gated_bits", [
    (4, 1, 0), (8, 4, 0),      # a splitting gather takes the zero-fill gate into its multiplexer
    (4, 3, 32), (4, 16, 32), (1, 3, 8), (4, 4, 32)])  # gathers through a register, and a wire
def test_the_zero_fill_gate_costs_the_bits_a_gather_does_not_take_in(in_lanes, out_lanes,
                                                                     gated_bits):
    gather = {"elem_shape": unsigned(8), "in_lanes": in_lanes, "out_lanes": out_lanes}
    features = axis_logic_features(gather, in_lanes, scores=True)
    assert features == {"gated_bits": gated_bits, "scores": 1, "const": 1}
    binary = axis_logic_features({**gather, "elem_shape": unsigned(1)}, in_lanes, scores=False)
    assert binary["gated_bits"] == gated_bits // 8


def test_the_model_of_the_top_is_within_a_few_luts_of_yosys(tmp_path, capsys):
    main(["--samples", "random-sfc@2000/4", "random-sfc@50:pe/4+scores", "--out",
          str(tmp_path)])
    samples = json.loads((tmp_path / "axis_top.json").read_text())["samples"]
    assert [s["sample"] for s in samples] == ["random-sfc@2000/4", "random-sfc@50:pe/4+scores"]
    assert samples[1]["lanes"] == {"gather": [4, 16], "spread": [2, 1]}
    for s in samples:  # the tables as shipped: within 10 LUTs and 5 flip-flops on every sample
        assert abs(s["model"]["lut"] - s["yosys"]["lut"]) <= 10, s
        assert abs(s["model"]["ff"] - s["yosys"]["ff"]) <= 5, s
    assert "AXIS_LUT = {'gated_bits': " in capsys.readouterr().out


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
    assert axis_top_resources(graph).lut > AXIS_LUT["const"]
