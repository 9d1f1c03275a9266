"""Fmax and resources of one component on the ECP5-85F: Yosys ``synth_ecp5``, then nextpnr-ecp5
out of context (no I/O buffers, so ports wider than the package's pins stay internal nets and
only register-to-register paths are timed), with the YoWASP tools.

YoWASP's Yosys 0.70 maps LUTs with ABC9, whose WebAssembly build returns a truncated netlist
without an error (YoWASP/yosys#29: registers and memories vanish, outputs are left undriven), so
the LUT mapping step runs the classic ``abc`` instead; a log that still reports undriven wires is
an error.
"""
import json
import tempfile
import time
from pathlib import Path

from amaranth.back import verilog

from boards import BuildError, run_tool
from boards.ecp5 import parse_utilisation, tool_environment

# synth_ecp5 with its ABC9 step (techmap latches; abc9; clean) replaced by classic ABC.
SYNTH_SCRIPT = ("read_verilog top.v; synth_ecp5 -top top -run :map_luts; "
                "techmap -map +/lattice/latches_map.v; abc -lut 4:7 -dress; clean; "
                "synth_ecp5 -top top -run map_cells:; write_json top.json")
# Our keys → nextpnr's names for what it counts.
COUNTED = {"LUT4": "TRELLIS_COMB", "FF": "TRELLIS_FF", "EBR": "DP16KD", "MULT18": "MULT18X18D"}


def ecp5_fmax(top, *, ports=None, clock_mhz=150, seed=1, device="85k", package="CABGA381",
              timeout=3600):
    """Synthesize, place and route ``top`` (a ``wiring.Component``, or an elaboratable with its
    ``ports``) alone on an ECP5 with a ``clock_mhz`` target on its ``sync`` clock.

    Returns ``{"fmax_mhz", "LUT4", "FF", "EBR", "MULT18", "critical_path", "seconds"}``:
    nextpnr's achieved Fmax for the clock (``None`` for a design without one), its cell counts
    and the first and last cell of its slowest path; a design that
    misses ``clock_mhz`` still returns its Fmax. Raises ``BuildError`` when a tool fails.
    """
    text = verilog.convert(top, name="top", ports=ports, emit_src=False)
    env = tool_environment()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xnorflow-fmax-") as directory:
        # Relative paths: YoWASP's sandbox sees only its working directory.
        Path(directory, "top.v").write_text(text)
        _run([env["YOSYS"], "-q", "-l", "yosys.log", "-p", SYNTH_SCRIPT],
             directory, env, timeout, "yosys synth_ecp5")
        undriven = [line for line in Path(directory, "yosys.log").read_text().splitlines()
                    if "has no driver" in line]
        if undriven:
            raise BuildError(f"yosys synth_ecp5 left wires undriven: {undriven[0]}")
        _run([env["NEXTPNR_ECP5"], f"--{device}", "--package", package, "--out-of-context",
              "--json", "top.json", "--freq", str(clock_mhz), "--seed", str(seed),
              "--timing-allow-fail", "--report", "report.json", "--log", "nextpnr.log"],
             directory, env, timeout, "nextpnr-ecp5")
        report = json.loads(Path(directory, "report.json").read_text())
        utilisation = parse_utilisation(Path(directory, "nextpnr.log").read_text())
    achieved = [value["achieved"] for value in report.get("fmax", {}).values()]
    return {"fmax_mhz": round(min(achieved), 2) if achieved else None,
            **{key: utilisation.get(name, (0, 0))[0] for key, name in COUNTED.items()},
            "critical_path": critical_path(report),
            "seconds": round(time.monotonic() - started, 1)}


def critical_path(report):
    """``[start, end]`` cells of the slowest path in nextpnr's ``report.json``, or ``None``."""
    paths = [path for path in report.get("critical_paths", []) if path.get("path")]
    if not paths:
        return None
    worst = max(paths, key=lambda path: sum(step["delay"] for step in path["path"]))
    return [worst["path"][0]["from"]["cell"], worst["path"][-1]["to"]["cell"]]


def _run(command, directory, env, timeout, what):
    run = run_tool(command, cwd=directory, env=env, what=what, timeout=timeout)
    if run.returncode:
        errors = [line for line in (run.stdout + run.stderr).splitlines()
                  if line.startswith("ERROR")]
        raise BuildError(f"{what} failed: {errors[0] if errors else f'exit code {run.returncode}'}")
