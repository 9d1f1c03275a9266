"""Build targets and their boards: which FPGA part a ``--target``/``--board`` pair means.

A target is an FPGA family with one build flow (``ultrascale``: a Vivado project around an
AXI4-Stream top; ``ecp5``: a bitstream from Yosys/nextpnr through a UART top). Each target lists
its boards, the first being the default; each board lists the parts it is sold with, the first
being the default ``--part``.
"""
import subprocess
from dataclasses import dataclass


class BuildError(ValueError):
    """A build that cannot go on: unknown board or part, a design that does not fit, a tool that
    failed. The message is one line; the command line exits with code 2 on it."""


class DoesNotFit(BuildError):
    """A design past its part: it needs ``used`` of ``resource`` (as the tool's report names
    them, e.g. ``"LUT4s"``), the part has ``available``."""

    def __init__(self, message, *, resource, used, available):
        super().__init__(message)
        self.resource, self.used, self.available = resource, used, available


def run_tool(command, *, cwd, what, timeout, env=None):
    """``subprocess.run`` of a synthesis or place-and-route tool with its output captured as
    text; a run longer than ``timeout`` seconds is a ``BuildError`` naming ``what``."""
    try:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what} did not finish within {timeout:,} s") from None


@dataclass(frozen=True)
class Board:
    name: str
    parts: tuple            # parts this board is sold with; the first is the default
    clock_mhz: float        # the accelerator's default clock
    description: str
    # ultrascale: Vivado board part, used when its board files are installed
    board_part: str = None
    # ecp5: amaranth-boards platform class per part ("module:Class"), in ``parts`` order
    platforms: tuple = ()

    @property
    def default_part(self):
        return self.parts[0]

    def platform_class(self, part):
        """The amaranth-boards platform class for ``part`` (ECP5 boards)."""
        import importlib

        module, name = dict(zip(self.parts, self.platforms))[part].split(":")
        return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Target:
    name: str
    family: str
    description: str
    boards: tuple           # the first is the default
    free_part: bool = False  # any part name is accepted (the vendor tool checks it)
    # What a --luts budget counts, per LUT of the resource model (UltraScale+ LUT6s): 1 where
    # Yosys' UltraScale+ estimate counts the build, more for smaller LUTs.
    luts_per_model_lut: float = 1.0

    @property
    def default_board(self):
        return self.boards[0]

    @property
    def default_part(self):
        return self.default_board.default_part

    @property
    def default_clock_mhz(self):
        return self.default_board.clock_mhz

    def board(self, name=None):
        """The board called ``name`` (the default one for ``None``); ``BuildError`` otherwise."""
        if name is None:
            return self.default_board
        for board in self.boards:
            if board.name == name:
                return board
        raise BuildError(f"target {self.name!r} has no board {name!r}; accepted: "
                         f"{', '.join(b.name for b in self.boards)}")

    def part(self, board, part=None):
        """``part`` checked against ``board`` (its default for ``None``)."""
        if part is None:
            return board.default_part
        if part in board.parts or self.free_part:
            return part
        raise BuildError(f"board {board.name!r} has no part {part!r}; accepted: "
                         f"{', '.join(board.parts)}")


TARGETS = {
    "ultrascale": Target(
        "ultrascale", "xcup",
        "AMD Zynq UltraScale+: AXI4-Stream top, Vivado script (IP, block design with the PS and "
        "an AXI DMA, bitstream and .hwh), PYNQ driver; Yosys resource estimate",
        boards=(
            Board("zcu104", ("xczu7ev-ffvc1156-2-e",), 200.0, "AMD ZCU104 evaluation board",
                  board_part="xilinx.com:zcu104:part0:*"),
            Board("zcu102", ("xczu9eg-ffvb1156-2-e",), 200.0,
                  "AMD ZCU102 evaluation board (912 block RAMs: room for B-VGG16's weights)",
                  board_part="xilinx.com:zcu102:part0:*"),
            Board("kv260", ("xck26-sfvc784-2LV-c",), 200.0, "AMD Kria KV260 vision AI starter kit",
                  board_part="xilinx.com:kv260_som:part0:*"),
            Board("ultra96", ("xczu3eg-sbva484-1-i",), 150.0, "Avnet Ultra96-V2",
                  board_part="avnet.com:ultra96v2:part0:*"),
        ),
        free_part=True),
    "ecp5": Target(
        "ecp5", "ecp5",
        "Lattice ECP5: UART top, bitstream with Yosys, nextpnr-ecp5 and ecppack (all from pip); "
        "host script over a serial port",
        boards=(
            Board("ulx3s", ("LFE5U-85F-6BG381C", "LFE5U-45F-6BG381C", "LFE5U-25F-6BG381C",
                            "LFE5U-12F-6BG381C"), 25.0,
                  "Radiona ULX3S (UART on the FTDI USB port)",
                  platforms=tuple(f"amaranth_boards.ulx3s:ULX3S_{size}F_Platform"
                                  for size in (85, 45, 25, 12))),
            Board("ecpix5", ("LFE5UM5G-85F-8BG554I", "LFE5UM5G-45F-8BG554I"), 50.0,
                  "LambdaConcept ECPIX-5 (UART on the FT2232 USB port; 100 MHz oscillator, "
                  "PLL to the clock)",
                  platforms=("amaranth_boards.ecpix5:ECPIX585Platform",
                             "amaranth_boards.ecpix5:ECPIX545Platform")),
            Board("orangecrab", ("LFE5U-25F-8MG285C", "LFE5U-85F-8MG285C"), 48.0,
                  "OrangeCrab r0.2 (UART on feather pins 0 = RX, 1 = TX: needs a USB-serial "
                  "adapter)",
                  platforms=("amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_25FPlatform",
                             "amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_85FPlatform")),
        ),
        # nextpnr counted 1.64 to 2.11 LUT4s a model LUT, the UART top included (docs/boards.md):
        # more than the highest, so that the first pick for a budget rarely overruns it.
        luts_per_model_lut=2.2),
}


def get_target(name):
    """The ``Target`` called ``name``; ``BuildError`` listing the accepted names otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise BuildError(f"unknown target {name!r}; accepted: {', '.join(TARGETS)}") from None


def describe_targets():
    """The text of ``gen build --list-targets``: targets, their boards, parts and clocks."""
    lines = []
    for target in TARGETS.values():
        lines.append(f"{target.name}: {target.description}")
        for index, board in enumerate(target.boards):
            default = " (default)" if index == 0 else ""
            lines.append(f"  --board {board.name}{default}: {board.description}; "
                         f"{board.clock_mhz:g} MHz")
            for number, part in enumerate(board.parts):
                lines.append(f"      --part {part}" + (" (default)" if number == 0 else ""))
        if target.free_part:
            lines.append("  (any other part name is passed to Vivado as it is)")
    return "\n".join(lines)
