"""cocotb drivers and monitors for valid/ready streams whose payload is a word of lanes.

Every coroutine here drives signals just after a rising clock edge and samples them at the
falling edge, when they have settled; a beat moves at the rising edge after a sample that saw
``valid & ready``.
"""
import random

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


def pack_lanes(values, width):
    """One flat integer from lane values (lane 0 in the lowest bits; negatives in two's complement)."""
    mask = (1 << width) - 1
    word = 0
    for lane, value in enumerate(values):
        word |= (int(value) & mask) << (lane * width)
    return word


def unpack_lanes(word, lanes, width, signed=False):
    """Lane values of a flat integer, sign-extended when ``signed``."""
    mask = (1 << width) - 1
    values = []
    for lane in range(lanes):
        value = (word >> (lane * width)) & mask
        if signed and value >> (width - 1):
            value -= 1 << width
        values.append(value)
    return values


def assert_elements_equal(got, expected, *, lanes, words_per_frame):
    """Raise naming the first wrong word (frame, word, both values) unless the element streams
    ``got`` and ``expected`` (words of ``lanes`` elements, flat or not) are equal."""
    got, expected = np.asarray(got).reshape(-1), np.asarray(expected).reshape(-1)
    wrong = np.flatnonzero(got != expected)
    if len(wrong):
        word = wrong[0] // lanes
        raise AssertionError(
            f"{len(wrong)} wrong elements; first in frame {word // words_per_frame}, word "
            f"{word % words_per_frame}: got {got[word * lanes:(word + 1) * lanes].tolist()}, "
            f"expected {expected[word * lanes:(word + 1) * lanes].tolist()}")


async def start_clock_and_reset(dut, period_ns=10, cycles=3):
    """Start ``dut.clk`` and hold ``dut.rst`` for a few cycles."""
    Clock(dut.clk, period_ns, unit="ns").start()
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class StreamSource:
    """Sends words on stream ``prefix`` (``prefix__payload/valid/ready``) with random valid gaps."""

    def __init__(self, dut, prefix, *, lanes, width, valid_probability=1.0, rng=None):
        self.clk = dut.clk
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.lanes, self.width = lanes, width
        self.valid_probability = valid_probability
        self.rng = rng or random.Random(0)
        self.valid.value = 0

    async def send(self, words):
        """Send each word (a sequence of lane values); returns when the last one was taken."""
        index, holding = 0, False
        while index < len(words):
            if not holding and self.rng.random() < self.valid_probability:
                self.payload.value = pack_lanes(words[index], self.width)
                holding = True
            self.valid.value = int(holding)
            await FallingEdge(self.clk)
            fired = holding and int(self.ready.value) == 1
            await RisingEdge(self.clk)
            if fired:
                index += 1
                holding = False
        self.valid.value = 0


class StreamSink:
    """Takes words from stream ``prefix`` with random ready gaps; records each word's cycle."""

    def __init__(self, dut, prefix, *, lanes, width, signed=False, ready_probability=1.0,
                 rng=None):
        self.clk = dut.clk
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.lanes, self.width, self.signed = lanes, width, signed
        self.ready_probability = ready_probability
        self.rng = rng or random.Random(1)
        self.ready.value = 0

    async def receive(self, count, *, timeout_cycles=100_000):
        """The next ``count`` words as lists of lane values, and the cycle each one moved on.

        Raises ``AssertionError`` if ``timeout_cycles`` pass without a word (a deadlock).
        """
        words, cycles = [], []
        cycle = idle = 0
        while len(words) < count:
            ready = self.rng.random() < self.ready_probability
            self.ready.value = int(ready)
            await FallingEdge(self.clk)
            if ready and int(self.valid.value) == 1:
                words.append(unpack_lanes(int(self.payload.value), self.lanes, self.width,
                                          self.signed))
                cycles.append(cycle)
                idle = 0
            else:
                idle += 1
                assert idle < timeout_cycles, (
                    f"no word on the output for {timeout_cycles} cycles after {len(words)} of "
                    f"{count}: deadlock or lost data")
            await RisingEdge(self.clk)
            cycle += 1
        self.ready.value = 0
        return words, cycles
