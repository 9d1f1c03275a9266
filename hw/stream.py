"""Stream plumbing: lane signatures and FIFOs."""
from amaranth import Module, Shape, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out


def lanes_signature(elem_shape, lanes):
    """A valid/ready stream whose payload is ``lanes`` elements of ``elem_shape`` (lane 0 first)."""
    return stream.Signature(data.ArrayLayout(elem_shape, lanes))


def elem_width(elem_shape):
    """Bit width of one element."""
    return Shape.cast(elem_shape).width


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
