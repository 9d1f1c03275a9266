"""cocotb tests for hw.stream components; the ``kind`` parameter names the component under test.

Each test also watches its streams with ``sim.streams.stream_monitor``, which checks the AXI
rule that a blocked word stays valid and unchanged.
"""
import math
import random

import cocotb

from sim.params import read_params, write_result
from sim.streams import (StreamSink, StreamSource, pass_words, start_clock_and_reset,
                         stream_monitor)


def random_words(rng, count, lanes, width, signed=False):
    """``count`` words of ``lanes`` random values of ``width`` bits."""
    low = -(1 << (width - 1)) if signed else 0
    high = low + (1 << width) - 1
    return [[rng.randint(low, high) for _ in range(lanes)] for _ in range(count)]


async def _pass_words(dut, p, words, valid_probability, ready_probability, seed):
    """Send ``words`` on ``i``; the elements received on ``o``, and monitors of both streams."""
    width, signed = p["width"], p.get("signed", False)
    monitors = stream_monitor(dut, "i"), stream_monitor(dut, "o")
    got, _ = await pass_words(dut, words, len(words) * p["in_lanes"] // p["out_lanes"],
                              in_lanes=p["in_lanes"], out_lanes=p["out_lanes"], width=width,
                              signed=signed, valid_probability=valid_probability,
                              ready_probability=ready_probability, seed=seed)
    for monitor in monitors:
        monitor.finish()
    return [x for w in got for x in w], monitors


async def check_words_in_order(dut, p):
    """Any regrouping of ``in_lanes`` into ``out_lanes`` words keeps the element sequence.

    With ``full_rate``, a second run with no stalls checks that the busier side moves a word
    every cycle and that the output words are spaced as a bubble-free converter spaces them.
    """
    rng = random.Random(p["seed"])
    a, b = p["in_lanes"], p["out_lanes"]
    await start_clock_and_reset(dut)
    words = random_words(rng, p["words"], a, p["width"], p.get("signed", False))
    got, _ = await _pass_words(dut, p, words, p["valid_probability"], p["ready_probability"],
                               p["seed"])
    assert got == [x for w in words for x in w]
    if not p.get("full_rate"):
        return
    words = random_words(rng, p["words"], a, p["width"], p.get("signed", False))
    got, (i_mon, o_mon) = await _pass_words(dut, p, words, 1.0, 1.0, p["seed"] + 2)
    assert got == [x for w in words for x in w]
    # Words pass in blocks of lcm(a, b) elements: the input side needs wide/a cycles per block,
    # the output side wide/b, and the last block's output words leave on consecutive cycles.
    wide = math.lcm(a, b)
    blocks = len(words) * a // wide
    ideal_span = (blocks - 1) * max(wide // a, wide // b) + wide // b - 1
    out_span = o_mon.beats[-1] - o_mon.beats[0]
    in_span = i_mon.beats[-1] - i_mon.beats[0]
    write_result({"out_span": out_span, "ideal_out_span": ideal_span, "in_span": in_span,
                  "first_output_after": o_mon.beats[0] - i_mon.beats[0]})
    assert out_span == ideal_span, f"output words spanned {out_span} cycles, ideal {ideal_span}"
    if a <= b:
        assert in_span == len(words) - 1, f"{len(words)} input words took {in_span + 1} cycles"


async def check_fork(dut, p):
    """Each input word reaches ``o`` and ``copy`` exactly once, in order, under independent
    random ready on the two outputs."""
    rng = random.Random(p["seed"])
    lanes, width = p["lanes"], p["width"]
    await start_clock_and_reset(dut)
    words = random_words(rng, p["words"], lanes, width)
    monitors = [stream_monitor(dut, name) for name in ("o", "copy")]
    source = StreamSource(dut, "i", lanes=lanes, width=width,
                          valid_probability=p["valid_probability"], rng=rng)
    sinks = [StreamSink(dut, name, lanes=lanes, width=width, ready_probability=probability,
                        rng=random.Random(p["seed"] + 1 + n))
             for n, (name, probability) in enumerate(zip(("o", "copy"),
                                                         p["ready_probabilities"]))]
    cocotb.start_soon(source.send(words))
    receptions = [cocotb.start_soon(sink.receive(len(words))) for sink in sinks]
    for reception in receptions:
        got, _ = await reception
        assert got == words
    for monitor in monitors:
        monitor.finish()


async def check_lane_map(dut, p):
    """Every lane value ``v`` comes out as ``table[v]``; without stalls, a word every cycle."""
    rng = random.Random(p["seed"])
    lanes, table = p["lanes"], p["table"]
    await start_clock_and_reset(dut)
    for probabilities in ((p["valid_probability"], p["ready_probability"]), (1.0, 1.0)):
        words = random_words(rng, p["words"], lanes, p["in_width"], p["in_signed"])
        monitor = stream_monitor(dut, "o")
        got, _ = await pass_words(dut, words, len(words), in_lanes=lanes, out_lanes=lanes,
                                  width=p["in_width"], out_width=p["out_width"],
                                  signed=p["out_signed"], valid_probability=probabilities[0],
                                  ready_probability=probabilities[1], seed=p["seed"])
        monitor.finish()
        assert got == [[table[v] for v in w] for w in words]
    span = monitor.beats[-1] - monitor.beats[0]
    assert span == len(words) - 1, f"{len(words)} words left over {span + 1} cycles"


CHECKS = {"fifo": check_words_in_order, "converter": check_words_in_order,
          "fork": check_fork, "lane_map": check_lane_map}


@cocotb.test()
async def stream_component(dut):
    p = read_params()
    await CHECKS[p["kind"]](dut, p)
