"""A small 8N1 UART: a receiver and a transmitter with byte streams, ``divisor`` clocks per bit."""
from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from hw.stream import lanes_signature

MIN_DIVISOR = 4
# A receiver and a transmitter whose clocks differ by less than this still agree on every bit of
# a 10-bit character sampled mid-bit (half a bit over 9.5 bits is 5%; keep half of it for the
# other side's error).
MAX_BAUD_ERROR = 0.025


def uart_divisor(clock_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clock_hz``; ``ValueError`` if the rounding error is
    over ``MAX_BAUD_ERROR`` or the divisor is below ``MIN_DIVISOR``."""
    if baud <= 0 or clock_hz <= 0:
        raise ValueError(f"baud and clock must be positive, not {baud!r} at {clock_hz!r} Hz")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud {baud:.0f} needs at least {MIN_DIVISOR} clocks per bit; "
                         f"{clock_hz / 1e6:g} MHz gives {clock_hz / baud:.2f}")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud:.0f} is {100 * error:.1f}% off at {clock_hz / 1e6:g} MHz "
                         f"(divisor {divisor}); accepted: at most {100 * MAX_BAUD_ERROR:g}%, "
                         f"e.g. {clock_hz / divisor:.0f}")
    return divisor


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR} clocks per bit, "
                         f"not {divisor!r}")
    return divisor


class UARTReceiver(wiring.Component):
    """Receives 8N1 characters (LSB first) on ``rx`` and emits each byte on ``o``.

    ``rx`` is synchronised with two flip-flops, then each bit is sampled once, in the middle of
    its ``divisor`` clocks (timed from the falling edge of the start bit). A byte is on ``o``
    about half a bit after the middle of its stop bit and stays there until taken; a byte
    that completes while the previous one is still waiting is dropped and sets ``overrun``
    (sticky). A character whose stop bit reads 0 is dropped and sets ``framing_error`` (sticky).
    ``line_break`` pulses for one cycle once ``rx`` has been low for ``break_bits`` bit times
    (a UART *break*: the host's way to say "start again"); it also clears both sticky flags,
    the framing error the break itself caused included.
    """

    def __init__(self, *, divisor, break_bits=20):
        self.divisor = _check_divisor(divisor)
        if isinstance(break_bits, bool) or not isinstance(break_bits, int) or break_bits < 11:
            raise ValueError(f"break_bits must be an integer of at least 11 (longer than a "
                             f"character), not {break_bits!r}")
        self.break_bits = break_bits
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(lanes_signature(unsigned(8), 1)),
            "overrun": Out(1),
            "framing_error": Out(1),
            "line_break": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        divisor = self.divisor
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(divisor))
        bits = Signal(range(9))
        shift = Signal(8)
        low = Signal(range(self.break_bits * divisor + 1))
        with m.If(rx):
            m.d.sync += low.eq(0)
        with m.Elif(low != self.break_bits * divisor):
            m.d.sync += low.eq(low + 1)
        m.d.comb += self.line_break.eq(low == self.break_bits * divisor - 1)
        with m.If(self.line_break):
            m.d.sync += [self.overrun.eq(0), self.framing_error.eq(0)]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        # The state is a plain register tested by an If chain: an FSM or a Switch becomes a Verilog
        # case statement that Yosys leaves incomplete, which the lint rejects.
        idle, start, data, stop, wait_high = range(5)
        state = Signal(range(5))
        with m.If(state == idle):
            with m.If(~rx):
                m.d.sync += [timer.eq(divisor // 2 - 1), state.eq(start)]
        with m.Elif(state == start):
            with m.If(timer == 0):
                m.d.sync += [timer.eq(divisor - 1), bits.eq(0)]
                # a high line in the middle of the start bit was a glitch
                m.d.sync += state.eq(Mux(rx, idle, data))
        with m.Elif(state == data):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], rx)), timer.eq(divisor - 1),
                             bits.eq(bits + 1)]
                with m.If(bits == 7):
                    m.d.sync += state.eq(stop)
        with m.Elif(state == stop):
            with m.If(timer == 0):
                with m.If(~rx):
                    m.d.sync += [self.framing_error.eq(1), state.eq(wait_high)]
                with m.Elif(self.o.valid & ~self.o.ready):
                    m.d.sync += [self.overrun.eq(1), state.eq(idle)]
                with m.Else():
                    m.d.sync += [self.o.payload.as_value().eq(shift), self.o.valid.eq(1),
                                 state.eq(idle)]
        with m.Else():  # wait_high: after a bad stop bit, for the line to go idle
            with m.If(rx):
                m.d.sync += state.eq(idle)
        return m


class UARTTransmitter(wiring.Component):
    """Sends each byte taken on ``i`` as an 8N1 character on ``tx``, ``divisor`` clocks per bit.

    ``i.ready`` is high while the line is idle; a byte is taken in one cycle and its start bit
    begins on the next, so back-to-back bytes leave one clock (not one bit) apart.
    """

    def __init__(self, *, divisor):
        self.divisor = _check_divisor(divisor)
        super().__init__({"i": In(lanes_signature(unsigned(8), 1)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shift = Signal(10, init=1)  # bit 0 is on the line; stop bit last
        left = Signal(range(11))    # bits of the character still to send, the current one too
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq((1 << 9) | (self.i.payload.as_value() << 1)),
                         left.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq((1 << 9) | (shift >> 1)), left.eq(left - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
