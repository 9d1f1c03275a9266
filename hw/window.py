"""The sliding-window generator: line buffers that turn a feature map into convolution windows."""
from amaranth import C, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.stream import check_count, lanes_signature, table_lookup


def lanes_dividing(simd, channels):
    """``simd`` if it is a positive ``int`` dividing ``channels``, else a ``ValueError``."""
    check_count("simd", simd)
    if channels % simd:
        divisors = [d for d in range(1, channels + 1) if channels % d == 0]
        raise ValueError(f"simd must divide channels={channels} (one of {divisors}), not {simd}")
    return simd


def check_window(*, height, width, channels, kernel, pad, elem_shape, pad_value):
    """``(out_height, out_width)`` of a stride-1 window over a padded frame, once every
    parameter is checked; else a ``TypeError`` or ``ValueError`` naming the bad one."""
    check_count("height", height)
    check_count("width", width)
    check_count("channels", channels)
    check_count("kernel", kernel)
    if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < kernel:
        raise ValueError(f"pad must be an integer from 0 to kernel-1={kernel - 1}, not {pad!r}")
    try:
        shape = Shape.cast(elem_shape)
    except TypeError:
        raise TypeError(f"elem_shape must be a shape such as unsigned(1) or signed(8), "
                        f"not {elem_shape!r}") from None
    if shape == unsigned(1):
        accepted, low, high = "0 (bit 0, i.e. -1) for binary elements", 0, 0
    else:
        low = -(1 << (shape.width - 1)) if shape.signed else 0
        high = low + (1 << shape.width) - 1
        accepted = f"an integer from {low} to {high} for elem_shape {shape!r}"
    if isinstance(pad_value, bool) or not isinstance(pad_value, int) \
            or not low <= pad_value <= high:
        raise ValueError(f"pad_value must be {accepted}, not {pad_value!r}")
    out_height, out_width = height + 2 * pad - kernel + 1, width + 2 * pad - kernel + 1
    if out_height < 1 or out_width < 1:
        raise ValueError(
            f"kernel={kernel} with pad={pad} leaves a {out_height}x{out_width} output from a "
            f"{height}x{width} input; accepted are kernel <= height+2*pad and "
            f"kernel <= width+2*pad")
    return out_height, out_width


def store_window_parameters(window, *, height, width, channels, kernel, pad, elem_shape,
                            pad_value):
    """Checks a window generator's frame parameters (as ``check_window``) and sets them, and
    ``out_height``/``out_width``, as attributes of ``window``."""
    window.out_height, window.out_width = check_window(
        height=height, width=width, channels=channels, kernel=kernel, pad=pad,
        elem_shape=elem_shape, pad_value=pad_value)
    window.height, window.width, window.channels, window.kernel, window.pad = \
        height, width, channels, kernel, pad
    window.elem_shape, window.pad_value = elem_shape, pad_value


