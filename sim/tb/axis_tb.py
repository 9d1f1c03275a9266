"""cocotb test of boards.axis.AxisAccelerator: AXI4-Stream beats in, result words out.

Parameters: ``beats`` (input beat values), ``tlast`` (one flag per beat), ``out_words`` (words
to collect), ``valid_probability``/``ready_probability`` (stalls), ``seed``, ``timeout_cycles``.
The result holds every output word with its TLAST, the cycle it moved, ``tlast_error``, and any
AXI4-Stream rule broken on either side.
"""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sim.params import read_params, write_result
from sim.streams import HandshakeMonitor, send_beats


def axis_monitor(dut, prefix):
    """A ``HandshakeMonitor`` of the AXI4-Stream port ``prefix`` (``prefix_tdata/tvalid/tready/
    tlast``); its payloads are ``(tdata, tlast)``."""
    port = {name: getattr(dut, f"{prefix}_{name}") for name in ("tdata", "tvalid", "tready",
                                                                  "tlast")}
    return HandshakeMonitor(dut.ap_clk, valid=port["tvalid"], ready=port["tready"],
                            payload=[port["tdata"], port["tlast"]], name=prefix)


def offer_beat(dut, beat):
    """Put one ``(tdata, tlast)`` input beat on ``s_axis``."""
    dut.s_axis_tdata.value, dut.s_axis_tlast.value = beat


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
    inputs, outputs = axis_monitor(dut, "s_axis"), axis_monitor(dut, "m_axis")
    beats = list(zip(p["beats"], p["tlast"]))
    cocotb.start_soon(send_beats(dut.ap_clk, dut.s_axis_tvalid, dut.s_axis_tready, beats,
                                 lambda beat: offer_beat(dut, beat),
                                 valid_probability=p["valid_probability"], rng=rng))
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
    write_result({"words": [data for data, _ in outputs.payloads],
                  "tlast": [last for _, last in outputs.payloads],
                  "cycles": outputs.beats, "in_beats": len(inputs.beats),
                  "tlast_error": int(dut.tlast_error.value),
                  "violations": {"s_axis": inputs.violations[:10],
                                 "m_axis": outputs.violations[:10]}})
