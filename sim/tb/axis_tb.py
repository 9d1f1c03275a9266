"""cocotb test of boards.axis.AxisAccelerator: AXI4-Stream beats in, result words out.

Parameters: ``beats`` (input beat values), ``tlast`` (one flag per beat), ``out_words`` (words
to collect), ``valid_probability``/``ready_probability`` (stalls), ``seed``, ``timeout_cycles``.
The result holds every output word with its TLAST, the cycle it moved, ``tlast_error``, and any
AXI4-Stream rule broken on either side.
"""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from sim.params import read_params, write_result


class AxisMonitor:
    """Records every beat of ``prefix`` (``prefix_tdata/tvalid/tready/tlast``) and every cycle
    where a beat that was offered but not taken was withdrawn or changed."""

    def __init__(self, dut, prefix):
        self.clk = dut.ap_clk
        self.signals = [getattr(dut, f"{prefix}_{name}") for name in ("tdata", "tvalid", "tready",
                                                                       "tlast")]
        self.beats, self.violations = [], []
        self._task = cocotb.start_soon(self._watch())

    async def _watch(self):
        cycle, held = 0, None
        while True:
            await FallingEdge(self.clk)
            data, valid, ready, last = (int(s.value) for s in self.signals)
            offered = (data, last) if valid else None
            if held is not None and offered != held:
                self.violations.append(cycle)
            if valid and ready:
                self.beats.append((data, last, cycle))
            held = offered if valid and not ready else None
            cycle += 1


async def drive_input(dut, beats, tlast, valid_probability, rng):
    index, holding = 0, False
    while index < len(beats):
        if not holding and rng.random() < valid_probability:
            dut.s_axis_tdata.value = beats[index]
            dut.s_axis_tlast.value = tlast[index]
            holding = True
        dut.s_axis_tvalid.value = int(holding)
        await FallingEdge(dut.ap_clk)
        fired = holding and int(dut.s_axis_tready.value) == 1
        await RisingEdge(dut.ap_clk)
        if fired:
            index, holding = index + 1, False
    dut.s_axis_tvalid.value = 0


@cocotb.test()
async def stream_frames_through(dut):
    p = read_params()
    rng = random.Random(p["seed"])
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tlast.value = 0
    dut.m_axis_tready.value = 0
    dut.ap_rst_n.value = 0
    Clock(dut.ap_clk, 10, unit="ns").start()
    for _ in range(3):
        await RisingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1
    inputs, outputs = AxisMonitor(dut, "s_axis"), AxisMonitor(dut, "m_axis")
    cocotb.start_soon(drive_input(dut, p["beats"], p["tlast"], p["valid_probability"], rng))
    idle = 0
    while len(outputs.beats) < p["out_words"]:
        dut.m_axis_tready.value = int(rng.random() < p["ready_probability"])
        before = len(outputs.beats)
        await RisingEdge(dut.ap_clk)
        idle = 0 if len(outputs.beats) > before else idle + 1
        assert idle < p["timeout_cycles"], (
            f"no output word for {p['timeout_cycles']} cycles after {before} of {p['out_words']}")
    dut.m_axis_tready.value = 1
    for _ in range(200):  # nothing more may come out
        await RisingEdge(dut.ap_clk)
    write_result({"words": [b[0] for b in outputs.beats], "tlast": [b[1] for b in outputs.beats],
                  "cycles": [b[2] for b in outputs.beats], "in_beats": len(inputs.beats),
                  "tlast_error": int(dut.tlast_error.value),
                  "violations": {"s_axis": inputs.violations[:10],
                                 "m_axis": outputs.violations[:10]}})
