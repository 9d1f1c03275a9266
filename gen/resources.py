"""Resource model: LUTs, flip-flops and 36 Kb block RAMs of each stage of an accelerator on
UltraScale+.

Every stage's count is a linear function of a few features of its geometry (lanes, accumulator
bits, memory shape). The coefficients are least-squares fits to Yosys ``synth_xilinx -family
xcup`` runs on generated stages; ``python -m benchmarks.calibrate_resources`` reruns those
syntheses and prints new coefficients and the fit errors, and ``python -m gen bench`` compares
the model with synthesis layer by layer. It ranks folds (``gen.fold``); Yosys has the last word.
"""
import functools
import math
from dataclasses import dataclass

import numpy as np

from amaranth import Shape

from hw.mvu import sum_tree_bits, weight_bank_words
from hw.stream import elem_width

# Coefficients fitted by `python -m benchmarks.calibrate_resources` (Yosys 0.70, classic ABC) to
# every stage of random-cnv-small and random-vgg16, binary and ternary, at 16 folds, some the
# model's choice, some not, three with fully unrolled units (docs/performance.md): within -9% to
# +6% of Yosys' LUTs and -9% to +7% of its flip-flops per fold. A table per kind of stage, by
# ``gen.graph.Stage.kind``. The weight banks' registers and multiplexers, the sum trees'
# pipeline registers and the skid register are counted, not fitted.
MVU_LUT = {"lanes_binary": 1.862, "lanes_ternary": 3.029, "lanes_int8": 11.022,
           "baked_adder_bits_binary": 0.417, "baked_adder_bits_ternary": 0.803,
           "baked_adder_bits_int8": 0.898,
           "memory_luts": 1.221, "compare_bits": 0.955, "const": 79.116}
MVU_FF = {"ram_weight_bits": 1.965, "logic_weight_columns": 2.063, "acc_bits": 1.012,
          "input_bits": 2.63, "const": 48.513}
WINDOW_LUT = {"lane_bits": 0.68, "register_bits": 0.397, "const": 62.627, "memory_luts": 1.447}
WINDOW_FF = {"lane_bits": 1.881, "register_bits": 0.839, "const": 14.763}
FIFO_LUT = {"address_bits": 4.735, "memory_luts": 1.058, "const": 0.0}
FIFO_FF = {"address_bits": 1.377, "word_bits": 0.883, "const": 6.689}
POOL_LUT = {"lane_bits": 2.422, "memory_luts": 0.509, "const": 38.61}
POOL_FF = {"lane_bits": 1.959, "const": 26.733}
WIDTH_LUT = {"up_bits": 0.011, "down_bits": 1.01, "const": 5.673}
WIDTH_FF = {"register_bits": 1.01, "const": 2.999}
MAP_LUT = {"memory_luts": 0.34, "const": 0.004}
MAP_FF = {"lane_bits": 1.04, "const": 0.043}
LABEL_LUT = {"kept_bits": 1.667, "lane_bits": 0.0, "const": 8.667}
LABEL_FF = {"kept_bits": 1.0, "lane_bits": 0.0, "const": 9.0}
STAGE_TABLES = {"mvu": (MVU_LUT, MVU_FF), "window": (WINDOW_LUT, WINDOW_FF),
                "fifo": (FIFO_LUT, FIFO_FF), "pool": (POOL_LUT, POOL_FF),
                "width": (WIDTH_LUT, WIDTH_FF), "map": (MAP_LUT, MAP_FF),
                "label": (LABEL_LUT, LABEL_FF)}
# What Yosys' memory_libmap pays for each way to build a memory (Yosys 0.70 with the libraries
# boards/yosys.py gives synth_xilinx -family xcup); it takes the cheapest, logic on a tie. A
# block RAM costs the same at any width: (BRAM36 it counts for, cost, address bits at width 1),
# data widths 9, 18, ... including parity. A LUT-RAM cell costs 16 scaled by the bits of it used:
# (words, bits) of a RAM32M16 and a RAM64M8, 8 LUTs each. A ROM as logic costs 1/64 a bit,
# truncated; a ROM never goes into LUT RAM. A memory deeper than a cell adds half a point per
# read-data bit per extra cell in depth (the multiplexer) and, when written, half a point per
# cell (the decoder).
BLOCK_RAMS = ((0.5, 129, 14), (1.0, 257, 15))
BLOCK_RAM_WIDTHS = (1, 2, 4, 9, 18, 36, 72)
BLOCK_RAM_MIN_WORDS = 512
LUT_RAM_COST = 16
LUT_RAM_CELLS = ((32, 14), (64, 7))
LUT_RAM_CELL_LUTS = 8
ROM_LOGIC_COST = 1 / 64
MUX_COST = 0.5