class SlidingWindow(wiring.Component):
    """Emits the stride-1 convolution windows of each ``[height, width, channels]`` frame on ``i``.

    ``i`` and ``o`` carry words of ``simd`` lanes of ``elem_shape``; a frame arrives in raster
    order, channels fastest (``channels/simd`` words per pixel), and frames follow each other with
    no gap. The frame is padded by ``pad`` pixels of ``pad_value`` (in every lane) on each side, so
    ``out_height = height + 2*pad - kernel + 1`` and ``out_width`` likewise. For each output pixel
    ``(oy, ox)`` in raster order, ``o`` carries the ``kernel*kernel*channels`` window elements in
    ``(ky, kx, c)`` order, element ``(ky, kx, c)`` being input ``(oy-pad+ky, ox-pad+kx, c)`` or
    ``pad_value`` outside the frame: ``kernel*kernel*channels/simd`` words per output pixel.

    Input rows go into a circular line buffer (one ``Memory`` of ``buffer_rows * width *
    channels/simd`` words) of ``buffer_rows = max(kernel+1, 2*(kernel-pad))`` rows; a row is
    overwritten only once no window needs it any more. That is enough for both sides to run at
    full rate with frames back to back: with ``i`` always valid and ``o`` always ready, from the
    second frame on every cycle moves an output word, so a frame takes exactly ``max(out words,
    in words)`` cycles (always the output's ``out_height*out_width*kernel**2*channels/simd``),
    and ``i`` takes a word every cycle while a row slot is free (with ``kernel=1``, always). Only
    the first frame may wait for its rows. A window word is on ``o`` two cycles after it is read,
    which is as soon as its row is complete: the first word of a frame without top padding is on
    ``o`` three cycles after the beat that completes the input's first row. (The second cycle is
    a register after the padding multiplexer, so that no path runs from this block RAM into the
    next stage's.)
    """

    def __init__(self, *, height, width, channels, kernel, pad=0, simd, elem_shape=unsigned(1),
                 pad_value=0):
        store_window_parameters(self, height=height, width=width, channels=channels,
                                kernel=kernel, pad=pad, elem_shape=elem_shape,
                                pad_value=pad_value)
        self.simd = lanes_dividing(simd, channels)
        self.buffer_rows = max(kernel + 1, 2 * (kernel - pad))
        signature = lanes_signature(elem_shape, simd)
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        # The buffer is a queue of whole rows: `count` rows, oldest (`head`) first, are complete
        # and still needed. The writer appends rows at the slot after them while count < rows;
        # the reader checks each word on its own (its row is padding, or is complete), so a
        # window may start before its last row is in. Leaving an output row releases the rows no
        # later window of the frame uses; buffer_rows leaves a slot beside a window's rows, and
        # room for the next frame's first window rows beside the frame's last window rows, so
        # the writer always keeps ahead. The reader walks padded coordinates: `oy + ky` is the
        # padded row and `x0 + kcol` the word in a padded row, where a window's row segment is
        # kernel*channels/simd consecutive words, so no (kx, c) counters are needed.
        m = Module()
        k, pad, height = self.kernel, self.pad, self.height
        words = self.channels // self.simd  # words per pixel
        row_words, rows = self.width * words, self.buffer_rows
        word_width = Shape.cast(self.i.payload.shape()).width
        m.submodules.buffer = buffer = Memory(shape=unsigned(word_width), depth=rows * row_words,
                                              init=[])
        write = buffer.write_port()
        read = buffer.read_port()
        count = Signal(range(rows + 1))
        head = Signal(range(rows))

        # Writer: input words fill the buffer's addresses in turn, a row per slot.
        write_col = Signal(range(row_words))
        row_in = Signal()  # the last word of a row is written now
        m.d.comb += [self.i.ready.eq(count < rows), write.data.eq(self.i.payload),
                     write.en.eq(self.i.valid & self.i.ready),
                     row_in.eq(write.en & (write_col == row_words - 1))]
        with m.If(write.en):
            m.d.sync += [write_col.eq(Mux(row_in, 0, write_col + 1)),
                         write.addr.eq(Mux(write.addr == rows * row_words - 1, 0,
                                           write.addr + 1))]

        # Reader, stage 0: choose a word; stage 1: its data and padding flag come out of the
        # buffer; stage 2: the word, or the pad word, is on `o`. All stages move together.
        oy = Signal(range(self.out_height))
        x0 = Signal(range((self.out_width - 1) * words + 1))  # ox * words
        ky = Signal(range(k))
        kcol = Signal(range(k * words))
        row = oy + ky
        col = x0 + kcol
        row_pad = _below(row, pad) | (row >= height + pad)
        col_pad = _below(col, pad * words) | (col >= (self.width + pad) * words)
        rel = Signal(range(k))  # rows from head to this word's row
        slot = Signal(range(2 * rows))
        # The slot's first address from a table, not a multiplier (a MULT18 on the ECP5 cost
        # half the clock rate).
        slot_start = table_lookup((C((s % rows) * row_words, range(rows * row_words))
                                   for s in range(2 * rows)), slot)
        m.d.comb += [rel.eq(Mux(~_below(oy, pad), ky, row - pad)), slot.eq(head + rel),
                     read.addr.eq(slot_start + col - pad * words)]
        present = row_pad | (rel < count)  # the word is padding or its row is complete

        advance = ~self.o.valid | self.o.ready
        take = advance & present
        read_valid, padding = Signal(), Signal()
        pad_word = self.o.payload.shape().const([self.pad_value] * self.simd)
        m.d.comb += read.en.eq(advance)
        with m.If(advance):
            m.d.sync += [read_valid.eq(present), padding.eq(row_pad | col_pad),
                         self.o.valid.eq(read_valid),
                         self.o.payload.eq(Mux(padding, pad_word, read.data))]

        last_kcol, last_ky = kcol == k * words - 1, ky == k - 1
        last_x, last_y = x0 == (self.out_width - 1) * words, oy == self.out_height - 1
        row_out = take & last_kcol & last_ky & last_x  # the output row's last word is read now
        release = Mux(last_y, min(k - pad, height), ~_below(oy, pad))
        with m.If(take):
            m.d.sync += kcol.eq(Mux(last_kcol, 0, kcol + 1))
            with m.If(last_kcol):
                m.d.sync += ky.eq(Mux(last_ky, 0, ky + 1))
                with m.If(last_ky):
                    m.d.sync += x0.eq(Mux(last_x, 0, x0 + words))
                    with m.If(last_x):
                        m.d.sync += oy.eq(Mux(last_y, 0, oy + 1))
        with m.If(row_out):
            m.d.sync += head.eq(Mux(head + release >= rows, head + release - rows,
                                    head + release))
        m.d.sync += count.eq(count + row_in - Mux(row_out, release, 0))
        return m


def _below(value, bound):
    """``value < bound`` for an unsigned value; a constant 0 when ``bound`` is 0, which keeps
    ``x < 0`` (always false) out of the Verilog, where lint would flag it."""
    return value < bound if bound else C(0, 1)
