# amaranth: UnusedElaboratable=no
import math
import random

import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring

from hw.stream import LaneMap, StreamFifo, StreamFork, WidthConverter
from sim.runner import component_verilog, run_cocotb


class WithClock(wiring.Component):
    """Wraps a combinational ``i``/``o`` component so that its Verilog has the ``clk`` and ``rst``
    ports the testbench drives."""

    def __init__(self, inner):
        self.inner = inner
        super().__init__(inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        wiring.connect(m, wiring.flipped(self.i), self.inner.i)
        wiring.connect(m, self.inner.o, wiring.flipped(self.o))
        tick = Signal()
        m.d.sync += tick.eq(~tick)  # uses the sync domain, so clk and rst become ports
        return m


def run(component, toplevel, **params):
    return run_cocotb(verilog_text=component_verilog(component, toplevel), toplevel=toplevel,
                      test_module="sim.tb.stream_tb", params=params)


@pytest.mark.parametrize("lanes,depth,seed", [(1, 1, 0), (3, 2, 1), (8, 17, 2)])
def test_fifo_keeps_order_under_stalls(lanes, depth, seed):
    run(StreamFifo(elem_shape=unsigned(2), lanes=lanes, depth=depth), "fifo",
        kind="fifo", seed=seed, in_lanes=lanes, out_lanes=lanes, width=2, words=300,
        valid_probability=0.6, ready_probability=0.5)


@pytest.mark.parametrize("in_lanes,out_lanes,elem_shape,seed", [
    (1, 1, unsigned(2), 0), (4, 1, signed(3), 1), (1, 4, unsigned(1), 2), (3, 9, signed(8), 3),
    (9, 3, unsigned(4), 4), (4, 6, signed(5), 5), (6, 4, unsigned(2), 6), (32, 3, signed(2), 7)])
def test_width_converter_regroups_elements(in_lanes, out_lanes, elem_shape, seed):
    wide = math.lcm(in_lanes, out_lanes)
    converter = WidthConverter(elem_shape=elem_shape, in_lanes=in_lanes, out_lanes=out_lanes)
    if in_lanes == out_lanes:
        converter = WithClock(converter)  # a plain wire has no clock of its own
    run(converter, "width_converter", kind="converter", seed=seed, in_lanes=in_lanes,
        out_lanes=out_lanes, width=elem_shape.width, signed=elem_shape.signed,
        words=max(600 // wide, 3) * wide // in_lanes,
        valid_probability=0.7, ready_probability=0.6, full_rate=True)


@pytest.mark.parametrize("ready_probabilities,seed", [((0.5, 0.3), 0), ((1.0, 0.4), 1)])
def test_fork_delivers_every_word_to_both_outputs(ready_probabilities, seed):
    run(StreamFork(elem_shape=unsigned(3), lanes=2), "fork", kind="fork", seed=seed, lanes=2,
        width=3, words=500, valid_probability=0.8, ready_probabilities=ready_probabilities)


@pytest.mark.parametrize("in_shape,out_shape,lanes,seed", [
    (unsigned(8), signed(8), 4, 0), (signed(3), unsigned(5), 1, 1)])
def test_lane_map_looks_up_every_lane(in_shape, out_shape, lanes, seed):
    rng = random.Random(seed)
    low = -(1 << (out_shape.width - 1)) if out_shape.signed else 0
    table = [rng.randrange(low, low + (1 << out_shape.width)) for _ in range(1 << in_shape.width)]
    run(LaneMap(table=table, in_shape=in_shape, out_shape=out_shape, lanes=lanes), "lane_map",
        kind="lane_map", seed=seed, lanes=lanes, table=table, in_width=in_shape.width,
        in_signed=in_shape.signed, out_width=out_shape.width, out_signed=out_shape.signed,
        words=500, valid_probability=0.7, ready_probability=0.6)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(elem_shape=unsigned(1), in_lanes=0, out_lanes=1), ValueError, "in_lanes.*0"),
    (dict(elem_shape=unsigned(1), in_lanes=2, out_lanes=1.5), ValueError, "out_lanes.*1.5"),
    (dict(elem_shape="u8", in_lanes=2, out_lanes=1), TypeError, "elem_shape.*'u8'"),
    (dict(elem_shape=unsigned(0), in_lanes=2, out_lanes=1), ValueError, "elem_shape.*1 bit"),
])
def test_width_converter_refuses_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        WidthConverter(**kwargs)


def test_fork_refuses_bad_parameters():
    with pytest.raises(ValueError, match="lanes.*True"):
        StreamFork(elem_shape=unsigned(1), lanes=True)
    with pytest.raises(TypeError, match="elem_shape.*None"):
        StreamFork(elem_shape=None, lanes=1)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(table=[0] * 255, lanes=1), ValueError, "256 entries, not 255"),
    (dict(table=[0] * 255 + [128], lanes=1), ValueError, r"table\[255\] = 128.*-128\.\.127"),
    (dict(table=[0.5] * 256, lanes=1), TypeError, "table must be a sequence of integers"),
    (dict(table=[0] * 4, in_shape=2, lanes=1), TypeError, "in_shape.*integer Shape"),
    (dict(table=[0] * 256, out_shape=range(4), lanes=1), TypeError, "out_shape"),
    (dict(table=[0] * 256, lanes=0), ValueError, "lanes.*0"),
])
def test_lane_map_refuses_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        LaneMap(**kwargs)
