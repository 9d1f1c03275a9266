"""cocotb test of the window generators (SlidingWindow, ParallelWindow) against numpy."""

import cocotb
import numpy as np

from sim.params import read_params, write_result
from sim.streams import assert_elements_equal, pass_words, start_clock_and_reset


def window_reference(frame, *, kernel, pad, pad_value):
    """The element stream of the stride-1 windows of an ``[H, W, C]`` frame, (ky, kx, c) order."""
    padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), constant_values=pad_value)
    out_height, out_width = padded.shape[0] - kernel + 1, padded.shape[1] - kernel + 1
    return np.concatenate([padded[oy:oy + kernel, ox:ox + kernel].reshape(-1)
                           for oy in range(out_height) for ox in range(out_width)])


def random_frames(rng, p):
    """``p["frames"]`` random ``[height, width, channels]`` frames of ``p``'s element shape."""
    low = -(1 << (p["elem_width"] - 1)) if p["signed"] else 0
    shape = (p["frames"], p["height"], p["width"], p["channels"])
    return rng.integers(low, low + (1 << p["elem_width"]), size=shape)


@cocotb.test()
async def windows_match_reference(dut):
    """Every output word equals the reference; the result holds each frame's first output cycle."""
    p = read_params()
    simd, in_lanes = p["simd"], p["in_lanes"]
    frames = random_frames(np.random.default_rng(p["seed"]), p)
    expected = np.concatenate([window_reference(f, kernel=p["kernel"], pad=p["pad"],
                                                pad_value=p["pad_value"]) for f in frames])
    words_per_frame = len(expected) // simd // len(frames)
    await start_clock_and_reset(dut)
    got, cycles = await pass_words(
        dut, frames.reshape(-1, in_lanes).tolist(), len(expected) // simd, in_lanes=in_lanes,
        out_lanes=simd, width=p["elem_width"], signed=p["signed"],
        valid_probability=p["valid_probability"], ready_probability=p["ready_probability"],
        seed=p["seed"])
    assert_elements_equal(got, expected, lanes=simd, words_per_frame=words_per_frame)
    write_result({"frame_starts": cycles[::words_per_frame]})
