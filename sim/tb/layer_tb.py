"""cocotb test of one layer's stages at full rate: the cycle on which each frame's last word left."""
import cocotb

from sim.params import read_params, write_result
from sim.streams import StreamSink, StreamSource, start_clock_and_reset


@cocotb.test()
async def full_rate_frames(dut):
    p = read_params()
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", lanes=p["in_lanes"], width=p["in_width"])
    sink = StreamSink(dut, "o", lanes=p["out_lanes"], width=p["out_width"],
                      signed=p["out_signed"])
    cocotb.start_soon(source.send(p["input_words"]))
    _, cycles = await sink.receive(p["output_words"], timeout_cycles=p["timeout_cycles"])
    frame = p["frame_words"]
    write_result({"frame_end_cycles": cycles[frame - 1::frame]})
