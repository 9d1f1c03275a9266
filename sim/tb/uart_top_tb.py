"""cocotb test of boards.uart_top.UartAccelerator: image bytes on the RX line, class bytes on TX.

Parameters: ``divisor`` (clocks per bit), ``images`` (each a list of bytes), ``label_bytes`` (bytes
per frame on TX), ``partial`` (bytes of a frame sent before a break, to check the resync),
``break_bits``, ``seed``. The result holds the class bytes received and the flags.
"""
import random

import cocotb
from cocotb.triggers import Timer

from sim.params import read_params, write_result
from sim.streams import start_clock_and_reset
from sim.tb.uart_tb import CLOCK_PS, receive_characters, send_characters


@cocotb.test()
async def classify_over_the_uart(dut):
    p = read_params()
    rng = random.Random(p["seed"])
    bit_ps = p["divisor"] * CLOCK_PS
    dut.rx.value = 1
    await start_clock_and_reset(dut, period_ns=CLOCK_PS // 1000)
    await Timer(2 * bit_ps, unit="ps")

    received = []

    async def receive(count):
        received.extend(await receive_characters(dut.tx, count, bit_ps))

    if p["partial"]:
        # Half a frame, then a break: the core must forget it and produce nothing for it.
        await send_characters(dut.rx, p["images"][0][:p["partial"]], bit_ps)
        dut.rx.value = 0
        await Timer((p["break_bits"] + 3) * bit_ps, unit="ps")
        dut.rx.value = 1
        await Timer(2 * bit_ps, unit="ps")
        assert int(dut.tx.value) == 1 and not received

    count = len(p["images"]) * p["label_bytes"]
    task = cocotb.start_soon(receive(count))
    for image in p["images"]:
        await send_characters(dut.rx, image, bit_ps, rng=rng, max_gap_bits=p.get("max_gap_bits", 0))
    # The last frame's label leaves after the pipeline's latency and its characters.
    waited = 0
    while len(received) < count:
        await Timer(bit_ps, unit="ps")
        waited += 1
        assert waited < p["timeout_bits"], f"got {len(received)} of {count} class bytes"
    await task
    write_result({"labels": received, "overrun": int(dut.overrun.value),
                  "framing_error": int(dut.framing_error.value)})
