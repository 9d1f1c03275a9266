"""cocotb test for hw.label.LabelSelect: each frame's top-k classes against a stable argsort."""
import random

import cocotb
import numpy as np

from sim.params import read_params, write_result
from sim.streams import pass_words, start_clock_and_reset, stream_monitor


def random_frames(rng, count, classes, width):
    """``count`` frames of scores from narrow ranges, so that ties are frequent; some ranges sit
    at the bottom or top of ``signed(width)``, some span it all."""
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    frames = []
    for _ in range(count):
        start = rng.choice([low, high - 2, rng.randint(low, high - 2)])
        spread = rng.choice([0, 2, 2, high - low])
        frames.append([rng.randint(max(low, start), min(high, start + spread))
                       for _ in range(classes)])
    return frames


async def _select(dut, p, frames, valid_probability, ready_probability, seed):
    """Send ``frames``; the top-k words received, and a monitor of ``o``."""
    classes, lanes, top_k = p["classes"], p["lanes"], p["top_k"]
    monitor = stream_monitor(dut, "o")
    words = [frame[n:n + lanes] for frame in frames for n in range(0, classes, lanes)]
    got, _ = await pass_words(dut, words, len(frames), in_lanes=lanes, out_lanes=top_k,
                              width=p["width"], out_width=p["index_width"],
                              valid_probability=valid_probability,
                              ready_probability=ready_probability, seed=seed)
    monitor.finish()
    expected = [np.argsort(-np.array(f), kind="stable")[:top_k].tolist() for f in frames]
    for n, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"frame {n}: scores {frames[n]} gave classes {g}, expected {e}"
    return monitor


@cocotb.test()
async def selects_top_classes(dut):
    """Random stalls first; then, with none, a result every ``classes`` cycles."""
    p = read_params()
    rng = random.Random(p["seed"])
    await start_clock_and_reset(dut)
    await _select(dut, p, random_frames(rng, p["frames"], p["classes"], p["width"]),
                  p["valid_probability"], p["ready_probability"], p["seed"])
    monitor = await _select(dut, p, random_frames(rng, 20, p["classes"], p["width"]),
                            1.0, 1.0, p["seed"] + 2)
    spacings = set(np.diff(monitor.beats).tolist())
    write_result({"result_spacings": sorted(spacings)})
    assert spacings == {p["classes"]}, f"results {spacings} cycles apart, not {p['classes']}"
