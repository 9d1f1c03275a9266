"""Measure one layer's cycles per frame in Verilator: its stages alone, fed and drained at full rate."""
import numpy as np
from amaranth import Module, Shape
from amaranth.back import verilog
from amaranth.lib import wiring

from sim.runner import run_cocotb

FRAMES = 4  # the first frame fills the pipeline; the others are timed


class StageChain(wiring.Component):
    """Components joined output to input: ``i`` of the first, ``o`` of the last."""

    def __init__(self, components):
        self.components = components
        super().__init__({"i": components[0].signature.members["i"],
                          "o": components[-1].signature.members["o"]})

    def elaborate(self, platform):
        m = Module()
        for index, component in enumerate(self.components):
            m.submodules[f"stage{index}"] = component
        wiring.connect(m, source=wiring.flipped(self.i), first=self.components[0].i)
        for producer, consumer in zip(self.components, self.components[1:]):
            wiring.connect(m, producer=producer.o, consumer=consumer.i)
        wiring.connect(m, last=self.components[-1].o, sink=wiring.flipped(self.o))
        return m


def _stream_format(port):
    """``(lanes, width, signed)`` of a lanes stream."""
    shape = Shape.cast(port.payload.shape().elem_shape)
    return len(port.payload), shape.width, shape.signed


def measure_layer_cycles(graph, layer_name, *, seed=0):
    """Steady-state cycles per frame of ``layer_name``'s stages in ``graph``, measured."""
    stages = [s for s in graph.stages if s.layer == layer_name and s.kind not in ("map", "label")]
    chain = StageChain([s.component for s in stages])
    in_lanes, in_width, in_signed = _stream_format(chain.i)
    out_lanes, out_width, out_signed = _stream_format(chain.o)
    layer = next(l for l in graph.network.layers if l.name == layer_name)
    in_words = int(np.prod(layer.in_shape)) // in_lanes
    out_words = int(np.prod(layer.out_shape)) // out_lanes
    rng = np.random.default_rng(seed)
    low = -(1 << (in_width - 1)) if in_signed else 0
    high = low + (1 << in_width) - (1 if in_width == 2 else 0)  # ternary counts are 0..2
    words = rng.integers(low, high, (FRAMES * in_words, in_lanes)).tolist()
    params = {"seed": seed, "input_words": words, "in_lanes": in_lanes, "in_width": in_width,
              "out_lanes": out_lanes, "out_width": out_width, "out_signed": out_signed,
              "output_words": FRAMES * out_words, "frame_words": out_words,
              "timeout_cycles": 4 * FRAMES * max(s.cycles for s in stages) + 10_000}
    text = verilog.convert(chain, name="layer_top", emit_src=False)
    result = run_cocotb(verilog_text=text, toplevel="layer_top", test_module="sim.tb.layer_tb",
                        params=params, seed=seed)
    ends = result["frame_end_cycles"][1:]
    return (ends[-1] - ends[0]) / (len(ends) - 1)