@dataclass
class Resources:
    """Estimated LUTs, flip-flops and 36 Kb block RAMs."""
    lut: float = 0
    ff: float = 0
    bram36: float = 0

    def __add__(self, other):
        return Resources(self.lut + other.lut, self.ff + other.ff, self.bram36 + other.bram36)

    def as_dict(self):
        return {"lut": round(self.lut), "ff": round(self.ff), "bram36": self.bram36}


# The AXI4-Stream top's own logic (boards.axis), beside its width converters, which the WIDTH
# tables price: its beat and word counters, frame-flag FIFO and output multiplexer (const), the
# multiplexer that puts scores on the output (scores), and the gate that zero-fills a frame cut
# short by TLAST, about a LUT per input bit unless the gather's load multiplexer takes it in
# (gated_bits). Fitted to Yosys' counts of the top less the converters' price by
# `python -m benchmarks.calibrate_axis_top` (docs/performance.md).
AXIS_LUT = {"gated_bits": 0.919, "scores": 11.564, "const": 45.526}
AXIS_FF = {"gated_bits": 0.0, "scores": 2.356, "const": 22.444}


def memory(width, depth, *, rom=False, columns=None):
    """A ``width``-bit x ``depth``-word memory (a ``rom`` if never written) as Yosys maps it for
    UltraScale+: two words or fewer are logic; otherwise block RAM where memory_libmap finds it
    cheaper than LUT RAM (a ROM: than logic), else LUTs: a ROM as logic and wide multiplexers,
    about one per bit column per 64 words, a column built once however many times it occurs
    (``columns``: the distinct ones, default ``width``); a written memory in the LUT-RAM cells
    it costs least in, 8 LUTs each."""
    if depth <= 2:
        return Resources()
    block_cost, bram36 = _block_ram(width, depth, rom)
    if rom:
        lut_cost = int(ROM_LOGIC_COST * width * depth)
        luts = (width if columns is None else columns) * math.ceil(depth / 64)
    else:
        lut_cost, luts = _lut_ram(width, depth)
    if block_cost < lut_cost:
        return Resources(bram36=bram36)
    return Resources(lut=luts)


def _block_ram(width, depth, rom):
    """``(memory_libmap cost, BRAM36)`` of the cheapest block-RAM build of a memory."""
    builds = []
    for bram36, cost, address_bits in BLOCK_RAMS:
        for bits in BLOCK_RAM_WIDTHS:
            words = (1 << address_bits) // (bits if bits < 9 else bits // 9 * 8)
            if words >= BLOCK_RAM_MIN_WORDS:
                _, cells, mux = _cells(width, depth, words, bits, rom)
                builds.append((cells * cost + mux, cells * bram36))
    return min(builds)


def _lut_ram(width, depth):
    """``(memory_libmap cost, LUTs)`` of the cheapest LUT-RAM build of a written memory: its
    cells sit side by side in width and in depth (Yosys packs no two depths in one cell)."""
    builds = []
    for words, bits in LUT_RAM_CELLS:
        deep, _, mux = _cells(width, depth, words, bits, rom=False)
        cost = LUT_RAM_COST * deep * width / bits + mux
        builds.append((cost, LUT_RAM_CELL_LUTS * deep * math.ceil(width / bits)))
    return min(builds)


def _cells(width, depth, words, bits, rom):
    """``(cells in depth, cells, multiplexer cost)`` of a memory built of ``words`` x ``bits``
    cells, those in depth packed side by side where their bits fit."""
    deep = math.ceil(depth / words)
    cells = math.ceil(deep * width / bits)
    return deep, cells, MUX_COST * ((deep - 1) * width + (0 if rom or deep == 1 else deep))


