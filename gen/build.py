"""Network file + fold → Verilog, report.json, fold.json and the target's project, in one directory.

The output directory is assembled under a temporary name beside it and renamed at the end, so a
failed build never leaves a half-written directory behind.
"""
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from amaranth.back import verilog

from boards import get_target
from boards.vivado import write_vivado_project
from gen.fold import default_fold, load_fold, save_fold
from gen.graph import build_graph
from gen.ir import save_network
from gen.report import build_report
from gen.top import Accelerator

TOP_NAME = "xnorflow_top"
# Yosys writes Amaranth's netlist without padding operands to a common width and keeps the
# zero-width wires of depth-1 buffers; Verilator's lint flags both although the semantics are
# exact. These three categories are waived for the whole file; every other warning stays fatal.
LINT_WAIVERS = "".join(f"/* verilator lint_off {name} */\n"
                       for name in ("WIDTHEXPAND", "WIDTHTRUNC", "ASCRANGE"))


def elaborate(net, fold):
    """The hardware graph and the Verilog text of the accelerator for ``net`` under ``fold``."""
    graph = build_graph(net, fold)
    text = verilog.convert(Accelerator(graph), name=TOP_NAME, emit_src=False)
    return graph, LINT_WAIVERS + text


def resolve_fold(net, fold_path=None):
    return load_fold(fold_path, net) if fold_path else default_fold(net)


def build(net, out_dir, *, target="ultrascale", fold_path=None, part=None, clock_mhz=None,
          source=None):
    """Build ``net`` into ``out_dir``; returns the report dict."""
    board = get_target(target)
    part = part or board.default_part
    clock_mhz = clock_mhz or board.default_clock_mhz
    fold = resolve_fold(net, fold_path)
    started = time.perf_counter()
    graph, text = elaborate(net, fold)
    seconds = time.perf_counter() - started

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        (staging / f"{TOP_NAME}.v").write_text(text)
        save_fold(net, fold, staging / "fold.json")
        save_network(net, staging / "network.json")
        (staging / "vivado").mkdir()
        write_vivado_project(staging / "vivado", network=net.name, part=part, top=TOP_NAME,
                             verilog=f"{TOP_NAME}.v", clock_mhz=clock_mhz)
        report = build_report(graph, clock_mhz=clock_mhz, extra={
            "target": target, "part": part, "top": TOP_NAME, "verilog": f"{TOP_NAME}.v",
            "source": str(source) if source else None,
            "generator_seconds": round(seconds, 3)})
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report
