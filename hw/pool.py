"""Max-pooling of binary and ternary feature maps."""
from amaranth import Cat, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.stream import check_count, lanes_signature
from hw.window import lanes_dividing


class MaxPool(wiring.Component):
    """Max-pools each ``[height, width, channels]`` frame on ``i`` over ``kernel x kernel``.

    ``i`` and ``o`` carry words of ``simd`` lanes of ``elem_shape``: ``unsigned(1)`` for binary
    values (bit 1 ↔ +1, bit 0 ↔ −1), ``unsigned(2)`` for ternary counts (0, 1, 2 ↔ −1, 0, +1),
    frames in raster order, channels fastest (``channels/simd`` words per pixel). The stride is
    ``kernel``; as in PyTorch's floor mode, ``out_height = height // kernel`` and
    ``out_width = width // kernel``, and the input rows and columns beyond ``out_height*kernel``
    and ``out_width*kernel`` are taken and dropped. Output pixel ``(oy, ox)`` channel ``c`` is
    the maximum (for bits the OR, for counts the largest count) of input
    ``(oy*kernel + ky, ox*kernel + kx, c)`` over ``ky, kx < kernel``; output pixels leave in
    raster order, channels fastest.

    One input word is taken per cycle unless ``o`` holds a word that is not taken. An output word
    is on ``o`` one cycle after the last input word of its window was taken.
    """

    def __init__(self, *, height, width, channels, kernel, simd, elem_shape=unsigned(1)):
        self.height = check_count("height", height)
        self.width = check_count("width", width)
        self.channels = check_count("channels", channels)
        self.kernel = check_count("kernel", kernel)
        self.simd = lanes_dividing(simd, channels)
        try:
            shape = Shape.cast(elem_shape)
        except TypeError:
            shape = None
        if shape not in (unsigned(1), unsigned(2)):
            raise ValueError(f"elem_shape must be unsigned(1) (bits) or unsigned(2) (ternary "
                             f"counts), not {elem_shape!r}")
        self.elem_shape = shape
        if kernel > height or kernel > width:
            raise ValueError(f"kernel must be at most height={height} and width={width}, "
                             f"not {kernel}")
        self.out_height, self.out_width = height // kernel, width // kernel
        signature = lanes_signature(shape, simd)
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        # The maximum (for bits: the OR) of an output row's windows so far is kept per
        # (ox, channel word) in `partial`.
        # Each input word is read-modified-written there: the read is issued as the word is
        # taken (stage 0) and the OR is written back in stage 1. With one word per pixel the
        # next word of a window reads that address in the same cycle as the write, so the read
        # port is transparent to the write port. A window's first word overwrites the stale
        # partial; its last one is not written back but goes to `o`, straight from stage 1.
        m = Module()
        k, words = self.kernel, self.channels // self.simd
        width = self.elem_shape.width
        m.submodules.partial = partial = Memory(shape=unsigned(self.simd * width),
                                                depth=self.out_width * words, init=[])
        write = partial.write_port()
        read = partial.read_port(transparent_for=(write,))

        # Stage 0: the position of the word on `i`.
        word, x, kx, ox = (Signal(range(words)), Signal(range(self.width)), Signal(range(k)),
                           Signal(range((self.width - 1) // k + 1)))
        y, ky, oy = (Signal(range(self.height)), Signal(range(k)),
                     Signal(range((self.height - 1) // k + 1)))
        advance = ~self.o.valid | self.o.ready
        take = self.i.valid & advance
        m.d.comb += [self.i.ready.eq(advance), read.en.eq(advance),
                     read.addr.eq(ox * words + word)]

        last_word, last_x, last_kx = word == words - 1, x == self.width - 1, kx == k - 1
        last_y, last_ky = y == self.height - 1, ky == k - 1
        with m.If(take):
            m.d.sync += word.eq(Mux(last_word, 0, word + 1))
            with m.If(last_word):
                m.d.sync += [x.eq(Mux(last_x, 0, x + 1)), kx.eq(Mux(last_x | last_kx, 0, kx + 1)),
                             ox.eq(Mux(last_x, 0, ox + last_kx))]
                with m.If(last_x):
                    m.d.sync += [y.eq(Mux(last_y, 0, y + 1)),
                                 ky.eq(Mux(last_y | last_ky, 0, ky + 1)),
                                 oy.eq(Mux(last_y, 0, oy + last_ky))]

        # Stage 1: OR the word into its window's partial result.
        valid, data, addr = Signal(), Signal(self.simd * width), Signal.like(read.addr)
        first, last = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [valid.eq(take & (ox < self.out_width) & (oy < self.out_height)),
                         data.eq(self.i.payload), addr.eq(read.addr),
                         first.eq((kx == 0) & (ky == 0)), last.eq(last_kx & last_ky)]
        if width == 1:
            larger = data | read.data
        else:
            lanes = [(data[j * width:(j + 1) * width], read.data[j * width:(j + 1) * width])
                     for j in range(self.simd)]
            larger = Cat(Mux(new > old, new, old) for new, old in lanes)
        merged = Mux(first, data, larger)
        m.d.comb += [write.addr.eq(addr), write.data.eq(merged),
                     write.en.eq(valid & ~last),
                     self.o.valid.eq(valid & last), self.o.payload.eq(merged)]
        return m
