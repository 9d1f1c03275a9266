"""cocotb test for hw.pool.MaxPool, with its numpy reference."""

import cocotb
import numpy as np

from sim.params import read_params, write_result
from sim.streams import assert_elements_equal, pass_words, start_clock_and_reset


def maxpool_reference(frame, *, kernel):
    """The element stream of an ``[H, W, C]`` frame (bits or ternary counts) max-pooled with stride ``kernel``
    (PyTorch floor mode: trailing rows and columns that fill no window are dropped)."""
    height, width, channels = frame.shape
    out_height, out_width = height // kernel, width // kernel
    kept = frame[:out_height * kernel, :out_width * kernel]
    return kept.reshape(out_height, kernel, out_width, kernel, channels).max(axis=(1, 3)).ravel()


@cocotb.test()
async def pooling_matches_reference(dut):
    """Every output word equals the reference; the result holds each frame's first output cycle."""
    p = read_params()
    simd = p["simd"]
    rng = np.random.default_rng(p["seed"])
    # Mostly -1, so that a window's maximum is often -1 and a lost or misplaced larger value
    # shows; ternary counts (width 2) are 0, 1, 2 for -1, 0, +1.
    shape = (p["frames"], p["height"], p["width"], p["channels"])
    width = p.get("width_bits", 1)
    if width == 1:
        frames = (rng.random(shape) < 0.15).astype(int)
    else:
        frames = rng.choice(3, size=shape, p=[0.7, 0.2, 0.1])
    expected = np.concatenate([maxpool_reference(f, kernel=p["kernel"]) for f in frames])
    words_per_frame = len(expected) // simd // len(frames)
    await start_clock_and_reset(dut)
    got, cycles = await pass_words(
        dut, frames.reshape(-1, simd).tolist(), len(expected) // simd, in_lanes=simd,
        out_lanes=simd, width=width, valid_probability=p["valid_probability"],
        ready_probability=p["ready_probability"], seed=p["seed"])
    assert_elements_equal(got, expected, lanes=simd, words_per_frame=words_per_frame)
    write_result({"frame_starts": cycles[::words_per_frame]})
