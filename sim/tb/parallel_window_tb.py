"""cocotb test for hw.parallel_window.ParallelWindow, against the SlidingWindow reference."""
import random

import cocotb
import numpy as np

from sim.params import read_params, write_result
from sim.streams import StreamSink, StreamSource, start_clock_and_reset
from sim.tb.window_tb import random_frames, window_reference


@cocotb.test()
async def windows_match_reference(dut):
    """Every output word equals the reference; the result holds each frame's first output cycle."""
    p = read_params()
    channels, simd = p["channels"], p["simd"]
    frames = random_frames(np.random.default_rng(p["seed"]), p)
    expected = np.concatenate([window_reference(f, kernel=p["kernel"], pad=p["pad"],
                                                pad_value=p["pad_value"]) for f in frames])
    words_per_frame = len(expected) // simd // len(frames)
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", lanes=channels, width=p["elem_width"],
                          valid_probability=p["valid_probability"], rng=random.Random(p["seed"]))
    sink = StreamSink(dut, "o", lanes=simd, width=p["elem_width"], signed=p["signed"],
                      ready_probability=p["ready_probability"],
                      rng=random.Random(p["seed"] + 1))
    cocotb.start_soon(source.send(frames.reshape(-1, channels).tolist()))
    got, cycles = await sink.receive(len(expected) // simd)
    got = np.array(got).reshape(-1)
    wrong = np.flatnonzero(got != expected)
    if len(wrong):
        word = wrong[0] // simd
        raise AssertionError(
            f"{len(wrong)} wrong elements; first in frame {word // words_per_frame}, word "
            f"{word % words_per_frame}: got {got[word * simd:(word + 1) * simd].tolist()}, "
            f"expected {expected[word * simd:(word + 1) * simd].tolist()}")
    write_result({"frame_starts": cycles[::words_per_frame]})
