# amaranth: UnusedElaboratable=no
"""Network + fold → hardware graph: the chain of components, their streams and their cycle counts.

Each network layer becomes one or more stages (window generator + matrix-vector unit for a conv);
width converters go wherever one stage's lanes differ from the next one's, and a FIFO follows every
compute layer. The graph knows each stage's expected cycles per frame, so the report and the
simulation compare against the same model. A graph built only to be priced or reported is never
elaborated; the linter comment above keeps Amaranth from warning of its unused components.
"""
import math
from dataclasses import dataclass, field

from amaranth import signed, unsigned

from gen.fold import (MIN_FIFO_DEPTH, check_layer_fold, has_window_queue, mvu_cycles,
                      window_cycles, window_queue_depth)
from gen.ir import ComputeLayer, LabelLayer, PoolLayer
from hw.label import LabelSelect
from hw.mvu import MatrixVectorUnit
from hw.parallel_window import ParallelWindow
from hw.pool import MaxPool
from hw.stream import LaneMap, StreamFifo, WidthConverter
from hw.window import SlidingWindow


@dataclass
class Stage:
    """One component in the chain, with the network layer it implements and its cycles per frame."""
    name: str
    kind: str
    layer: str
    component: object
    cycles: int

    @property
    def in_lanes(self):
        return len(self.component.i.payload)

    @property
    def out_lanes(self):
        return len(self.component.o.payload)


@dataclass
class HardwareGraph:
    network: object
    fold: dict
    stages: list = field(default_factory=list)

    @property
    def interval(self):
        """Steady-state cycles per frame: the slowest stage."""
        return max(stage.cycles for stage in self.stages)

    def layer_cycles(self, name):
        return max(stage.cycles for stage in self.stages if stage.layer == name)

    @property
    def input_lanes(self):
        return self.stages[0].in_lanes

    @property
    def score_stage(self):
        return next(s for s in reversed(self.stages) if s.kind == "mvu")


def _frame_words(shape, lanes):
    return math.prod(shape) // lanes


