"""cocotb tests of boards.uart: a receiver and a transmitter side by side (``UARTPair``).

The testbench's own UART model drives ``rx`` and decodes ``tx`` in simulated time, so the RTL is
checked against the line format, not against itself.
"""
import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from sim.params import read_params, write_result
from sim.streams import StreamSink, StreamSource, start_clock_and_reset

CLOCK_PS = 10_000


async def send_characters(line, data, bit_ps, *, rng=None, max_gap_bits=0, stop=1):
    """Drive 8N1 characters on ``line``, bit time ``bit_ps``; random idle gaps between them."""
    for byte in data:
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
            line.value = bit
            await Timer(bit_ps, unit="ps")
        line.value = 1
        if rng and max_gap_bits:
            gap = int(rng.random() * max_gap_bits * bit_ps)
            if gap:
                await Timer(gap, unit="ps")


async def receive_characters(line, count, bit_ps):
    """Decode ``count`` 8N1 characters from ``line``: each bit sampled in its middle; asserts the
    stop bit is 1."""
    data = []
    for _ in range(count):
        while int(line.value) != 0:
            await FallingEdge(line)
        await Timer(bit_ps // 2, unit="ps")
        assert int(line.value) == 0, "start bit shorter than half a bit"
        byte = 0
        for i in range(8):
            await Timer(bit_ps, unit="ps")
            byte |= int(line.value) << i
        await Timer(bit_ps, unit="ps")
        assert int(line.value) == 1, f"stop bit of character {len(data)} is 0"
        data.append(byte)
    return data


async def reset(dut):
    dut.rx.value = 1
    dut.o__ready.value = 0
    dut.i__valid.value = 0
    await start_clock_and_reset(dut, period_ns=CLOCK_PS // 1000)


@cocotb.test()
async def receiver_takes_bytes_at_a_slightly_wrong_baud(dut):
    p = read_params()
    rng = random.Random(p["seed"])
    await reset(dut)
    data = [rng.randrange(256) for _ in range(p["bytes"])]
    received = []
    for error in (-p["baud_error"], p["baud_error"]):
        bit_ps = round(p["divisor"] * CLOCK_PS * (1 + error))
        chunk = data[:len(data) // 2] if error < 0 else data[len(data) // 2:]
        sink = StreamSink(dut, "o", lanes=1, width=8, ready_probability=0.5, rng=rng)
        task = cocotb.start_soon(sink.receive(len(chunk), timeout_cycles=30 * p["divisor"]))
        await send_characters(dut.rx, chunk, bit_ps, rng=rng, max_gap_bits=3)
        words, _ = await task
        received += [w[0] for w in words]
    assert received == data
    assert int(dut.overrun.value) == 0 and int(dut.framing_error.value) == 0


@cocotb.test()
async def transmitter_sends_each_byte_at_the_baud(dut):
    p = read_params()
    rng = random.Random(p["seed"] + 1)
    await reset(dut)
    data = [rng.randrange(256) for _ in range(p["bytes"])]
    source = StreamSource(dut, "i", lanes=1, width=8, valid_probability=0.3, rng=rng)
    cocotb.start_soon(source.send([[b] for b in data]))
    assert await receive_characters(dut.tx, len(data), p["divisor"] * CLOCK_PS) == data


@cocotb.test()
async def errors_are_flagged_and_a_break_clears_them(dut):
    p = read_params()
    bit_ps = p["divisor"] * CLOCK_PS
    await reset(dut)
    breaks = []

    async def count_breaks():
        while True:
            await FallingEdge(dut.clk)
            if int(dut.line_break.value):
                breaks.append(1)
    cocotb.start_soon(count_breaks())

    # A bad stop bit: the byte is dropped and the flag stays up.
    await send_characters(dut.rx, [0x5A], bit_ps, stop=0)
    await Timer(3 * bit_ps, unit="ps")
    assert int(dut.framing_error.value) == 1 and int(dut.o__valid.value) == 0
    # Two bytes nobody takes: the first waits, the second is lost.
    await send_characters(dut.rx, [0x11, 0x22], bit_ps)
    await Timer(2 * bit_ps, unit="ps")
    assert int(dut.overrun.value) == 1 and int(dut.o__valid.value) == 1
    assert int(dut.o__payload.value) == 0x11
    dut.o__ready.value = 1
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    assert int(dut.o__valid.value) == 0
    dut.o__ready.value = 0
    # A break: the line low for longer than the receiver's break time.
    dut.rx.value = 0
    await Timer((p["break_bits"] + 5) * bit_ps, unit="ps")
    dut.rx.value = 1
    await Timer(2 * bit_ps, unit="ps")
    assert len(breaks) == 1, f"line_break pulsed {len(breaks)} times for one break"
    assert int(dut.framing_error.value) == 0 and int(dut.overrun.value) == 0
    assert int(dut.o__valid.value) == 0, "a break must not deliver a byte"
    # And the receiver works again.
    await send_characters(dut.rx, [0xC3], bit_ps)
    await Timer(bit_ps, unit="ps")
    assert int(dut.o__valid.value) == 1 and int(dut.o__payload.value) == 0xC3
    write_result({"breaks": len(breaks)})
