# amaranth: UnusedElaboratable=no
"""boards.uart_top: the UART accelerator end to end in Verilator, bytes on RX to class bytes on TX."""
import numpy as np
import pytest

from gen import golden
from gen.fold import LayerFold, default_fold
from gen.graph import build_graph
from gen.ir import load_network
from gen.networks import random_network
from boards.ecp5 import uart_fold
from boards.uart_top import UartAccelerator, simulate
from sim.runner import lint
from tests.handmade import write_tiny_network


def classify(net, fold, images, **options):
    return simulate(net, fold, images, break_bits=12, **options)


def test_uart_top_classifies_bit_exact_and_resyncs_after_a_break(tmp_path):
    """With the fold the ECP5 build uses: the leanest that keeps up with the UART."""
    net = load_network(write_tiny_network(tmp_path))
    images = np.random.default_rng(4).integers(0, 256, (5,) + tuple(net.input.shape))
    text, result = classify(net, uart_fold(net, 4), images, divisor=4, partial=100,
                            max_gap_bits=2)
    assert result["labels"] == golden.execute(net, images).labels[:, 0].tolist()
    assert result["overrun"] == 0 and result["framing_error"] == 0
    (tmp_path / "uart_top.v").write_text(text)
    linted = lint(tmp_path / "uart_top.v")
    assert linted.returncode == 0, linted.stderr[-3000:]


def test_uart_top_binary_input_and_top2_labels():
    net = random_network("mlp", (6, 6, 1), [("dense", 16), ("dense", 5)], input_bits=1, seed=7,
                         top_k=2)
    fold = {"dense0": LayerFold(pe=4, simd=12), "dense1": LayerFold(pe=5, simd=2)}
    images = np.random.default_rng(5).integers(0, 2, (6,) + tuple(net.input.shape))
    _, result = classify(net, fold, images, divisor=5)
    assert result["labels"] == golden.execute(net, images).labels.reshape(-1).tolist()


def test_more_than_256_classes_cannot_use_the_uart():
    net = random_network("wide", (2, 2, 1), [("dense", 300)], input_bits=1, seed=0)
    with pytest.raises(ValueError, match="must fit a byte over the UART; network 'wide' has 300"):
        UartAccelerator(build_graph(net, default_fold(net)), divisor=4)