def weight_memories(width, depth, columns=None):
    """A unit's weight ROM, ``depth`` words of ``width`` bits (``columns`` of them distinct),
    in the banks ``hw.mvu`` splits it into, with the register after each bank and the
    multiplexer that picks one (a tree of 4:1 multiplexers, one LUT6 each, per bit)."""
    bank = weight_bank_words(width, depth) or depth
    banks = sum((memory(width, min(bank, depth - start), rom=True, columns=columns)
                 for start in range(0, depth, bank)), Resources())
    count = math.ceil(depth / bank)
    if count == 1:
        return banks
    return banks + Resources(lut=width * math.ceil((count - 1) / 3), ff=width * count)


def element_bits(bits):
    """Lane width in hardware of ``bits``-bit elements (1: binary, 2: ternary, 8: integer)."""
    return {1: 1, 2: 2}.get(bits, 8)


def accumulator_bits(layer):
    """Bits of one accumulator of ``layer``: its score range."""
    bound = layer.mw * (1 if layer.in_bits in (1, 2) else 128)
    return Shape.cast(range(-bound, bound + 1)).width


class _Identity:
    """A weight array as a cache key, by identity: the arrays of a loaded network are never
    changed, and the fold chooser prices the same layer at the same fold many times. (The
    cache holds the array, so its id is not reused while the entry lives.)"""

    def __init__(self, array):
        self.array = array

    def __hash__(self):
        return id(self.array)

    def __eq__(self, other):
        return self.array is other.array


