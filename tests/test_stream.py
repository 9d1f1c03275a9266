import pytest
from amaranth import unsigned

from hw.stream import StreamFifo
from sim.runner import component_verilog, run_cocotb


@pytest.mark.parametrize("lanes,depth,seed", [(1, 1, 0), (3, 2, 1), (8, 17, 2)])
def test_fifo_keeps_order_under_stalls(lanes, depth, seed):
    verilog = component_verilog(StreamFifo(elem_shape=unsigned(2), lanes=lanes, depth=depth),
                                "fifo")
    run_cocotb(verilog_text=verilog, toplevel="fifo", test_module="sim.tb.stream_tb",
               params={"seed": seed, "in_lanes": lanes, "out_lanes": lanes, "in_width": 2,
                       "words": 300, "valid_probability": 0.6, "ready_probability": 0.5})
