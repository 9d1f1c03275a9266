"""The resource model: memory mapping against Yosys' own choice (synth_xilinx -family xcup), and
the pricing of every stage of a hardware graph."""
import dataclasses

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal, unsigned
from amaranth.back import verilog
from amaranth.lib.memory import Memory

from boards.yosys import estimate_xcup
from gen.fold import LayerFold, fold_for_interval
from gen.graph import build_graph
from gen.networks import random_cnv_small
from gen.resources import (STAGE_TABLES, converter_features, graph_resources, layer_luts, memory,
                           mvu_features, stage_resources, tree_bits, weight_columns)

# (width, depth, rom): the shapes where the model used to go wrong (a 512-bit x 288-word weight
# ROM that Yosys puts into 15 RAMB18s) and some on either side of each choice.
SHAPES = [(512, 288, True), (64, 512, True), (40, 256, True), (16, 64, True),
          (32, 288, False), (32, 36, False), (8, 1024, False), (72, 512, False)]


class MemoryUnderTest(Elaboratable):
    """One memory with a registered read port, written through ports unless a ROM."""

    def __init__(self, width, depth, rom, seed):
        self.width, self.depth, self.rom = width, depth, rom
        rng = np.random.default_rng(seed)  # every bit random, so none is constant
        self.init = [int.from_bytes(rng.bytes(width // 8 + 1), "little") % (1 << width)
                     for _ in range(depth)] if rom else []
        self.addr = Signal(range(depth))
        self.data = Signal(width)
        self.write_addr, self.write_data, self.write_en = (
            Signal(range(depth)), Signal(width), Signal())

    def ports(self):
        return [self.addr, self.data] + ([] if self.rom else
                                         [self.write_addr, self.write_data, self.write_en])

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=unsigned(self.width), depth=self.depth,
                                        init=self.init)
        read = mem.read_port()
        m.d.comb += [read.addr.eq(self.addr), self.data.eq(read.data)]
        if not self.rom:
            write = mem.write_port()
            m.d.comb += [write.addr.eq(self.write_addr), write.data.eq(self.write_data),
                         write.en.eq(self.write_en)]
        return m


class Memories(Elaboratable):
    """Each of ``SHAPES`` in a module of its own, ``mem0`` on, its ports those of the top."""

    def __init__(self):
        self.units = [MemoryUnderTest(*shape, seed=index) for index, shape in enumerate(SHAPES)]

    def ports(self):
        return [port for unit in self.units for port in unit.ports()]

    def elaborate(self, platform):
        m = Module()
        for index, unit in enumerate(self.units):
            m.submodules[f"mem{index}"] = unit
        return m


def test_memory_mapping_is_the_one_yosys_chooses(tmp_path):
    top = Memories()
    (tmp_path / "mems.v").write_text(verilog.convert(top, name="mems", ports=top.ports()))
    modules = estimate_xcup(tmp_path / "mems.v", "mems", per_module=True)["modules"]
    for index, (width, depth, rom) in enumerate(SHAPES):
        counts, model = modules[f"\\mems.mem{index}"], memory(width, depth, rom=rom)
        shape = f"{width} x {depth} {'ROM' if rom else 'RAM'}"
        assert counts["bram36"] == model.bram36, (shape, counts, model)
        if not model.bram36:
            assert 0.5 * model.lut <= counts["lut"] <= 2 * model.lut, (shape, counts, model)


def test_every_stage_of_a_graph_is_priced_under_its_layer():
    net = random_cnv_small()
    graph = build_graph(net, fold_for_interval(net, 6000))
    estimate = graph_resources(graph)
    assert {stage.kind for stage in graph.stages} == set(STAGE_TABLES)
    assert set(estimate) == {layer.name for layer in net.layers} | {"total"}
    layers = {layer.name: layer for layer in net.layers}
    stages = [stage_resources(stage, layers[stage.layer], graph.fold.get(stage.layer))
              for stage in graph.stages]
    assert estimate["total"].lut == pytest.approx(sum(stage.lut for stage in stages))
    for layer in net.compute_layers:  # the fold chooser's price is part of the layer's
        assert layer_luts(layer, graph.fold[layer.name]) < estimate[layer.name].lut + 1e-9


@pytest.mark.parametrize("in_lanes, out_lanes, up_bits, down_bits", [
    (8, 64, 128, 0), (64, 8, 0, 128), (8, 12, 48, 48), (4, 4, 0, 0)])
def test_a_width_converter_is_priced_by_its_shift_registers(in_lanes, out_lanes, up_bits,
                                                            down_bits):
    """Up to more lanes shifts words in; down to fewer loads or shifts them out; otherwise both,
    through the lanes' least common multiple; equal lanes are a wire."""
    lut, ff, memories = converter_features(unsigned(2), in_lanes, out_lanes)
    steps = (up_bits > 0) + (down_bits > 0)
    assert lut == {"up_bits": up_bits, "down_bits": down_bits, "const": steps}
    assert ff == {"register_bits": up_bits + down_bits, "const": steps}
    assert memories.lut == memories.bram36 == 0


def with_weights(layer, weights):
    """``layer`` with other weights (a new array: the model caches by the array)."""
    return dataclasses.replace(layer, weights=np.array(weights, dtype=np.uint8))


def test_lanes_whose_weights_are_the_same_in_every_word_are_one_column():
    conv = random_cnv_small().layer("conv1")  # 16 outputs x 144 inputs
    row = np.random.default_rng(1).integers(0, 2, conv.mw)
    equal_rows = with_weights(conv, np.tile(row, (conv.mh, 1)))
    assert weight_columns(equal_rows, LayerFold(4, 16)) == 16  # 4 lanes share each column
    assert weight_columns(conv, LayerFold(4, 16)) == 64  # random: 36-bit columns all differ


def test_a_fully_unrolled_unit_is_priced_by_its_adders_with_no_weight_memory():
    conv = random_cnv_small().layer("conv1")
    lut, ff, memories, _ = mvu_features(conv, LayerFold(conv.mh, conv.mw))
    assert lut["baked_adder_bits_binary"] == tree_bits(conv, LayerFold(conv.mh, conv.mw))[0] > 0
    assert lut["lanes_binary"] == 0 and ff["logic_weight_columns"] == ff["ram_weight_bits"] == 0
    assert memories.lut == memories.bram36 == 0
    folded, *_ = mvu_features(conv, LayerFold(conv.mh, conv.mw // 4))
    assert folded["lanes_binary"] == conv.mh * conv.mw // 4 and folded["memory_luts"] > 0


def test_constant_integer_weights_shared_by_lanes_share_their_sums():
    """A first layer whose channels all have the same weights builds one channel's sums; binary
    lanes, one XOR each, never share."""
    first, binary = (random_cnv_small().layer(name) for name in ("conv0", "conv1"))
    one_lane = tree_bits(first, LayerFold(1, first.mw))
    row = np.random.default_rng(2).integers(0, 2, first.mw)
    equal = with_weights(first, np.tile(row, (first.mh, 1)))
    assert tree_bits(equal, LayerFold(first.mh, first.mw)) == one_lane
    assert tree_bits(first, LayerFold(first.mh, first.mw))[0] > 2 * one_lane[0]
    equal_binary = with_weights(binary, np.tile(binary.weights[0], (binary.mh, 1)))
    assert tree_bits(equal_binary, LayerFold(binary.mh, binary.mw)) == tree_bits(
        binary, LayerFold(binary.mh, binary.mw)) == tuple(
        binary.mh * bits for bits in tree_bits(binary, LayerFold(1, binary.mw)))
