"""Whole networks in Verilator, from pixels to class index, against the golden executor."""
import numpy as np
import pytest

from gen.build import elaborate
from gen.fold import LayerFold, default_fold
from gen.ir import load_network
from gen.networks import cifar_input_table, random_network
from sim.network import simulate_network
from sim.runner import lint
from tests.handmade import write_tiny_network


def check(net, fold, images, directory, **stalls):
    """Simulate ``images``; assert bit-exact labels and scores and lint-clean Verilog."""
    result = simulate_network(net, fold, images, **stalls)
    _, verilog_text = elaborate(net, fold)
    source = directory / f"{net.name}.v"
    source.write_text(verilog_text)
    linted = lint(source)
    assert linted.returncode == 0, linted.stderr[-3000:]
    assert (result.labels == result.expected_labels).all(), "class indices differ from golden"
    assert (result.scores == result.expected_scores).all(), "scores differ from golden"
    return result


def random_images(net, count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << net.input.bits, (count,) + tuple(net.input.shape))


def test_handmade_network_is_bit_exact_under_random_stalls(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    check(net, default_fold(net), random_images(net, 12), tmp_path, valid_probability=0.6,
          ready_probability=0.5)


def test_default_fold_reaches_the_modelled_interval(tmp_path):
    # the default FIFO depths must absorb a dense layer's burst input (this fold lost 21% with
    # row-deep FIFOs)
    net = load_network(write_tiny_network(tmp_path))
    result = check(net, default_fold(net), random_images(net, 8, seed=4), tmp_path)
    assert result.measured_interval == pytest.approx(result.expected_interval, rel=0.02)


def test_optimised_cxx_runs_the_same_cycles(tmp_path):
    # gen sim --cxx-opt: the Verilator model compiled at -O1 is a separate cached build that must
    # behave cycle for cycle as the -O0 one
    net = load_network(write_tiny_network(tmp_path))
    images = random_images(net, 6, seed=5)
    stalls = dict(valid_probability=0.7, ready_probability=0.6, seed=2)
    plain = simulate_network(net, default_fold(net), images, **stalls)
    optimised = check(net, default_fold(net), images, tmp_path, cxx_opt=1, **stalls)
    assert (optimised.labels == plain.labels).all() and (optimised.scores == plain.scores).all()
    assert optimised.label_cycles == plain.label_cycles


def test_handmade_network_other_fold_meets_its_interval(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    fold = {"conv0": LayerFold(pe=3, simd=1), "conv1": LayerFold(pe=2, simd=6, fifo_depth=4),
            "fc0": LayerFold(pe=7, simd=8)}
    result = check(net, fold, random_images(net, 8, seed=1), tmp_path)
    assert result.measured_interval == pytest.approx(result.expected_interval, rel=0.02)


def test_binary_input_mlp_with_top3_labels(tmp_path):
    net = random_network("mlp", (7, 7, 1), [("dense", 24), ("dense", 12), ("dense", 10)],
                         input_bits=1, seed=3, top_k=3)
    fold = {"dense0": LayerFold(pe=4, simd=7), "dense1": LayerFold(pe=3, simd=8),
            "dense2": LayerFold(pe=5, simd=12)}
    check(net, fold, random_images(net, 20, seed=2), tmp_path, valid_probability=0.7,
          ready_probability=0.6)


def test_odd_shapes_padding_and_floor_pooling(tmp_path):
    net = random_network("odd", (9, 11, 3), [("conv", 5, 3, 1), ("pool", 2), ("conv", 6, 2, 1),
                                             ("conv", 9, 3, 0), ("dense", 3)],
                         table=cifar_input_table(), seed=5)
    net.layers[0].pad_value = -7
    check(net, default_fold(net), random_images(net, 6, seed=3), tmp_path, valid_probability=0.8,
          ready_probability=0.7)
