"""cocotb tests for hw.stream components: the output equals the input, word for word."""
import random

import cocotb

from sim.params import read_params
from sim.streams import StreamSink, StreamSource, start_clock_and_reset


@cocotb.test()
async def passes_words_in_order(dut):
    p = read_params()
    rng = random.Random(p["seed"])
    await start_clock_and_reset(dut)
    words = [[rng.randrange(1 << p["in_width"]) for _ in range(p["in_lanes"])]
             for _ in range(p["words"])]
    source = StreamSource(dut, "i", lanes=p["in_lanes"], width=p["in_width"],
                          valid_probability=p["valid_probability"], rng=rng)
    sink = StreamSink(dut, "o", lanes=p["out_lanes"], width=p["in_width"],
                      ready_probability=p["ready_probability"], rng=random.Random(p["seed"] + 1))
    cocotb.start_soon(source.send(words))
    expected = [x for w in words for x in w]
    got, _ = await sink.receive(len(expected) // p["out_lanes"])
    assert [x for w in got for x in w] == expected
