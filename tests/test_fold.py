"""Folding: validation, the default fold, fold files and the cycle model."""
import json

import pytest

from gen.fold import (FoldError, LayerFold, check_layer_fold, default_fifo_depth, default_fold,
                      default_target_cycles, divisors, estimated_luts, fastest_interval,
                      fold_for_fps, fold_for_interval, fold_for_luts, fold_luts, has_window_queue,
                      layer_cycles, load_fold, mvu_cycles, save_fold, simd_choices,
                      target_interval, window_cycles, window_queue_depth)
from gen.graph import build_graph
from gen.ir import load_network
from gen.networks import DEFAULT_NETWORK, random_cnv_small
from gen.resources import Resources, layer_luts
from tests.handmade import write_tiny_network


@pytest.fixture
def tiny(tmp_path):
    return load_network(write_tiny_network(tmp_path))


def test_cycle_model_is_pixels_times_folds(tiny):
    conv0, conv1, fc0 = tiny.compute_layers
    assert mvu_cycles(conv0, LayerFold(pe=2, simd=3)) == 144 * 3 * 9
    assert mvu_cycles(conv1, LayerFold(pe=5, simd=2)) == 16 * 2 * 27
    assert mvu_cycles(fc0, LayerFold(pe=7, simd=160)) == 1


@pytest.mark.parametrize("fold,message", [
    (LayerFold(pe=4, simd=3), "PE must divide MH=6, not 4; accepted: [1, 2, 3, 6]"),
    (LayerFold(pe=1, simd=6), "SIMD must divide the 3 input channels or be a multiple of them "
                              "dividing MW=27, not 6; accepted: [1, 3, 9, 27]"),
    (LayerFold(pe=0, simd=1), "pe must be a positive integer, not 0"),
])
def test_folds_that_do_not_divide_are_refused(tiny, fold, message):
    with pytest.raises(FoldError, match=None) as error:
        check_layer_fold(tiny.compute_layers[0], fold)
    assert message in str(error.value) and "'conv0'" in str(error.value)


def test_default_fold_is_valid_and_balanced_within_the_default_target():
    net = load_network(DEFAULT_NETWORK)
    fold = default_fold(net)
    for layer in net.compute_layers:
        check_layer_fold(layer, fold[layer.name])
    interval = max(layer_cycles(layer, fold[layer.name]) for layer in net.compute_layers)
    assert fastest_interval(net) <= interval <= default_target_cycles(net)
    # cheaper layers are folded down rather than left fully parallel
    assert all(fold[l.name].pe * fold[l.name].simd < l.mh * l.mw for l in net.compute_layers[1:])


@pytest.mark.parametrize("fps", [3_000, 30_000, 100_000])
def test_frame_rate_targets_are_met_by_the_cheapest_fold(fps):
    net = random_cnv_small()
    target = target_interval(fps, 300)
    fold = fold_for_interval(net, target)
    assert max(layer_cycles(l, fold[l.name]) for l in net.compute_layers) <= target
    assert build_graph(net, fold).interval <= target  # every stage, converters and pools too
    for layer in net.compute_layers:  # no cheaper option of a layer meets the target
        options = [LayerFold(pe, simd, default_fifo_depth(net, layer, pe))
                   for pe in divisors(layer.mh) for simd in simd_choices(layer)]
        cheaper = [option for option in options if fold_luts(layer, option, target)
                   < fold_luts(layer, fold[layer.name], target)]
        assert all(layer_cycles(layer, option) > target for option in cheaper)


def test_a_parallel_window_is_priced_with_the_queue_after_it():
    """The chooser prices a ParallelWindow's queue as the graph builds it, fed at the target
    pace at most: the queue the graph builds for a slower feed is no larger."""
    net = random_cnv_small()
    layer = net.compute_layers[1]
    option = LayerFold(pe=1, simd=layer.mw, fifo_depth=4)  # whole windows, several passes
    assert has_window_queue(layer, option)
    graph = build_graph(net, {**default_fold(net), layer.name: option})
    queue = next(s for s in graph.stages if s.name == f"{layer.name}_windows")
    target = layer_cycles(layer, option)
    assert queue.component.depth <= window_queue_depth(layer, option, target)
    assert fold_luts(layer, option, target) > layer_luts(layer, option)
    sliding = LayerFold(pe=1, simd=layer.in_shape[2], fifo_depth=4)
    assert not has_window_queue(layer, sliding)
    assert fold_luts(layer, sliding, target) == layer_luts(layer, sliding)


