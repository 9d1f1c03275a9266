"""Resource model: LUTs, flip-flops and 36 Kb block RAMs of each layer on UltraScale+.

Every stage's count is a linear function of a few features of its geometry (lanes, accumulator
bits, memory shape). The coefficients are least-squares fits to Yosys ``synth_xilinx -family
xcup`` runs on generated stages; ``python -m benchmarks.calibrate_resources`` reruns those
syntheses and prints new coefficients and the fit errors, and ``python -m gen bench`` compares
the model with synthesis layer by layer. It ranks folds (``gen.fold``); Yosys has the last word.
"""
import math
from dataclasses import dataclass

from amaranth import Shape

# Coefficients fitted by `python -m benchmarks.calibrate_resources` (see docs/performance.md).
MVU_LUT = {"lanes_binary": 1.0, "lanes_ternary": 2.0, "lanes_int8": 8.0, "acc_bits": 1.0,
           "compare_bits": 1.0, "rom_luts": 1.0, "const": 30.0}
MVU_FF = {"lanes": 1.0, "acc_bits": 2.0, "input_bits": 1.0, "const": 20.0}
WINDOW_LUT = {"lane_bits": 1.0, "register_bits": 0.5, "const": 60.0}
WINDOW_FF = {"register_bits": 1.0, "lane_bits": 1.0, "const": 40.0}
# A memory of at most this many bits, or this few words, goes into LUTs; larger ones into BRAM.
LUTRAM_MAX_BITS = 4096
LUTRAM_MAX_DEPTH = 64


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


def memory(width, depth, *, rom=False):
    """A ``width``-bit x ``depth``-word memory: LUT RAM (or ROM logic) when small, else BRAM36s
    (up to 72 bits x 512 words each, in halves of BRAM18)."""
    if depth <= 1:
        return Resources()
    if width * depth <= LUTRAM_MAX_BITS or depth <= LUTRAM_MAX_DEPTH:
        luts = width * math.ceil(depth / 64) * (1 if rom else 0.5)
        return Resources(lut=luts)
    half_blocks = min(math.ceil(width / 36) * math.ceil(depth / 512),
                      math.ceil(width / 72) * math.ceil(depth / 256) * 2)
    return Resources(bram36=half_blocks / 2 if depth <= 512 and width <= 36 else
                     math.ceil(half_blocks / 2))


def element_bits(bits):
    """Lane width in hardware of ``bits``-bit elements (1: binary, 2: ternary, 8: integer)."""
    return {1: 1, 2: 2}.get(bits, 8)


def accumulator_bits(layer):
    """Bits of one accumulator of ``layer``: its score range."""
    bound = layer.mw * (1 if layer.in_bits in (1, 2) else 128)
    return Shape.cast(range(-bound, bound + 1)).width


def mvu_resources(layer, fold):
    """The matrix-vector unit of ``layer`` under ``fold``."""
    lanes = fold.pe * fold.simd
    acc = accumulator_bits(layer)
    kind = {1: "lanes_binary", 2: "lanes_ternary"}.get(layer.in_bits, "lanes_int8")
    thresholds = 0 if layer.output == "scores" else layer.thresholds.shape[1]
    depth = (layer.mh // fold.pe) * (layer.mw // fold.simd)
    weights = memory(lanes, depth, rom=True)
    threshold_rom = memory(fold.pe * thresholds * acc, layer.mh // fold.pe, rom=True)
    in_bits = fold.simd * element_bits(layer.in_bits)
    buffer = memory(in_bits, layer.mw // fold.simd)
    lut = (MVU_LUT[kind] * lanes + MVU_LUT["acc_bits"] * fold.pe * acc
           + MVU_LUT["compare_bits"] * fold.pe * thresholds * acc
           + MVU_LUT["rom_luts"] * weights.lut + MVU_LUT["const"])
    ff = (MVU_FF["lanes"] * (lanes if depth > 1 else 0) + MVU_FF["acc_bits"] * fold.pe * acc
          + MVU_FF["input_bits"] * in_bits + MVU_FF["const"])
    return Resources(lut, ff) + Resources(threshold_rom.lut + buffer.lut, 0,
                                          weights.bram36 + threshold_rom.bram36 + buffer.bram36)


def window_resources(layer, simd):
    """The window generator of conv ``layer`` emitting ``simd``-lane words."""
    h, w, c = layer.in_shape
    bits = element_bits(layer.in_bits)
    k = layer.kernel
    if simd <= c:  # SlidingWindow: a line buffer of whole rows, no window registers
        rows = max(k + 1, 2 * (k - layer.pad))
        buffer, registers = memory(simd * bits, rows * w * c // simd), 0
    else:  # ParallelWindow: k-1 rows of pixels and a k x k register window
        buffer, registers = memory((k - 1) * c * bits, w), k * k * c * bits
    lane_bits = simd * bits
    lut = (WINDOW_LUT["lane_bits"] * lane_bits + WINDOW_LUT["register_bits"] * registers
           + WINDOW_LUT["const"])
    ff = (WINDOW_FF["register_bits"] * registers + WINDOW_FF["lane_bits"] * lane_bits
          + WINDOW_FF["const"])
    return Resources(lut, ff) + buffer


def fifo_resources(layer, fold):
    """The FIFO after ``layer``: ``fifo_depth`` words of ``pe`` output elements."""
    bits = fold.pe * (layer.out_bits or accumulator_bits(layer))
    return memory(bits, fold.fifo_depth) + Resources(lut=20, ff=2 * bits + 20)


def layer_resources(net, layer, fold):
    """Window (for a conv), matrix-vector unit and output FIFO of compute ``layer``."""
    total = mvu_resources(layer, fold) + fifo_resources(layer, fold)
    if layer.kind == "conv":
        total = total + window_resources(layer, fold.simd)
    return total


def layer_luts(net, layer, fold):
    return layer_resources(net, layer, fold).lut


def network_resources(net, fold):
    """``{layer name: Resources}`` for the compute layers, plus ``"total"``."""
    per_layer = {layer.name: layer_resources(net, layer, fold[layer.name])
                 for layer in net.compute_layers}
    per_layer["total"] = sum(per_layer.values(), Resources())
    return per_layer


def network_luts(net, fold):
    return network_resources(net, fold)["total"].lut