@functools.lru_cache(maxsize=1024)
def _distinct_columns(weights, pe, simd):
    mh, mw = weights.array.shape
    columns = (np.asarray(weights.array, dtype=np.uint8)
               .reshape(mh // pe, pe, mw // simd, simd).transpose(1, 3, 0, 2)
               .reshape(pe * simd, (mh // pe) * (mw // simd)))
    packed = np.packbits(columns, axis=1)
    words = np.zeros((len(packed), -(-packed.shape[1] // 8) * 8), np.uint8)
    words[:, :packed.shape[1]] = packed
    words = words.view(np.uint64)  # a column as 64-bit integers: sorted far faster than bytes
    return len(np.unique(words[:, 0] if words.shape[1] == 1 else words, axis=0))


def weight_columns(layer, fold):
    """Distinct bit columns of ``layer``'s weight memory under ``fold``: lanes that see the same
    weight in every word. Synthesis builds a column of a ROM in logic, and the register after
    it, once for all the lanes that share it."""
    return _distinct_columns(_Identity(layer.weights), fold.pe, fold.simd)


@functools.lru_cache(maxsize=1024)
def _tree_bits(simd, mw, term_bits, weights=None):
    return sum_tree_bits(simd, mw, term_bits, None if weights is None else weights.array)


def tree_bits(layer, fold):
    """``(adder bits, register bits)`` of the sum trees of ``layer``'s unit under ``fold``
    (``hw.mvu.sum_tree_bits``). Where the weights are constants (a unit one word deep), ternary
    and integer terms are built per input (``x`` or its negation), the same in every lane with
    the same weight, so lanes share their sums; binary terms come from one XOR per lane and do
    not."""
    term_bits = element_bits(layer.in_bits)
    if (layer.mh // fold.pe) * (layer.mw // fold.simd) == 1 and layer.in_bits != 1:
        return _tree_bits(fold.simd, layer.mw, term_bits, _Identity(layer.weights))
    adders, registers = _tree_bits(fold.simd, layer.mw, term_bits)
    return fold.pe * adders, fold.pe * registers


def output_word_bits(layer, fold):
    """Bits of one output word of ``layer``'s unit: ``pe`` output elements."""
    return fold.pe * (layer.out_bits or accumulator_bits(layer))


def mvu_features(layer, fold):
    """``(LUT features, flip-flop features, memories, counted flip-flops)`` of ``layer``'s unit
    under ``fold``: feature values by coefficient name, the unit's memories (weights,
    thresholds, input buffer) as ``Resources``, and the flip-flops counted rather than fitted
    (``hw.mvu``: the weight banks' registers, the pipeline registers of the sum trees and the
    skid register holding one output word). A fully unrolled unit (one word deep) has its
    weights as constants: its sum trees are priced apart, and it has no weight memory or
    register."""
    lanes = fold.pe * fold.simd
    acc = accumulator_bits(layer)
    thresholds = 0 if layer.output == "scores" else layer.thresholds.shape[1]
    depth = (layer.mh // fold.pe) * (layer.mw // fold.simd)
    in_bits = fold.simd * element_bits(layer.in_bits)
    weights = weight_memories(lanes, depth)
    in_block_ram = weights.bram36 > 0
    columns = 0 if in_block_ram or depth == 1 else weight_columns(layer, fold)
    if columns:
        weights = weight_memories(lanes, depth, columns)
    memories = (weights + memory(fold.pe * thresholds * acc, layer.mh // fold.pe, rom=True)
                + memory(in_bits, layer.mw // fold.simd))
    adder_bits, register_bits = tree_bits(layer, fold)
    kind = {1: "binary", 2: "ternary"}.get(layer.in_bits, "int8")
    datapath = ((f"baked_adder_bits_{kind}", adder_bits) if depth == 1
                else (f"lanes_{kind}", lanes))
    lut = {name: 0 for name in MVU_LUT}
    lut.update({datapath[0]: datapath[1], "memory_luts": memories.lut,
                "compare_bits": fold.pe * thresholds * acc, "const": 1})
    ff = {"ram_weight_bits": lanes if in_block_ram else 0, "logic_weight_columns": columns,
          "acc_bits": fold.pe * acc, "input_bits": in_bits, "const": 1}
    return lut, ff, memories, memories.ff + register_bits + output_word_bits(layer, fold)


def linear(coefficients, features):
    """The linear model ``coefficients`` (by feature name) applied to ``features``."""
    return sum(coefficients[name] * value for name, value in features.items())


def axis_logic_resources(features):
    """The AXI4-Stream top's own logic from its features (``boards.axis.axis_logic_features``)."""
    return Resources(linear(AXIS_LUT, features), linear(AXIS_FF, features))


def _priced(kind, lut, ff, memories, counted_ff=0):
    """A ``kind`` stage's Resources from its features under ``STAGE_TABLES``."""
    lut_table, ff_table = STAGE_TABLES[kind]
    return Resources(linear(lut_table, lut), linear(ff_table, ff) + counted_ff, memories.bram36)


def mvu_resources(layer, fold):
    """The matrix-vector unit of ``layer`` under ``fold``."""
    return _priced("mvu", *mvu_features(layer, fold))


def window_features(layer, simd):
    """``(LUT features, flip-flop features, memories)`` of conv ``layer``'s window generator."""
    h, w, c = layer.in_shape
    bits = element_bits(layer.in_bits)
    k = layer.kernel
    if simd <= c:  # SlidingWindow: a line buffer of whole rows, no window registers
        rows = max(k + 1, 2 * (k - layer.pad))
        memories, registers = memory(simd * bits, rows * w * c // simd), 0
    else:  # ParallelWindow: k-1 rows of pixels and a k x k register window
        memories, registers = memory((k - 1) * c * bits, w + 2 * layer.pad), k * k * c * bits
    features = {"lane_bits": simd * bits, "register_bits": registers, "const": 1}
    return {**features, "memory_luts": memories.lut}, features, memories


def window_resources(layer, simd):
    """The window generator of conv ``layer`` emitting ``simd``-lane words."""
    return _priced("window", *window_features(layer, simd))


def fifo_features(word_bits, depth):
    """``(LUT features, flip-flop features, memory)`` of a ``StreamFifo`` of ``depth`` words of
    ``word_bits`` bits, addressed by its pointers and level."""
    buffer = memory(word_bits, depth)
    address = Shape.cast(range(depth + 1)).width
    lut = {"address_bits": address, "memory_luts": buffer.lut, "const": 1}
    ff = {"address_bits": address, "word_bits": word_bits, "const": 1}
    return lut, ff, buffer


def fifo_resources(word_bits, depth):
    """A ``StreamFifo`` of ``depth`` words of ``word_bits`` bits."""
    return _priced("fifo", *fifo_features(word_bits, depth))


def pool_features(pool):
    """Features of a ``MaxPool``: its lanes' maximum and the row of partial maxima it keeps."""
    lane_bits = pool.simd * pool.elem_shape.width
    partial = memory(lane_bits, pool.out_width * pool.channels // pool.simd)
    return ({"lane_bits": lane_bits, "memory_luts": partial.lut, "const": 1},
            {"lane_bits": lane_bits, "const": 1}, partial)


def width_features(converter):
    """Features of a ``WidthConverter``, as ``converter_features``."""
    return converter_features(converter.elem_shape, converter.in_lanes, converter.out_lanes)


def converter_features(elem_shape, in_lanes, out_lanes):
    """Features of a ``WidthConverter`` from ``in_lanes`` to ``out_lanes`` of ``elem_shape``:
    the register it shifts words in to (up to more lanes), the one it loads or shifts words out
    of (down to fewer, a multiplexer per bit), or both (up to the lanes' least common multiple
    and down again)."""
    register_bits = math.lcm(in_lanes, out_lanes) * elem_width(elem_shape)
    divides = in_lanes % out_lanes == 0 or out_lanes % in_lanes == 0
    up, down = int(out_lanes > in_lanes or not divides), int(in_lanes > out_lanes or not divides)
    lut = {"up_bits": up * register_bits, "down_bits": down * register_bits, "const": up + down}
    ff = {"register_bits": (up + down) * register_bits, "const": up + down}
    return lut, ff, Resources()


def map_features(lane_map):
    """Features of a ``LaneMap``: a ROM per lane, whose data registers are the output."""
    out_bits = lane_map.out_shape.width
    roms = memory(out_bits, len(lane_map.table), rom=True)
    lut = {"memory_luts": lane_map.lanes * roms.lut, "const": 1}
    ff = {"lane_bits": lane_map.lanes * out_bits, "const": 1}
    return lut, ff, Resources(bram36=lane_map.lanes * roms.bram36)


def label_features(label):
    """Features of a ``LabelSelect``: a comparator and a register per kept score, and the
    multiplexer over the lanes of a word."""
    score_bits = Shape.cast(label.elem_shape).width + 1
    features = {"kept_bits": label.top_k * (score_bits + label.index_shape.width),
                "lane_bits": (label.lanes - 1) * score_bits, "const": 1}
    return features, features, Resources()


COMPONENT_FEATURES = {"pool": pool_features, "width": width_features, "map": map_features,
                      "label": label_features,
                      "fifo": lambda fifo: fifo_features(fifo.lanes * elem_width(fifo.elem_shape),
                                                         fifo.depth)}


def converter_resources(elem_shape, in_lanes, out_lanes):
    """A ``WidthConverter`` from ``in_lanes`` to ``out_lanes`` of ``elem_shape``."""
    return _priced("width", *converter_features(elem_shape, in_lanes, out_lanes))


def stage_features(stage, layer, fold):
    """``(LUT features, flip-flop features, memories, counted flip-flops)`` of one stage of a
    hardware graph (``gen.graph.Stage``) implementing ``layer`` under its ``fold``."""
    if stage.kind == "mvu":
        return mvu_features(layer, fold)
    if stage.kind == "window":
        return (*window_features(layer, fold.simd), 0)
    return (*COMPONENT_FEATURES[stage.kind](stage.component), 0)


def stage_resources(stage, layer, fold):
    """One stage of a hardware graph, as ``stage_features``."""
    return _priced(stage.kind, *stage_features(stage, layer, fold))


def graph_resources(graph):
    """``{layer name: Resources}`` of every stage of a hardware graph (``gen.graph``), each
    stage under the layer it belongs to (a width converter: the layer it feeds), plus
    ``"total"``: the whole accelerator."""
    layers = {layer.name: layer for layer in graph.network.layers}
    per_layer = {}
    for stage in graph.stages:
        cost = stage_resources(stage, layers[stage.layer], graph.fold.get(stage.layer))
        per_layer[stage.layer] = per_layer.get(stage.layer, Resources()) + cost
    per_layer["total"] = sum(per_layer.values(), Resources())
    return per_layer


def layer_resources(layer, fold):
    """Window (for a conv), matrix-vector unit and output FIFO of compute ``layer``."""
    total = (mvu_resources(layer, fold)
             + fifo_resources(output_word_bits(layer, fold), fold.fifo_depth))
    if layer.kind == "conv":
        total = total + window_resources(layer, fold.simd)
    return total


def layer_luts(layer, fold):
    return layer_resources(layer, fold).lut
