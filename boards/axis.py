"""The accelerator as an AXI4-Stream IP: image bytes in on ``s_axis``, results out on ``m_axis``.

Port names follow Vivado's conventions (``ap_clk``, ``ap_rst_n`` active-low synchronous reset,
``s_axis_t*``, ``m_axis_t*``), so its IP packager infers the clock, the reset and both stream
interfaces by itself. The byte layout of both streams is ``axis_layout``'s, which the host driver
(``boards.pynq_driver``) reads from the build's ``overlay.json``.
"""
import math

from amaranth import Cat, ClockDomain, Const, Module, Mux, Signal, unsigned
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from gen.resources import axis_logic_resources, converter_resources
from gen.top import Accelerator
from hw.stream import WidthConverter, elem_width

OUT_WORD_BYTES = 4
DEFAULT_BEAT_BYTES = 4
FRAME_FLAG_DEPTH = 8


def fitting_beat_bytes(graph, beat_bytes):
    """The largest power of two up to ``beat_bytes`` whose frames split into whole beats of
    whole first-layer words of ``graph``."""
    frame_bytes = math.prod(graph.network.input.shape)
    while frame_bytes % math.lcm(beat_bytes, graph.input_lanes):
        beat_bytes //= 2
    return beat_bytes


def axis_layout(graph, *, beat_bytes=DEFAULT_BEAT_BYTES, scores=False):
    """The byte layout of the AXI4-Stream top for ``graph``, as a JSON-serialisable dict.

    Input: each image is its elements in HWC order, one byte each (a binary input uses bit 0),
    ``beat_bytes`` per beat, lowest byte first: the largest power of two up to the requested
    width whose frames split into whole beats of whole first-layer words. Output, per frame:
    with ``scores``, ``classes`` 32-bit words of sign-extended scores, then ``label_words``
    32-bit words holding the top-k class indices as bytes, best first.
    """
    if beat_bytes not in (1, 2, 4, 8, 16, 32, 64, 128):
        raise ValueError(f"beat_bytes must be a power of two from 1 to 128, not {beat_bytes!r}")
    net = graph.network
    frame_bytes = math.prod(net.input.shape)
    beat_bytes = fitting_beat_bytes(graph, beat_bytes)
    label = graph.stages[-1].component
    if label.index_shape.width > 8:
        raise ValueError(f"a class index must fit a byte of the AXI4-Stream output; network "
                         f"{net.name!r} has {label.classes} classes")
    score_width = graph.score_stage.component.out_shape.width
    if scores and score_width > 8 * OUT_WORD_BYTES:
        raise ValueError(f"scores of {score_width} bits do not fit a {8 * OUT_WORD_BYTES}-bit "
                         f"output word")
    return {
        "network": net.name,
        "input_shape": list(net.input.shape),
        "input_bits": net.input.bits,
        "frame_bytes": frame_bytes,
        "beat_bytes": beat_bytes,
        "frame_beats": frame_bytes // beat_bytes,
        "out_word_bytes": OUT_WORD_BYTES,
        "classes": label.classes,
        "top_k": label.top_k,
        "scores": bool(scores),
        "score_bits": score_width,
        "score_words": label.classes if scores else 0,
        "label_words": -(-label.top_k // OUT_WORD_BYTES),
    }


def converter_shapes(graph, beat_bytes, scores):
    """The width converters of the AXI4-Stream top for ``graph``, as keyword arguments of
    ``WidthConverter``: ``"gather"`` from beats of ``beat_bytes`` (``fitting_beat_bytes``) to
    first-layer words and, with ``scores``, ``"spread"`` from score words to one score a word."""
    converters = {"gather": {"elem_shape": unsigned(8 if graph.network.input.bits == 8 else 1),
                             "in_lanes": beat_bytes, "out_lanes": graph.input_lanes}}
    if scores:
        converters["spread"] = {"elem_shape": graph.score_stage.component.out_shape,
                                "in_lanes": graph.stages[-2].out_lanes, "out_lanes": 1}
    return converters


def axis_logic_features(gather, beat_bytes, scores):
    """Features of the top's own logic (``gen.resources.AXIS_LUT``) for its ``gather``
    converter (``converter_shapes``): the input bits of a beat its zero-fill gate costs a LUT
    each, none when the gather holds whole beats and splits them (its load multiplexer takes the
    gate in), and whether scores go out."""
    splits = (gather["in_lanes"] > gather["out_lanes"]
              and gather["in_lanes"] % gather["out_lanes"] == 0)
    gated_bits = 0 if splits else beat_bytes * elem_width(gather["elem_shape"])
    return {"gated_bits": gated_bits, "scores": int(scores), "const": 1}


def axis_top_resources(graph, *, beat_bytes=DEFAULT_BEAT_BYTES, scores=False):
    """The resource model's price of the AXI4-Stream top around ``graph``'s accelerator, the
    accelerator not included: its width converters, and its counters, frame-flag FIFO, output
    multiplexer and zero-fill gate (``axis_logic_features``). Priced whether or not
    ``axis_layout`` accepts the network (a class index wider than a byte, scores wider than a
    word)."""
    beat_bytes = fitting_beat_bytes(graph, beat_bytes)
    converters = converter_shapes(graph, beat_bytes, scores)
    logic = axis_logic_resources(axis_logic_features(converters["gather"], beat_bytes, scores))
    return sum((converter_resources(**converter) for converter in converters.values()), logic)


class AxisAccelerator(wiring.Component):
    """The accelerator between an AXI4-Stream slave (images) and master (results).

    Framing: a frame is ``frame_beats`` input beats, counted. ``s_axis_tlast`` may be high on the
    last beat of any frame (a DMA transfer of one image or of a whole batch); the output word
    that ends the same frame then carries ``m_axis_tlast``, so a DMA receive of the batch's
    results completes. A ``tlast`` anywhere else ends the frame early: ``tlast_error`` is set
    (sticky until reset), the rest of the frame is filled with zero bytes, and its result ends
    with ``m_axis_tlast`` so the host's receive still completes; the next beat starts a frame.

    Both streams follow AXI4-Stream: a beat moves on a rising edge with ``tvalid & tready``;
    ``m_axis_tvalid`` never waits for ``m_axis_tready``, and a word once valid stays until taken.
    """

    def __init__(self, graph, *, beat_bytes=DEFAULT_BEAT_BYTES, scores=False,
                 frame_flag_depth=FRAME_FLAG_DEPTH):
        self.graph = graph
        try:
            self.layout = axis_layout(graph, beat_bytes=beat_bytes, scores=scores)
        except ValueError:
            self._MustUse__silence = True  # never elaborated: no "unused" warning for it
            raise
        self.frame_flag_depth = frame_flag_depth
        self.accelerator = Accelerator(graph)
        super().__init__({
            "ap_clk": In(1), "ap_rst_n": In(1),
            "s_axis_tdata": In(8 * self.layout["beat_bytes"]), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(8 * OUT_WORD_BYTES), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "tlast_error": Out(1),
        })

    def elaborate(self, platform):
        # Each frame's input TLAST (or early-TLAST) flag waits in a small FIFO until the frame's
        # last output word leaves; the input stalls at a frame's last beat while that FIFO is
        # full, so no flag is ever lost however many frames are in flight.
        m = Module()
        m.domains.sync = cd = ClockDomain("sync", local=True)
        m.d.comb += [cd.clk.eq(self.ap_clk), cd.rst.eq(~self.ap_rst_n)]
        layout = self.layout
        accelerator = m.submodules.accelerator = self.accelerator
        m.submodules.flags = flags = fifo.SyncFIFO(width=1, depth=self.frame_flag_depth)

        # Input: beats → first-layer words.
        beat_bytes, binary = layout["beat_bytes"], layout["input_bits"] != 8
        converters = converter_shapes(self.graph, beat_bytes, layout["scores"])
        m.submodules.gather = gather = WidthConverter(**converters["gather"])
        wiring.connect(m, gather=gather.o, accelerator=accelerator.i)
        beat = Signal(range(layout["frame_beats"]))
        padding = Signal()  # zero-filling the rest of a frame cut short by TLAST
        last_beat = beat == layout["frame_beats"] - 1
        room = ~last_beat | flags.w_rdy
        for lane in range(beat_bytes):
            byte = self.s_axis_tdata[8 * lane:8 * lane + 8]
            m.d.comb += gather.i.payload[lane].eq(Mux(padding, 0, byte[0] if binary else byte))
        m.d.comb += [gather.i.valid.eq((padding | self.s_axis_tvalid) & room),
                     self.s_axis_tready.eq(~padding & gather.i.ready & room)]
        with m.If(gather.i.valid & gather.i.ready):
            m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
            with m.If(last_beat):
                m.d.comb += [flags.w_en.eq(1), flags.w_data.eq(padding | self.s_axis_tlast)]
                m.d.sync += padding.eq(0)
            with m.Elif(~padding & self.s_axis_tlast):
                m.d.sync += [padding.eq(1), self.tlast_error.eq(1)]

        # Output: per frame, the scores (optional), then the label words.
        label_bytes = [Cat(index, Const(0, 8 - len(index))) for index in accelerator.o.payload]
        label_bytes += [Const(0, 8)] * (OUT_WORD_BYTES * layout["label_words"] - len(label_bytes))
        label_words = [Cat(*label_bytes[i:i + OUT_WORD_BYTES])
                       for i in range(0, len(label_bytes), OUT_WORD_BYTES)]
        word = Signal(range(max(layout["label_words"], layout["classes"])))
        in_scores = Signal(init=layout["scores"])
        last_word = word == layout["label_words"] - 1
        out_fire = self.m_axis_tvalid & self.m_axis_tready

        if layout["scores"]:
            m.submodules.spread = spread = WidthConverter(**converters["spread"])
            wiring.connect(m, accelerator=accelerator.scores, spread=spread.i)
            m.d.comb += spread.o.ready.eq(in_scores & self.m_axis_tready)
            last_score = word == layout["classes"] - 1
            with m.If(in_scores):
                m.d.comb += [self.m_axis_tdata.eq(spread.o.payload[0].as_signed()),
                             self.m_axis_tvalid.eq(spread.o.valid)]
                with m.If(out_fire):
                    m.d.sync += [word.eq(Mux(last_score, 0, word + 1)),
                                 in_scores.eq(~last_score)]
        else:
            m.d.comb += accelerator.scores.ready.eq(1)

        with m.If(~in_scores):
            m.d.comb += [
                self.m_axis_tdata.eq(Cat(*label_words).word_select(word, 8 * OUT_WORD_BYTES)),
                self.m_axis_tvalid.eq(accelerator.o.valid & (~last_word | flags.r_rdy)),
                self.m_axis_tlast.eq(last_word & flags.r_data),
            ]
            with m.If(out_fire):
                m.d.sync += word.eq(Mux(last_word, 0, word + 1))
                with m.If(last_word):
                    m.d.comb += [accelerator.o.ready.eq(1), flags.r_en.eq(1)]
                    m.d.sync += in_scores.eq(layout["scores"])
        return m
