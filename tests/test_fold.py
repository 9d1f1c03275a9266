"""Folding: validation, the default fold, fold files and the cycle model."""
import json

import pytest

from gen.fold import (FoldError, LayerFold, check_layer_fold, default_fold, fastest_interval,
                      load_fold, mvu_cycles, save_fold)
from gen.ir import load_network
from gen.networks import DEFAULT_NETWORK
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
    (LayerFold(pe=1, simd=9), "SIMD must divide the 3 input channels, not 9; accepted: [1, 3]"),
    (LayerFold(pe=0, simd=1), "pe must be a positive integer, not 0"),
])
def test_folds_that_do_not_divide_are_refused(tiny, fold, message):
    with pytest.raises(FoldError, match=None) as error:
        check_layer_fold(tiny.compute_layers[0], fold)
    assert message in str(error.value) and "'conv0'" in str(error.value)


def test_default_fold_is_valid_and_balanced_at_the_reachable_interval():
    net = load_network(DEFAULT_NETWORK)
    fold = default_fold(net)
    for layer in net.compute_layers:
        check_layer_fold(layer, fold[layer.name])
    interval = max(mvu_cycles(layer, fold[layer.name]) for layer in net.compute_layers)
    assert interval == fastest_interval(net)  # the first layer bounds this network
    # cheaper layers are folded down rather than left fully parallel
    assert all(fold[l.name].pe * fold[l.name].simd < l.mh * l.mw for l in net.compute_layers[1:])


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
    ('{oops', "not JSON"),
])
def test_bad_fold_files_name_file_and_layer(tiny, tmp_path, content, message):
    path = tmp_path / "fold.json"
    path.write_text(content)
    with pytest.raises(FoldError) as error:
        load_fold(path, tiny)
    assert message in str(error.value) and str(path) in str(error.value)
