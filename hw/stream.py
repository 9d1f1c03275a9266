"""Stream plumbing: lane signatures, FIFOs, width converters, forks and per-lane lookup tables."""
import math
import operator

from amaranth import Array, Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


def lanes_signature(elem_shape, lanes):
    """A valid/ready stream whose payload is ``lanes`` elements of ``elem_shape`` (lane 0 first)."""
    return stream.Signature(data.ArrayLayout(elem_shape, lanes))


def table_lookup(entries, index):
    """``entries[index]`` through an ``Array`` with an entry for every value of ``index`` (the
    last one repeated beyond ``entries``), so that the Verilog case is complete."""
    entries = list(entries)
    return Array(entries + entries[-1:] * ((1 << len(index)) - len(entries)))[index]


def elem_width(elem_shape):
    """Bit width of one element."""
    return Shape.cast(elem_shape).width


def check_count(name, value):
    """``value`` if it is a positive ``int``, else a ``ValueError`` naming parameter ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def check_shape(name, value, *, integer=False):
    """``value`` if it is a shape at least one bit wide; else a ``TypeError`` (not a shape) or a
    ``ValueError`` (no bits) naming ``name``.

    With ``integer``, only a plain integer ``Shape`` (``unsigned(w)`` or ``signed(w)``) is accepted.
    """
    accepted = "an integer Shape such as signed(8)" if integer else "a shape such as unsigned(1)"
    if integer and not isinstance(value, Shape):
        raise TypeError(f"{name} must be {accepted}, not {value!r}")
    try:
        width = Shape.cast(value).width
    except TypeError:
        raise TypeError(f"{name} must be {accepted}, not {value!r}") from None
    if width < 1:
        raise ValueError(f"{name} must be {accepted} at least 1 bit wide, not {value!r}")
    return value


class StreamFifo(wiring.Component):
    """A first-in first-out buffer of ``depth`` words of ``lanes`` elements.

    Any word that enters leaves unchanged and in order; ``i.ready`` is high while there is room.
    A word entering an empty FIFO is on ``o`` two cycles later.
    """

    def __init__(self, *, elem_shape=unsigned(1), lanes=1, depth=2):
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self.elem_shape, self.lanes, self.depth = elem_shape, lanes, depth
        signature = lanes_signature(elem_shape, lanes)
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.i.payload.shape()).width
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=width, depth=self.depth)
        m.d.comb += [
            buffer.w_data.eq(self.i.payload.as_value()),
            buffer.w_en.eq(self.i.valid),
            self.i.ready.eq(buffer.w_rdy),
            self.o.payload.eq(buffer.r_data),
            self.o.valid.eq(buffer.r_rdy),
            buffer.r_en.eq(self.o.ready),
        ]
        return m


class WidthConverter(wiring.Component):
    """Regroups a stream of ``in_lanes``-element words into ``out_lanes``-element words.

    The sequence of elements on ``o`` is exactly the sequence on ``i``; only the grouping into
    words changes. The element count of a frame must be a multiple of
    ``lcm(in_lanes, out_lanes)``: no partial word is ever flushed.

    Equal lane counts are a plain wire (no latency). When ``out_lanes`` divides ``in_lanes``, one
    input word is held and emitted piece by piece; when ``in_lanes`` divides ``out_lanes``, input
    words are collected into one output word; otherwise the stream is gathered up to
    ``lcm(in_lanes, out_lanes)`` lanes and then split down. Each of these steps is a register: an
    output word is valid one cycle (two for the lcm path) after the input beat that completes it.
    With the other side always ready/valid, the side that carries more words moves one word every
    cycle, with no bubbles.
    """

    def __init__(self, *, elem_shape, in_lanes, out_lanes):
        self.elem_shape = check_shape("elem_shape", elem_shape)
        self.in_lanes = check_count("in_lanes", in_lanes)
        self.out_lanes = check_count("out_lanes", out_lanes)
        super().__init__({"i": In(lanes_signature(elem_shape, in_lanes)),
                          "o": Out(lanes_signature(elem_shape, out_lanes))})

    def elaborate(self, platform):
        # Down-sizing shifts the held word right by one output word per beat, and up-sizing
        # shifts each input word in at the top, so neither needs a multiplexer over positions.
        # The up-sizer is full (o.valid) once it holds out/in words, and takes the first input
        # word of the next output word in the cycle its full word leaves; the down-sizer takes a
        # new word in the cycle its last piece leaves. Hence no bubbles on the busier side.
        m = Module()
        width = elem_width(self.elem_shape)
        i, o = self.i, self.o
        if self.in_lanes == self.out_lanes:
            m.d.comb += [o.payload.eq(i.payload), o.valid.eq(i.valid), i.ready.eq(o.ready)]
        elif self.in_lanes % self.out_lanes == 0:
            ratio, piece = self.in_lanes // self.out_lanes, self.out_lanes * width
            word = Signal(self.in_lanes * width)
            left = Signal(range(ratio + 1))  # pieces of `word` not yet sent
            m.d.comb += [o.payload.eq(word[:piece]), o.valid.eq(left != 0),
                         i.ready.eq((left == 0) | ((left == 1) & o.ready))]
            with m.If(i.valid & i.ready):
                m.d.sync += [word.eq(i.payload), left.eq(ratio)]
            with m.Elif(o.valid & o.ready):
                m.d.sync += [word.eq(word[piece:]), left.eq(left - 1)]
        elif self.out_lanes % self.in_lanes == 0:
            ratio, piece = self.out_lanes // self.in_lanes, self.in_lanes * width
            word = Signal(self.out_lanes * width)
            have = Signal(range(ratio + 1))  # input words shifted into `word`
            full = have == ratio
            m.d.comb += [o.payload.eq(word), o.valid.eq(full), i.ready.eq(~full | o.ready)]
            with m.If(i.valid & i.ready):
                m.d.sync += [word.eq(Cat(word[piece:], i.payload)),
                             have.eq(Mux(full, 1, have + 1))]
            with m.Elif(o.valid & o.ready):
                m.d.sync += have.eq(0)
        else:
            wide = math.lcm(self.in_lanes, self.out_lanes)
            m.submodules.up = up = WidthConverter(
                elem_shape=self.elem_shape, in_lanes=self.in_lanes, out_lanes=wide)
            m.submodules.down = down = WidthConverter(
                elem_shape=self.elem_shape, in_lanes=wide, out_lanes=self.out_lanes)
            wiring.connect(m, wiring.flipped(i), up.i)
            wiring.connect(m, up.o, down.i)
            wiring.connect(m, down.o, wiring.flipped(o))
        return m


class StreamFork(wiring.Component):
    """Delivers every word of ``i`` once on ``o`` and once on ``copy``.

    The two outputs move independently: each presents the current input word until it has taken
    it, and the input word is consumed once both have. ``valid`` on each output follows
    ``i.valid`` (never ``ready``); payloads are wired straight through, so there is no latency and
    a word per cycle while both outputs are ready.
    """

    def __init__(self, *, elem_shape, lanes):
        self.elem_shape = check_shape("elem_shape", elem_shape)
        self.lanes = check_count("lanes", lanes)
        signature = lanes_signature(elem_shape, lanes)
        super().__init__({"i": In(signature), "o": Out(signature), "copy": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        outputs = (self.o, self.copy)
        taken = [Signal(name=f"{name}_taken") for name in ("o", "copy")]  # this word delivered
        m.d.comb += self.i.ready.eq(Cat(t | out.ready for t, out in zip(taken, outputs)).all())
        for t, out in zip(taken, outputs):
            m.d.comb += [out.payload.eq(self.i.payload), out.valid.eq(self.i.valid & ~t)]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += t.eq(0)
            with m.Elif(out.valid & out.ready):
                m.d.sync += t.eq(1)
        return m


class LaneMap(wiring.Component):
    """Replaces each lane's value ``v`` by ``table[v]``, e.g. raw image bytes by Q1.7 integers.

    ``table`` holds ``2**in_shape.width`` integers that fit ``out_shape``; a signed lane value
    indexes by its two's-complement bits, which is Python's ``table[v]`` for negative ``v`` too.
    Each lane reads its own copy of the table, a ROM with a synchronous port, whose data register
    is the output register: a word is on ``o`` one cycle after it is taken, one word per cycle.
    """

    def __init__(self, *, table, in_shape=unsigned(8), out_shape=signed(8), lanes):
        self.in_shape = check_shape("in_shape", in_shape, integer=True)
        self.out_shape = check_shape("out_shape", out_shape, integer=True)
        self.lanes = check_count("lanes", lanes)
        try:
            table = tuple(operator.index(v) for v in table)
        except TypeError:
            raise TypeError(f"table must be a sequence of integers, not {table!r}") from None
        depth = 1 << in_shape.width
        if len(table) != depth:
            raise ValueError(f"table must have 2**in_shape.width = {depth} entries, "
                             f"not {len(table)}")
        low = -(1 << (out_shape.width - 1)) if out_shape.signed else 0
        high = low + (1 << out_shape.width) - 1
        for v, entry in enumerate(table):
            if not low <= entry <= high:
                raise ValueError(f"table[{v}] = {entry} does not fit out_shape {out_shape!r}; "
                                 f"accepted entries are {low}..{high}")
        self.table = table
        super().__init__({"i": In(lanes_signature(in_shape, lanes)),
                          "o": Out(lanes_signature(out_shape, lanes))})

    def elaborate(self, platform):
        # A ROM per lane: Yosys' memory mapper runs out of memory on one ROM with dozens of
        # read ports (49 for an MLP's first layer).
        m = Module()
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        for lane in range(self.lanes):
            m.submodules[f"rom{lane}"] = rom = Memory(shape=self.out_shape,
                                                      depth=len(self.table), init=self.table)
            port = rom.read_port()
            m.d.comb += [port.addr.eq(self.i.payload[lane]), port.en.eq(advance),
                         self.o.payload[lane].eq(port.data)]
        return m