def test_impossible_frame_rate_states_the_best_reachable():
    net = random_cnv_small()
    best = fastest_interval(net)
    with pytest.raises(FoldError, match=f"the fastest is {best:,} cycles$"):
        fold_for_interval(net, best - 1)
    with pytest.raises(FoldError) as error:
        fold_for_fps(net, 100e6 / (best - 1), 100)
    assert f"the fastest is {best:,} cycles = {100e6 / best:,.0f} frames/s" in str(error.value)
    with pytest.raises(FoldError, match=r"no fold reaches 1e\+12 frames/s at 300 MHz \(0 cycles"):
        fold_for_fps(net, 1e12, 300)  # under a cycle a frame
    assert fold_for_fps(net, 100e6 / best, 100) == fold_for_interval(net, best)
    assert max(layer_cycles(l, f) for l, f in
               zip(net.compute_layers, fold_for_interval(net, best).values())) == best


def test_lut_budget_gives_the_fastest_fold_within_it():
    net = random_cnv_small()
    budget = 5_000
    fold = fold_for_luts(net, budget)
    interval = max(layer_cycles(l, fold[l.name]) for l in net.compute_layers)
    assert estimated_luts(net, fold) <= budget
    faster = fold_for_interval(net, interval - 1)
    assert estimated_luts(net, faster) > budget
    with pytest.raises(FoldError, match="no fold fits 100 LUTs; the smallest needs about"):
        fold_for_luts(net, 100)


def test_a_wrapper_top_counts_against_the_lut_budget():
    net = random_cnv_small()
    top = Resources(lut=2_000)
    fold = fold_for_luts(net, 8_000, wrapper=lambda graph: top)
    assert estimated_luts(net, fold, lambda graph: top) == estimated_luts(net, fold) + 2_000
    assert estimated_luts(net, fold) + 2_000 <= 8_000
    assert (build_graph(net, fold).interval
            > build_graph(net, fold_for_luts(net, 8_000)).interval)


def test_window_cycles_are_the_graph_stage_cycles():
    net = random_cnv_small()
    fold = fold_for_interval(net, 1500)
    graph = build_graph(net, fold)
    for layer in net.compute_layers:
        if layer.kind == "conv":
            stage = next(s for s in graph.stages if s.name == f"{layer.name}_window")
            assert stage.cycles == window_cycles(layer, fold[layer.name].simd)
            assert stage.component.simd == fold[layer.name].simd


def test_fold_file_round_trip_and_partial_files(tiny, tmp_path):
    fold = default_fold(tiny)
    fold["conv1"] = LayerFold(pe=5, simd=2, fifo_depth=4)
    save_fold(tiny, fold, tmp_path / "fold.json")
    assert load_fold(tmp_path / "fold.json", tiny) == fold
    (tmp_path / "partial.json").write_text(json.dumps({"layers": {"fc0": {"pe": 7}}}))
    partial = load_fold(tmp_path / "partial.json", tiny)
    assert partial["fc0"].pe == 7 and partial["conv0"] == default_fold(tiny)["conv0"]


@pytest.mark.parametrize("content,message", [
    ('{"layers": {"pool0": {"pe": 1}}}', "layer 'pool0' is not a conv or dense layer"),
    ('{"layers": {"conv1": {"pe": 3}}}', "PE must divide MH=10, not 3"),
    ('{"layers": {"conv1": {"lanes": 3}}}', "expected an object with pe, simd, fifo_depth"),
    ('[1, 2]', 'expected {"layers"'),
    ('{oops', "not a JSON fold file"),
])
def test_bad_fold_files_name_file_and_layer(tiny, tmp_path, content, message):
    path = tmp_path / "fold.json"
    path.write_text(content)
    with pytest.raises(FoldError) as error:
        load_fold(path, tiny)
    assert message in str(error.value) and str(path) in str(error.value)
