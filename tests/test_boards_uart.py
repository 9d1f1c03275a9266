# amaranth: UnusedElaboratable=no
"""boards.uart: the 8N1 receiver and transmitter in Verilator, and the baud divisor check."""
import pytest
from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.build import LINT_WAIVERS
from boards.uart import UARTReceiver, UARTTransmitter, uart_divisor
from hw.stream import lanes_signature
from sim.runner import component_verilog, lint, run_cocotb


class UARTPair(wiring.Component):
    """A receiver and a transmitter with their ports side by side, to test both in one build."""

    def __init__(self, divisor, break_bits):
        self.rx_part = UARTReceiver(divisor=divisor, break_bits=break_bits)
        self.tx_part = UARTTransmitter(divisor=divisor)
        super().__init__({**{k: v for k, v in self.rx_part.signature.members.items()},
                          "i": In(lanes_signature(unsigned(8), 1)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver, m.submodules.transmitter = self.rx_part, self.tx_part
        m.d.comb += [self.rx_part.rx.eq(self.rx), self.tx.eq(self.tx_part.tx)]
        for name in ("overrun", "framing_error", "line_break"):
            m.d.comb += getattr(self, name).eq(getattr(self.rx_part, name))
        wiring.connect(m, receiver=self.rx_part.o, out=wiring.flipped(self.o))
        wiring.connect(m, inp=wiring.flipped(self.i), transmitter=self.tx_part.i)
        return m


@pytest.mark.parametrize("divisor", [4, 13])
def test_uart_receives_transmits_and_flags_errors(divisor, tmp_path):
    text = LINT_WAIVERS + component_verilog(UARTPair(divisor, 12), "uart")
    (tmp_path / "uart.v").write_text(text)
    linted = lint(tmp_path / "uart.v")
    assert linted.returncode == 0, linted.stderr[-3000:]
    result = run_cocotb(verilog_text=text, toplevel="uart", test_module="sim.tb.uart_tb",
                        params={"seed": divisor, "divisor": divisor, "bytes": 40,
                                "baud_error": 0.02, "break_bits": 12})
    assert result == {"breaks": 1}


def test_divisor_is_checked_for_baud_error():
    assert uart_divisor(25e6, 1_000_000) == 25
    assert uart_divisor(25e6, 115_200) == 217
    with pytest.raises(ValueError, match="baud 2000000 is 4.2% off at 25 MHz"):
        uart_divisor(25e6, 2_000_000)
    with pytest.raises(ValueError, match="at least 4 clocks per bit"):
        uart_divisor(10e6, 3_000_000)
    with pytest.raises(ValueError, match="divisor must be an integer"):
        UARTTransmitter(divisor=2)
