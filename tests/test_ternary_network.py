"""Ternary (2-bit, −1/0/+1) activations through the whole stack: a random network in Verilator."""
import numpy as np
from amaranth import signed, unsigned

from gen.fold import LayerFold
from gen.graph import build_graph, input_elements
from gen.ir import InputSpec, Network
from gen.networks import cifar_input_table, random_network
from tests.test_network_sim import check, random_images


def mixed_network():
    """8-bit input → ternary conv (padded) → ternary pool → binary conv (padded) → ternary conv
    → ternary pool → ternary dense → scores from ternary input."""
    return random_network("ternary-mixed", (10, 10, 3),
                          [("conv", 8, 3, 1), ("pool", 2), ("conv", 6, 3, 1), ("conv", 12, 2, 0),
                           ("pool", 2), ("dense", 9), ("dense", 5)],
                          table=cifar_input_table(), seed=7, ternary=(0, 3, 5))


def test_mixed_binary_and_ternary_network_is_bit_exact(tmp_path):
    net = mixed_network()
    assert [getattr(layer, "in_bits", None) for layer in net.layers] == [8, 2, 2, 1, 2, 2, 2, None]
    fold = {"conv0": LayerFold(pe=4, simd=3), "conv2": LayerFold(pe=3, simd=4),
            "conv3": LayerFold(pe=6, simd=6), "dense5": LayerFold(pe=3, simd=12),
            "dense6": LayerFold(pe=5, simd=9)}
    stages = {s.name: s.component for s in build_graph(net, fold).stages}
    assert stages["pool1"].elem_shape == unsigned(2) and stages["conv3_mvu"].in_shape == unsigned(1)
    assert stages["dense6_mvu"].ternary and stages["conv2_window"].elem_shape == unsigned(2)
    check(net, fold, random_images(net, 6), tmp_path, valid_probability=0.7,
          ready_probability=0.6)


def test_input_tables_of_one_or_two_bits_make_a_binary_or_ternary_first_layer():
    def first(table, pad=0, pad_value=0):
        net = random_network("t", (4, 4, 2), [("conv", 4, 3, pad), ("dense", 3)],
                             table=np.array(table), seed=1)
        net.layers[0].pad_value = pad_value
        return input_elements(net)

    bipolar = [-1] * 128 + [1] * 128
    assert first(bipolar) == (unsigned(1), [0] * 128 + [1] * 128, 0)
    assert first(bipolar, pad=1, pad_value=-1)[0] == unsigned(1)
    assert first(bipolar, pad=1, pad_value=0) == (unsigned(2), [0] * 128 + [2] * 128, 1)
    assert first([-1, 0, 1, 0] * 64, pad=1, pad_value=1)[::2] == (unsigned(2), 2)
    assert first(cifar_input_table().tolist(), pad=1, pad_value=-3)[::2] == (signed(8), -3)
    binary_input = Network("b", InputSpec((2, 2, 1), 1), [])
    assert input_elements(binary_input) == (unsigned(1), None, 0)
