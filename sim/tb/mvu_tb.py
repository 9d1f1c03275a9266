"""cocotb test for hw.mvu.MatrixVectorUnit: every output word against a numpy model."""

import cocotb
import numpy as np

from sim.params import read_params
from sim.streams import pass_words, start_clock_and_reset


def reference(weights, vectors, thresholds=None, direction=None, *, binary, ternary=False):
    """Output elements ``[V, MH]`` of the unit for input ``vectors`` ``[V, MW]``.

    Binary inputs and weights count as ±1, ternary counts 0/1/2 as −1/0/+1; without
    ``thresholds`` the result is the score itself.
    """
    signs = 2 * np.asarray(weights, np.int64) - 1
    x = np.asarray(vectors, np.int64)
    acc = (2 * x - 1 if binary else x - 1 if ternary else x) @ signs.T
    if thresholds is None:
        return acc
    t = np.asarray(thresholds, np.int64)[None]
    direction = np.ones(len(signs), np.int64) if direction is None else np.asarray(direction)
    passed = np.where(direction[None, :, None] > 0, acc[:, :, None] >= t, acc[:, :, None] <= t)
    return passed.sum(axis=2)


@cocotb.test()
async def matches_reference(dut):
    p = read_params()
    mh, pe, simd = len(p["weights"]), p["pe"], p["simd"]
    nf_count, sf_count = mh // pe, len(p["weights"][0]) // simd
    vectors = np.array(p["vectors"])
    expected = reference(p["weights"], vectors, p["thresholds"], p["direction"],
                         binary=p["binary"], ternary=p["ternary"])

    await start_clock_and_reset(dut)
    words, cycles = await pass_words(
        dut, vectors.reshape(-1, simd).tolist(), len(vectors) * nf_count, in_lanes=simd,
        out_lanes=pe, width=p["in_width"], out_width=p["out_width"], signed=p["out_signed"],
        valid_probability=p["valid_probability"], ready_probability=p["ready_probability"],
        seed=p["seed"])

    got = np.array(words).reshape(len(vectors), mh)
    wrong = np.argwhere(got != expected)
    assert not len(wrong), (
        f"{len(wrong)} wrong outputs; first at vector {wrong[0][0]} channel {wrong[0][1]}: "
        f"got {got[tuple(wrong[0])]}, expected {expected[tuple(wrong[0])]}")

    if p["check_timing"]:
        # Source and sink start on the same cycle, so vector 0's last word is taken at SF-1.
        assert cycles[0] == sf_count - 1 + p["latency"], f"first output on cycle {cycles[0]}"
        spacing = {later - earlier for earlier, later in zip(cycles[nf_count:],
                                                              cycles[2 * nf_count:])}
        assert spacing == {nf_count * sf_count}, (
            f"vectors {sorted(spacing)} cycles apart, expected {nf_count * sf_count}")
