"""The accelerator behind a UART: image bytes in on ``rx``, one class-index byte per frame on ``tx``.

This is the part of the ECP5 top that does not depend on a board, so it is simulated whole in
cocotb; ``boards.ecp5`` adds the board's clock (and PLL), pins and LEDs.
"""
from amaranth import Module, unsigned
from amaranth.hdl import ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards.uart import UARTReceiver, UARTTransmitter
from gen.top import Accelerator
from hw.stream import StreamFifo, WidthConverter, lanes_signature

DEFAULT_BAUD = 1_000_000
RX_FIFO_DEPTH = 16
BREAK_BITS = 20


class UartCore(wiring.Component):
    """Bytes in on ``i``, class bytes out on ``o``: the accelerator with a byte FIFO in front, the
    bytes regrouped into the first layer's words (an 8-bit input takes each byte whole, a binary
    input its bit 0), and the top-k class indices sent best first, one byte each. The scores are
    read and dropped."""

    def __init__(self, graph, *, fifo_depth=RX_FIFO_DEPTH):
        self.graph = graph
        self.fifo_depth = fifo_depth
        label = graph.stages[-1].component
        if label.index_shape.width > 8:
            self._MustUse__silence = True  # never elaborated: no "unused" warning for it
            raise ValueError(f"a class index must fit a byte over the UART; network "
                             f"{graph.network.name!r} has {label.classes} classes")
        self.accelerator = Accelerator(graph)
        self.top_k = label.top_k
        byte_stream = lanes_signature(unsigned(8), 1)
        super().__init__({"i": In(byte_stream), "o": Out(byte_stream), "frame_done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        accelerator = m.submodules.accelerator = self.accelerator
        m.submodules.fifo = fifo = StreamFifo(elem_shape=unsigned(8), lanes=1,
                                              depth=self.fifo_depth)
        wiring.connect(m, inp=wiring.flipped(self.i), fifo=fifo.i)

        in_lanes = len(accelerator.i.payload)
        binary = self.graph.network.input.bits != 8
        elem_shape = unsigned(1) if binary else unsigned(8)
        m.submodules.gather = gather = WidthConverter(elem_shape=elem_shape, in_lanes=1,
                                                      out_lanes=in_lanes)
        m.d.comb += [gather.i.payload[0].eq(fifo.o.payload[0][0] if binary else fifo.o.payload[0]),
                     gather.i.valid.eq(fifo.o.valid), fifo.o.ready.eq(gather.i.ready)]
        wiring.connect(m, gather=gather.o, accelerator=accelerator.i)

        index_shape = accelerator.o.payload.shape().elem_shape
        m.submodules.spread = spread = WidthConverter(elem_shape=index_shape,
                                                      in_lanes=self.top_k, out_lanes=1)
        wiring.connect(m, accelerator=accelerator.o, spread=spread.i)
        m.d.comb += [self.o.payload[0].eq(spread.o.payload[0]), self.o.valid.eq(spread.o.valid),
                     spread.o.ready.eq(self.o.ready),
                     accelerator.scores.ready.eq(1),
                     self.frame_done.eq(accelerator.o.valid & accelerator.o.ready)]
        return m


class UartAccelerator(wiring.Component):
    """The whole UART top: ``rx``/``tx`` lines at ``divisor`` clocks per bit around a ``UartCore``.

    The host sends each image as its raw bytes in HWC order (one byte per element) and reads one
    byte per frame (``top_k`` bytes with top-k labels): the class index. A UART break (``rx`` low
    for ``BREAK_BITS`` bit times) resets the core, so a host that lost count starts again at a
    frame boundary. ``overrun`` and ``framing_error`` are the receiver's sticky flags;
    ``frame_toggle`` flips at each classified frame (an LED that flickers while it works).
    """

    def __init__(self, graph, *, divisor, fifo_depth=RX_FIFO_DEPTH, break_bits=BREAK_BITS):
        try:
            self.core = UartCore(graph, fifo_depth=fifo_depth)
        except ValueError:
            self._MustUse__silence = True
            raise
        self.divisor, self.break_bits = divisor, break_bits
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "overrun": Out(1),
                          "framing_error": Out(1), "frame_toggle": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = UARTReceiver(divisor=self.divisor,
                                                        break_bits=self.break_bits)
        m.submodules.transmitter = transmitter = UARTTransmitter(divisor=self.divisor)
        m.submodules.core = ResetInserter({"sync": receiver.line_break})(self.core)
        wiring.connect(m, receiver=receiver.o, core=self.core.i)
        wiring.connect(m, core=self.core.o, transmitter=transmitter.i)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx),
                     self.overrun.eq(receiver.overrun),
                     self.framing_error.eq(receiver.framing_error)]
        with m.If(self.core.frame_done):
            m.d.sync += self.frame_toggle.eq(~self.frame_toggle)
        return m


def simulate(net, fold, images, *, divisor, partial=0, max_gap_bits=0, break_bits=12, seed=0):
    """Run ``images`` through the UART top in Verilator (cocotb test ``sim.tb.uart_top_tb``):
    each image's bytes on RX, its class bytes read back from TX. With ``partial``, that many
    bytes of the first image go first and a break follows, to check the resync.

    Returns ``(verilog_text, result)``; ``result`` has ``labels`` (every class byte received),
    ``overrun`` and ``framing_error``.
    """
    import math

    from gen.build import LINT_WAIVERS
    from gen.graph import build_graph
    from sim.runner import component_verilog, run_cocotb

    graph = build_graph(net, fold)
    top = UartAccelerator(graph, divisor=divisor, break_bits=break_bits)
    text = LINT_WAIVERS + component_verilog(top, "uart_top")
    frame_bits = 10 * math.prod(net.input.shape)
    result = run_cocotb(
        verilog_text=text, toplevel="uart_top", test_module="sim.tb.uart_top_tb",
        params={"seed": seed, "divisor": divisor, "partial": partial, "break_bits": break_bits,
                "max_gap_bits": max_gap_bits, "label_bytes": graph.stages[-1].component.top_k,
                "images": [[int(v) for v in image.reshape(-1)] for image in images],
                "timeout_bits": frame_bits + graph.interval // divisor + 10_000})
    return text, result
