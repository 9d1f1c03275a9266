"""The accelerator's top component: the hardware graph's stages joined by streams."""
from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.stream import StreamFork, lanes_signature


class Accelerator(wiring.Component):
    """A whole network as one streaming component.

    ``i`` takes the input image in HWC order, ``input_lanes`` elements per word (raw bytes for an
    8-bit input, bits for a binary one); ``o`` gives one word per frame, the top-k class indices;
    ``scores`` gives the last layer's integer scores, ``score_lanes`` per word. Both outputs must
    be drained: a frame's scores and its label leave independently.
    """

    def __init__(self, graph):
        self.graph = graph
        first, label = graph.stages[0], graph.stages[-1]
        in_shape = unsigned(8) if graph.network.input.bits == 8 else unsigned(1)
        self._score_shape = graph.score_stage.component.out_shape
        self._score_lanes = graph.stages[-2].out_lanes
        super().__init__({
            "i": In(lanes_signature(in_shape, first.in_lanes)),
            "o": Out(label.component.o.signature),
            "scores": Out(lanes_signature(self._score_shape, self._score_lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        stages = self.graph.stages
        for stage in stages:
            m.submodules[stage.name] = stage.component
        # The scores leave through a fork just before the label select, so a testbench (or a host
        # that wants them) sees exactly what the label select compared.
        m.submodules.score_fork = fork = StreamFork(elem_shape=self._score_shape,
                                                    lanes=self._score_lanes)
        wiring.connect(m, input=wiring.flipped(self.i), first=stages[0].component.i)
        for producer, consumer in zip(stages[:-2], stages[1:-1]):
            wiring.connect(m, producer=producer.component.o, consumer=consumer.component.i)
        wiring.connect(m, scores=stages[-2].component.o, fork=fork.i)
        wiring.connect(m, fork=fork.o, label=stages[-1].component.i)
        wiring.connect(m, fork=fork.copy, scores_out=wiring.flipped(self.scores))
        wiring.connect(m, label=stages[-1].component.o, output=wiring.flipped(self.o))
        return m
