"""The parallel sliding-window generator: a register window that emits words spanning pixels."""
from amaranth import C, Cat, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.stream import check_count, lanes_signature
from hw.window import store_window_parameters


class ParallelWindow(wiring.Component):
    """Emits the stride-1 convolution windows of each ``[height, width, channels]`` frame on ``i``,
    several pixels of a window per word.

    ``i`` carries one pixel per word (``channels`` lanes of ``elem_shape``), a frame in raster
    order, frames back to back. ``o`` carries words of ``simd`` lanes, ``simd`` a multiple of
    ``channels`` dividing ``kernel*kernel*channels``, and its element stream is exactly that of
    ``hw.window.SlidingWindow``: the frame is padded by ``pad`` pixels of ``pad_value`` (in every
    lane) on each side, ``out_height = height + 2*pad - kernel + 1`` and ``out_width`` likewise,
    and for each output pixel ``(oy, ox)`` in raster order come its ``kernel*kernel*channels``
    window elements in ``(ky, kx, c)`` order: ``words_per_window = kernel*kernel*channels/simd``
    words.

    The generator steps over the padded frame, one padded pixel per step and at most one step a
    clock; a step at a pad position takes nothing from ``i``. The step at padded position
    ``(oy+kernel-1, ox+kernel-1)`` completes window ``(oy, ox)``, whose first word is on ``o``
    the next cycle; it may happen only in the cycle the previous window's last word leaves (or
    later), while the steps in between go on meanwhile. With ``i`` always valid and ``o`` always
    ready a frame therefore takes exactly ``cycles_per_frame`` clocks, the same for every frame
    including the first: ``words_per_window`` per window in a row, ``max(kernel,
    words_per_window)`` from a row's last window to the next row's first, and ``max((kernel-1) *
    (width+2*pad+1) + 1, words_per_window)`` from a frame's last window to the next frame's
    first. That is ``(height+2*pad) * (width+2*pad)`` for a whole window per word, and about
    ``out_height*out_width*words_per_window`` for narrower words.
    """

    def __init__(self, *, height, width, channels, kernel, pad=0, simd, elem_shape=unsigned(1),
                 pad_value=0):
        store_window_parameters(self, height=height, width=width, channels=channels,
                                kernel=kernel, pad=pad, elem_shape=elem_shape,
                                pad_value=pad_value)
        check_count("simd", simd)
        window = kernel * kernel * channels
        if simd % channels or window % simd:
            accepted = [g * channels for g in range(1, kernel * kernel + 1)
                        if kernel * kernel % g == 0]
            raise ValueError(f"simd must be a multiple of channels={channels} dividing "
                             f"kernel*kernel*channels={window} (one of {accepted}), not {simd}")
        self.simd = simd
        self.words_per_window = window // simd
        super().__init__({"i": In(lanes_signature(elem_shape, channels)),
                          "o": Out(lanes_signature(elem_shape, simd))})

    @property
    def frame_gap(self):
        """Clocks from a frame's last window to the next frame's first, at full rate."""
        return window_frame_gap(width=self.width, kernel=self.kernel, pad=self.pad,
                                words_per_window=self.words_per_window)

    @property
    def cycles_per_frame(self):
        """Clocks per frame with ``i`` always valid, ``o`` always ready and frames back to back."""
        return window_frame_cycles(height=self.height, width=self.width, kernel=self.kernel,
                                   pad=self.pad, words_per_window=self.words_per_window)

    def elaborate(self, platform):
        # A step shifts one padded pixel column into a register window: `row{ky}` holds the
        # last kernel-1 pixels of padded row py-kernel+1+ky, and the new column is the
        # line-buffer word at column px (the kernel-1 pixels above, oldest first) topped by the
        # current pixel; the column less its oldest pixel is written back. The line buffer is read
        # one step ahead (address px+1), so its registered data holds column px when the step
        # comes. A step that completes a window loads the whole window into `hold`, which
        # shifts it out a word per clock; it may load in the cycle its last word leaves, and
        # steps that complete no window (the first kernel-1 rows and columns of the padded
        # frame) do not wait for it. Pad pixels are injected at pad positions and stored like
        # any other, and the rows a frame inherits from the previous one never reach a window.
        m = Module()
        k, pad, words = self.kernel, self.pad, self.words_per_window
        padded_height, padded_width = self.height + 2 * pad, self.width + 2 * pad
        pixel_width = Shape.cast(self.i.payload.shape()).width
        py = Signal(range(padded_height))
        px = Signal(range(padded_width))
        last_px, last_py = px == padded_width - 1, py == padded_height - 1
        px_next = Signal.like(px)
        m.d.comb += px_next.eq(Mux(last_px, 0, px + 1))

        completes = (py >= k - 1) & (px >= k - 1) if k > 1 else C(1, 1)
        pixel = Signal(pixel_width)  # the pixel at (py, px): from `i`, or a pad pixel
        m.d.comb += pixel.eq(self.i.payload.as_value())
        at_pad = C(0, 1)
        if pad:
            at_pad = ((py < pad) | (py >= self.height + pad)
                      | (px < pad) | (px >= self.width + pad))
            with m.If(at_pad):
                m.d.comb += pixel.eq(self.i.payload.shape().const(
                    [self.pad_value] * self.channels).as_value())

        # The output: `hold` is the window, its low `simd` lanes on `o`; `left` more words follow.
        hold = Signal(k * k * pixel_width)
        left = Signal(range(words))
        word_width = len(hold) // words
        accept = ~self.o.valid | (self.o.ready & (left == 0))
        step = Signal()
        m.d.comb += [self.i.ready.eq(~at_pad & (~completes | accept)),
                     step.eq((at_pad | self.i.valid) & (~completes | accept)),
                     self.o.payload.eq(hold[:word_width])]

        column = pixel
        if k > 1:
            m.submodules.lines = lines = Memory(shape=unsigned((k - 1) * pixel_width),
                                                depth=padded_width, init=[])
            read, write = lines.read_port(), lines.write_port()
            column = Cat(read.data, pixel)
            m.d.comb += [read.en.eq(step), read.addr.eq(px_next),
                         write.en.eq(step), write.addr.eq(px),
                         write.data.eq(column[pixel_width:])]
        window = []
        for ky in range(k):
            new = column[ky * pixel_width:(ky + 1) * pixel_width]
            if k > 1:
                row = Signal((k - 1) * pixel_width, name=f"row{ky}")
                with m.If(step):
                    m.d.sync += row.eq(Cat(row[pixel_width:], new))
                new = Cat(row, new)
            window.append(new)

        with m.If(step):
            m.d.sync += px.eq(px_next)
            with m.If(last_px):
                m.d.sync += py.eq(Mux(last_py, 0, py + 1))
        with m.If(step & completes):
            m.d.sync += [hold.eq(Cat(window)), left.eq(words - 1), self.o.valid.eq(1)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += [hold.eq(hold[word_width:]), left.eq(left - 1)]
            with m.If(left == 0):
                m.d.sync += self.o.valid.eq(0)
        return m


def window_frame_gap(*, width, kernel, pad, words_per_window):
    """``ParallelWindow.frame_gap`` from the parameters alone."""
    return max((kernel - 1) * (width + 2 * pad + 1) + 1, words_per_window)


def window_frame_cycles(*, height, width, kernel, pad, words_per_window):
    """``ParallelWindow.cycles_per_frame`` from the parameters alone (for cycle models)."""
    out_height, out_width = height + 2 * pad - kernel + 1, width + 2 * pad - kernel + 1
    return (out_height * (out_width - 1) * words_per_window
            + (out_height - 1) * max(kernel, words_per_window)
            + window_frame_gap(width=width, kernel=kernel, pad=pad,
                               words_per_window=words_per_window))
