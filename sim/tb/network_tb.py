"""cocotb test of a whole accelerator: images in, labels and scores out, cycles recorded."""
import random

import cocotb

from sim.params import read_params, write_result
from sim.streams import StreamSink, StreamSource, start_clock_and_reset


@cocotb.test()
async def classify_images(dut):
    p = read_params()
    rng = random.Random(p["seed"])
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", lanes=p["input_lanes"], width=p["input_width"],
                          valid_probability=p["valid_probability"], rng=rng)
    labels = StreamSink(dut, "o", lanes=p["label_lanes"], width=p["label_width"],
                        ready_probability=p["ready_probability"], rng=random.Random(p["seed"] + 1))
    scores = StreamSink(dut, "scores", lanes=p["score_lanes"], width=p["score_width"], signed=True,
                        ready_probability=p["ready_probability"], rng=random.Random(p["seed"] + 2))
    cocotb.start_soon(source.send(p["input_words"]))
    score_task = cocotb.start_soon(scores.receive(p["images"] * p["classes"] // p["score_lanes"],
                                                  timeout_cycles=p["timeout_cycles"]))
    label_words, label_cycles = await labels.receive(p["images"], timeout_cycles=p["timeout_cycles"])
    score_words, _ = await score_task
    write_result({"labels": [v for w in label_words for v in w],
                  "scores": [v for w in score_words for v in w],
                  "label_cycles": label_cycles})