def input_elements(net):
    """How the first layer's input travels: ``(elem_shape, lane_table, pad_value)``.

    Binary input is bits. Bytes go through the input table (``lane_table``: raw byte → element)
    to ``signed(8)`` integers, unless every table value (and the first conv's padding) is ±1 or in
    {−1, 0, +1}: then the table gives bits or ternary counts, and the first layer is a binary or
    ternary unit instead of an 8-bit one (a QONNX model with a 1- or 2-bit input quantizer).
    ``pad_value`` is the padding element of a first conv in that encoding.
    """
    if net.input.bits != 8:
        return unsigned(1), None, 0
    table = net.input.table
    if table is None:
        table = [b - 256 if b >= 128 else b for b in range(256)]
    table = [int(v) for v in table]
    first = net.layers[0]
    padded = isinstance(first, ComputeLayer) and first.kind == "conv" and first.pad > 0
    pad_value = first.pad_value if padded else None
    if set(table) <= {-1, 1} and pad_value in (None, -1):
        return unsigned(1), [(v + 1) // 2 for v in table], 0
    if set(table) <= {-1, 0, 1} and pad_value in (None, -1, 0, 1):
        return unsigned(2), [v + 1 for v in table], 0 if pad_value is None else pad_value + 1
    return signed(8), table, 0 if pad_value is None else pad_value


def _since_last_unit(stages):
    """The stages after the last matrix-vector unit (all of them before the first one)."""
    units = [index for index, stage in enumerate(stages) if stage.kind == "mvu"]
    return stages[units[-1] + 1:] if units else stages


def input_lanes(layer, layer_fold):
    """Lanes a compute layer takes: its SIMD, or one whole pixel for a ``ParallelWindow``."""
    if layer.kind == "conv":
        return min(layer_fold.simd, layer.in_shape[2])
    return layer_fold.simd


def build_graph(net, fold):
    """The hardware graph of ``net`` folded by ``fold`` (a dict layer name → ``LayerFold``)."""
    graph = HardwareGraph(net, fold)
    for layer in net.compute_layers:
        check_layer_fold(layer, fold[layer.name])

    def add(name, kind, layer, component, cycles):
        graph.stages.append(Stage(name, kind, layer, component, cycles))

    def adapt(shape, elem_shape, lanes, wanted, layer):
        """Insert a width converter when the next stage takes another number of lanes."""
        if lanes != wanted:
            words = max(_frame_words(shape, lanes), _frame_words(shape, wanted))
            add(f"{layer}_width", "width", layer,
                WidthConverter(elem_shape=elem_shape, in_lanes=lanes, out_lanes=wanted), words)
        return wanted

    first = net.layers[0]
    lanes = input_lanes(first, fold[first.name]) if isinstance(first, ComputeLayer) else 1
    shape = net.input.shape
    elem_shape, lane_table, first_pad = input_elements(net)
    if lane_table is not None:
        add("input_map", "map", first.name,
            LaneMap(table=lane_table, in_shape=unsigned(8), out_shape=elem_shape, lanes=lanes),
            _frame_words(shape, lanes))

    for layer in net.layers:
        if isinstance(layer, ComputeLayer):
            layer_fold = fold[layer.name]
            lanes = adapt(layer.in_shape, elem_shape, lanes, input_lanes(layer, layer_fold),
                          layer.name)
            if layer.kind == "conv":
                h, w, c = layer.in_shape
                # Words within a pixel: line buffers; whole pixels of a window: registers.
                window_class = SlidingWindow if layer_fold.simd <= c else ParallelWindow
                # Binary and ternary maps pad with -1: bit 0, count 0.
                window = window_class(height=h, width=w, channels=c, kernel=layer.kernel,
                                      pad=layer.pad, simd=layer_fold.simd, elem_shape=elem_shape,
                                      pad_value=first_pad if layer.in_bits == 8 else 0)
                add(f"{layer.name}_window", "window", layer.name, window,
                    window_cycles(layer, layer_fold.simd))
                if has_window_queue(layer, layer_fold):
                    feed_cycles = max(s.cycles for s in _since_last_unit(graph.stages[:-1]))
                    add(f"{layer.name}_windows", "fifo", layer.name,
                        StreamFifo(elem_shape=elem_shape, lanes=layer_fold.simd,
                                   depth=window_queue_depth(layer, layer_fold, feed_cycles)),
                        layer.out_pixels * window.words_per_window)
            elif layer is not net.layers[0]:
                # The unit takes a vector only during its first output pass, at a word a clock;
                # this FIFO holds the next vector, assembled at the producer's pace meanwhile.
                words = layer.mw // layer_fold.simd
                add(f"{layer.name}_vector", "fifo", layer.name,
                    StreamFifo(elem_shape=elem_shape, lanes=lanes, depth=max(MIN_FIFO_DEPTH, words)),
                    words)
            mvu = MatrixVectorUnit(weights=layer.weights, thresholds=layer.thresholds,
                                   direction=layer.direction, pe=layer_fold.pe,
                                   simd=layer_fold.simd, in_shape=elem_shape)
            add(f"{layer.name}_mvu", "mvu", layer.name, mvu, mvu_cycles(layer, layer_fold))
            lanes, elem_shape = layer_fold.pe, mvu.out_shape
            add(f"{layer.name}_fifo", "fifo", layer.name,
                StreamFifo(elem_shape=elem_shape, lanes=lanes, depth=layer_fold.fifo_depth),
                _frame_words(layer.out_shape, lanes))
        elif isinstance(layer, PoolLayer):
            h, w, c = layer.in_shape
            add(layer.name, "pool", layer.name,
                MaxPool(height=h, width=w, channels=c, kernel=layer.kernel, simd=lanes,
                        elem_shape=elem_shape),
                _frame_words(layer.in_shape, lanes))
        elif isinstance(layer, LabelLayer):
            add(layer.name, "label", layer.name,
                LabelSelect(classes=layer.in_shape[0], lanes=lanes, elem_shape=elem_shape,
                            top_k=layer.top_k),
                layer.in_shape[0])
    return graph
