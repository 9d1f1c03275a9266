"""cocotb drivers and monitors for valid/ready streams whose payload is a word of lanes.

Every coroutine here drives signals just after a rising clock edge and samples them at the
falling edge, when they have settled; a beat moves at the rising edge after a sample that saw
``valid & ready``. A source whose word is refused and a sink offered nothing sleep until the
other side's ready or valid rises (AXI4-Stream lets a receiver's ready wait for valid, never a
sender's valid for ready), so a slow design costs no Python per idle cycle.
"""
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time


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


async def send_beats(clk, valid, ready, beats, offer, *, valid_probability, rng):
    """Offer each of ``beats`` on a valid/ready channel, ``offer(beat)`` setting its payload,
    with random valid gaps; returns when the last one was taken. A refused beat stays offered
    until ready rises."""
    index, holding = 0, False
    while index < len(beats):
        if not holding and rng.random() < valid_probability:
            offer(beats[index])
            holding = True
        valid.value = int(holding)
        await FallingEdge(clk)
        if holding and int(ready.value) == 0:
            await RisingEdge(ready)  # after a clock edge: sampled at the next falling edge
            continue
        await RisingEdge(clk)
        if holding:
            index, holding = index + 1, False
    valid.value = 0


class HandshakeMonitor:
    """Watches a valid/ready channel named ``name``: the cycle (``beats``) and payload values
    (``payloads``) of every beat, and every cycle where a payload that was valid but not taken
    on the cycle before is withdrawn or changed (``violations``; the AXI4-Stream rule)."""

    def __init__(self, clk, *, valid, ready, payload, name):
        self.clk, self.valid, self.ready, self.payload = clk, valid, ready, tuple(payload)
        self.name = name
        self.beats, self.payloads, self.violations = [], [], []
        self._task = cocotb.start_soon(self._watch())

    async def _watch(self):
        cycle, held = 0, None
        while True:
            await FallingEdge(self.clk)
            valid, ready = int(self.valid.value), int(self.ready.value)
            offered = tuple(int(s.value) for s in self.payload) if valid else None
            if held is not None and offered != held:
                self.violations.append(cycle)
            if valid and ready:
                self.beats.append(cycle)
                self.payloads.append(offered)
            held = offered if valid and not ready else None
            cycle += 1

    def finish(self):
        """Stop watching; fail if any blocked payload was withdrawn or changed."""
        self._task.cancel()
        assert not self.violations, (
            f"{self.name}: a blocked word was withdrawn or changed at cycles "
            f"{self.violations[:10]}")


def stream_monitor(dut, prefix):
    """A ``HandshakeMonitor`` of Amaranth stream ``prefix`` (``prefix__payload/valid/ready``)."""
    return HandshakeMonitor(dut.clk, valid=getattr(dut, f"{prefix}__valid"),
                            ready=getattr(dut, f"{prefix}__ready"),
                            payload=[getattr(dut, f"{prefix}__payload")], name=prefix)


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
        def offer(word):
            self.payload.value = pack_lanes(word, self.width)
        await send_beats(self.clk, self.valid, self.ready, words, offer,
                         valid_probability=self.valid_probability, rng=self.rng)


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
        """The next ``count`` words as lists of lane values, and the cycle each one moved on
        (counted from the call, by simulation time once the clock period is seen).

        Raises ``AssertionError`` if ``timeout_cycles`` pass without a word (a deadlock).
        """
        words, cycles = [], []
        start = period = last_word = None
        while len(words) < count:
            ready = self.rng.random() < self.ready_probability
            self.ready.value = int(ready)
            await FallingEdge(self.clk)
            now = get_sim_time()
            if start is None:
                start = last_word = now
            elif period is None:
                period = now - start
            cycle = round((now - start) / period) if period else 0
            valid = int(self.valid.value) == 1
            if ready and valid:
                words.append(unpack_lanes(int(self.payload.value), self.lanes, self.width,
                                          self.signed))
                cycles.append(cycle)
                last_word = now
            elif period and not valid:  # nothing offered: sleep until something is
                left = timeout_cycles * period - (now - last_word)
                if left > 0:
                    await First(RisingEdge(self.valid), Timer(int(left), unit="step"))
                    if int(self.valid.value) == 1:
                        continue  # just after a clock edge: draw ready, sample at the falling one
                now = get_sim_time()
            if period and now - last_word >= timeout_cycles * period:
                raise AssertionError(
                    f"no word on the output for {timeout_cycles} cycles after {len(words)} of "
                    f"{count}: deadlock or lost data")
            await RisingEdge(self.clk)
        self.ready.value = 0
        return words, cycles


async def pass_words(dut, words, count, *, in_lanes, out_lanes, width, out_width=None,
                     signed=False, valid_probability=1.0, ready_probability=1.0, seed=0):
    """Send ``words`` on stream ``i`` (``in_lanes`` lanes of ``width`` bits) and take ``count``
    words from ``o`` (``out_lanes`` lanes of ``out_width`` bits, default ``width``), with random
    valid and ready gaps seeded by ``seed`` and ``seed + 1``; returns ``StreamSink.receive``'s
    words and cycles."""
    source = StreamSource(dut, "i", lanes=in_lanes, width=width,
                          valid_probability=valid_probability, rng=random.Random(seed))
    sink = StreamSink(dut, "o", lanes=out_lanes, width=out_width or width, signed=signed,
                      ready_probability=ready_probability, rng=random.Random(seed + 1))
    cocotb.start_soon(source.send(words))
    return await sink.receive(count)
