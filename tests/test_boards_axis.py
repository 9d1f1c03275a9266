# amaranth: UnusedElaboratable=no
"""boards.axis: the AXI4-Stream top in Verilator (framing, TLAST, back-pressure, bit-exact results),
decoded with the PYNQ driver's own packing functions."""
import numpy as np
import pytest

from boards.axis import AxisAccelerator, axis_layout
from boards.pynq_driver import (beats_from_bytes, bytes_from_words, pack_images, unpack_results,
                                words_per_frame)
from gen import golden
from gen.build import LINT_WAIVERS
from gen.fold import LayerFold, default_fold
from gen.graph import build_graph
from gen.ir import load_network
from gen.networks import random_network
from sim.runner import component_verilog, lint, run_cocotb
from tests.handmade import write_tiny_network


def stream(net, fold, images, *, tlast_every=1, scores=False, beat_bytes=4, cut=None,
           stall=0.0, seed=0, directory=None):
    """Send ``images`` (TLAST after every ``tlast_every`` frames; ``cut`` = (frame, beats) ends
    that frame early with TLAST after ``beats`` beats); returns (layout, result)."""
    graph = build_graph(net, fold)
    top = AxisAccelerator(graph, beat_bytes=beat_bytes, scores=scores)
    layout = top.layout
    text = LINT_WAIVERS + component_verilog(top, "axis_top")
    if directory is not None:
        (directory / "axis_top.v").write_text(text)
        linted = lint(directory / "axis_top.v")
        assert linted.returncode == 0, linted.stderr[-3000:]
    beats, tlast = [], []
    for index, image in enumerate(images):
        frame = beats_from_bytes(pack_images(image, layout), layout["beat_bytes"])
        last = [0] * len(frame)
        if (index + 1) % tlast_every == 0 or index == len(images) - 1:
            last[-1] = 1
        if cut and cut[0] == index:
            frame, last = frame[:cut[1]], [0] * (cut[1] - 1) + [1]
        beats += frame
        tlast += last
    result = run_cocotb(verilog_text=text, toplevel="axis_top", test_module="sim.tb.axis_tb",
                        params={"seed": seed, "beats": beats, "tlast": tlast,
                                "out_words": len(images) * words_per_frame(layout),
                                "valid_probability": 1 - stall, "ready_probability": 1 - stall,
                                "timeout_cycles": 20 * graph.interval + 10_000})
    assert result["violations"] == {"s_axis": [], "m_axis": []}
    return graph, layout, result


def random_images(net, count, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << net.input.bits, (count,) + tuple(net.input.shape))


def test_frames_back_to_back_one_tlast_each_under_stalls(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    images = random_images(net, 6, seed=1)
    graph, layout, result = stream(net, default_fold(net), images, stall=0.4, seed=3,
                                   directory=tmp_path)
    assert layout["beat_bytes"] == 4 and layout["frame_beats"] == 12 * 12 * 3 // 4
    labels, scores = unpack_results(bytes_from_words(result["words"]), layout, len(images))
    assert scores is None
    assert (labels == golden.execute(net, images).labels).all()
    assert result["tlast"] == [1] * len(images)  # one word per frame, each ending a transfer
    assert result["tlast_error"] == 0


def test_batches_with_scores_tlast_at_the_end_of_each_batch(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    images = random_images(net, 7, seed=2)
    graph, layout, result = stream(net, default_fold(net), images, tlast_every=3, scores=True,
                                   stall=0.2, seed=4)
    labels, scores = unpack_results(bytes_from_words(result["words"]), layout, len(images))
    expected = golden.execute(net, images)
    assert (labels == expected.labels).all() and (scores == expected.scores).all()
    per_frame = words_per_frame(layout)
    ends = [i for i, last in enumerate(result["tlast"]) if last]
    assert ends == [3 * per_frame - 1, 6 * per_frame - 1, 7 * per_frame - 1]


def test_full_rate_keeps_the_network_interval(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    images = random_images(net, 6, seed=5)
    graph, layout, result = stream(net, default_fold(net), images)
    cycles = result["cycles"][2:]
    measured = (cycles[-1] - cycles[0]) / (len(cycles) - 1)
    assert measured == pytest.approx(graph.interval, rel=0.1)


def test_early_tlast_is_flagged_padded_and_the_next_frames_are_right(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    images = random_images(net, 4, seed=6)
    graph, layout, result = stream(net, default_fold(net), images, cut=(1, 50), stall=0.3,
                                   tlast_every=4)
    assert result["tlast_error"] == 1
    assert result["in_beats"] == 4 * layout["frame_beats"] - (layout["frame_beats"] - 50)
    labels, _ = unpack_results(bytes_from_words(result["words"]), layout, len(images))
    cut = images[1].reshape(-1).copy()
    cut[50 * layout["beat_bytes"]:] = 0  # what the hardware classified: the rest zero-filled
    expected = golden.execute(net, np.stack([images[0], cut.reshape(images[1].shape),
                                             images[2], images[3]]))
    assert (labels == expected.labels).all()
    assert result["tlast"] == [0, 1, 0, 1]  # the cut frame ends its transfer


def test_binary_input_narrow_beats_and_top3_over_two_label_words():
    net = random_network("mlp", (5, 5, 1), [("dense", 12), ("dense", 6)], input_bits=1, seed=2,
                         top_k=5)
    fold = {"dense0": LayerFold(pe=3, simd=5), "dense1": LayerFold(pe=2, simd=4)}
    images = random_images(net, 5, seed=7)
    graph, layout, result = stream(net, fold, images, stall=0.3)
    assert layout["beat_bytes"] == 1 and layout["label_words"] == 2  # 25 bytes; top-5
    labels, _ = unpack_results(bytes_from_words(result["words"]), layout, len(images))
    assert (labels == golden.execute(net, images).labels).all()


def test_layout_and_packing_checks():
    net = random_network("mlp", (4, 4, 3), [("dense", 10)], seed=0)
    graph = build_graph(net, {"dense0": LayerFold(pe=1, simd=6)})
    layout = axis_layout(graph, beat_bytes=8, scores=True)
    assert layout["beat_bytes"] == 8 and layout["frame_beats"] == 6  # 48 bytes; lcm(8, 6) = 24
    assert layout["score_words"] == 10
    assert axis_layout(build_graph(net, {"dense0": LayerFold(pe=1, simd=16)}))["beat_bytes"] == 4
    with pytest.raises(ValueError, match="beat_bytes must be a power of two"):
        axis_layout(graph, beat_bytes=3)
    with pytest.raises(ValueError, match=r"images must have shape \[N, 4, 4, 3\]"):
        pack_images(np.zeros((2, 4, 4)), layout)
    with pytest.raises(ValueError, match="image values must be in 0..255"):
        pack_images(np.full((4, 4, 3), 256), layout)
    data = pack_images(np.arange(96).reshape(2, 4, 4, 3), layout)
    assert data.dtype == np.uint8 and data.tolist() == list(range(96))
    assert beats_from_bytes(data[:8], 8) == [int.from_bytes(bytes(range(8)), "little")]
