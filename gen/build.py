"""Network file + fold → Verilog, report.json, fold.json and the target's project, in one directory.

The output directory is assembled under a temporary name beside it and renamed at the end, so a
failed build never leaves a half-written directory behind.
"""
import json
import math
import os
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import NamedTuple

from amaranth.back import verilog

from boards import BuildError, get_target
from boards.axis import AxisAccelerator, axis_top_resources
from boards.ecp5 import build_bitstream, uart_fold
from boards.pynq_driver import LAYOUT_FILE
from boards.uart import uart_divisor
from boards.uart_top import DEFAULT_BAUD
from boards.vivado import write_vivado_project
from boards.yosys import PART_CAPACITY, check_fit, estimate_xcup_any_size
from gen.files import output_directory
from gen.fold import default_fold, fold_for_fps, fold_for_luts, load_fold, save_fold
from gen.graph import build_graph
from gen.ir import save_network
from gen.lut_budget import fold_within_counted_luts
from gen.report import build_report
from gen.resources import graph_resources
from gen.top import Accelerator

TOP_NAME = "xnorflow_top"
AXIS_NAME = "xnorflow_axis"
# Yosys writes Amaranth's netlist without padding operands to a common width and keeps the
# zero-width wires of depth-1 buffers; Verilator's lint flags both although the semantics are
# exact. These three categories are waived for the whole file; every other warning stays fatal.
LINT_WAIVERS = "".join(f"/* verilator lint_off {name} */\n"
                       for name in ("WIDTHEXPAND", "WIDTHTRUNC", "ASCRANGE"))
# The resource model's block RAMs were within 1% of Yosys's on CNV-W1A1 at FINN's fold (51.0 vs
# 50.5), and Yosys cannot synthesize a B-VGG16 in WebAssembly's 4 GiB: a design the model puts
# more than 5% past the part's block RAMs is refused before any Verilog is written.
BLOCK_RAM_MODEL_MARGIN = 1.05


def accelerator_verilog(graph):
    """The Verilog text of the accelerator of hardware ``graph``."""
    return LINT_WAIVERS + verilog.convert(Accelerator(graph), name=TOP_NAME, emit_src=False)


def elaborate(net, fold):
    """The hardware graph and the Verilog text of the accelerator for ``net`` under ``fold``."""
    graph = build_graph(net, fold)
    return graph, accelerator_verilog(graph)


class TargetFold(NamedTuple):
    """The fold a build for a target starts from, and what it was chosen with: the clock, the
    price of the top around the accelerator (``None`` where it is not priced), the target's
    tool's LUTs per resource-model LUT, and the UART's baud rate (``ecp5``)."""
    fold: dict
    clock_mhz: float
    wrapper: object
    luts_per_model_lut: float
    baud: int | None


def target_fold(net, target="ultrascale", board=None, *, fold_path=None, fps=None, luts=None,
                clock_mhz=None, baud=None, scores=False):
    """The ``TargetFold`` of ``net`` on ``target``'s ``board`` (default: its first), at
    ``clock_mhz`` (default: the board's): the fold in ``fold_path`` (layers it leaves out get
    the balanced default), else the cheapest reaching ``fps`` frames/s, else the fastest within
    ``luts`` of the target's tool (the AXI4-Stream top included on ``ultrascale``; see
    ``gen.fold.fold_for_luts``), else the target's default: on ``ecp5`` the cheapest fold that
    keeps up with the UART at ``baud``, elsewhere the balanced one. ``BuildError`` for an unknown
    target or board or a baud the clock cannot make; ``FoldError`` for a fold out of reach."""
    target_spec = get_target(target)
    clock_mhz = clock_mhz or target_spec.board(board).clock_mhz
    ratio = target_spec.luts_per_model_lut
    # The resource model prices the AXI4-Stream top too: a --luts budget is for the whole design.
    wrapper = partial(axis_top_resources, scores=scores) if target == "ultrascale" else None
    if target == "ecp5":
        baud = baud or DEFAULT_BAUD
        try:
            divisor = uart_divisor(clock_mhz * 1e6, baud)
        except ValueError as error:
            raise BuildError(str(error)) from None
    if fold_path:
        fold = load_fold(fold_path, net)
    elif fps:
        fold = fold_for_fps(net, fps, clock_mhz)
    elif luts:
        fold = fold_for_luts(net, luts, wrapper, ratio)
    elif target == "ecp5":
        fold = uart_fold(net, divisor)
    else:
        fold = default_fold(net)
    return TargetFold(fold, clock_mhz, wrapper, ratio, baud)


def build(net, out_dir, *, target="ultrascale", board=None, fold_path=None, fps=None, luts=None,
          part=None, clock_mhz=None, source=None, baud=None, estimate=True, scores=False):
    """Build ``net`` for ``target`` on ``board`` into ``out_dir``; returns the report dict.

    Every target writes the bare accelerator (``xnorflow_top.v``), ``fold.json``,
    ``network.json/.npz`` and ``report.json``. ``ultrascale`` adds the AXI4-Stream top
    (``xnorflow_axis.v``; with ``scores``, each frame's scores go out before its classes),
    ``overlay.json`` for the host driver, ``vivado/build.tcl`` and, with ``estimate``, a Yosys
    resource estimate checked against the part. ``ecp5`` adds the UART top
    built to ``ecp5/xnorflow.bit`` at ``baud``, with nextpnr's utilisation and Fmax.
    Raises ``boards.BuildError`` (unknown board or part, a design that does not fit, a tool
    that failed) and ``gen.fold.FoldError``; ``out_dir`` is then left as it was.
    ``luts`` counts the LUTs of the target's tool: Yosys' estimate for ``ultrascale`` (the fold
    is chosen again by its counts when it runs), nextpnr's LUT4s for ``ecp5`` (chosen again by
    them); see ``gen.lut_budget``. The report's ``lut_budget_rounds`` lists the folds built.
    """
    out_dir = output_directory(out_dir, BuildError)
    target_spec = get_target(target)
    board_spec = target_spec.board(board)
    part = target_spec.part(board_spec, part)
    fold, clock_mhz, wrapper, luts_per_model_lut, baud = target_fold(
        net, target, board, fold_path=fold_path, fps=fps, luts=luts, clock_mhz=clock_mhz,
        baud=baud, scores=scores)
    extra = {"target": target, "board": board_spec.name, "part": part, "top": TOP_NAME,
             "verilog": f"{TOP_NAME}.v", "source": str(source) if source else None}
    if luts:
        extra["lut_budget"] = luts

    def assemble(fold, staging):
        """Write the build of ``fold`` into the empty ``staging``; returns its report."""
        started = time.perf_counter()
        graph = build_graph(net, fold)
        if target == "ultrascale":
            check_block_ram_model(graph, target_spec, part)
        text = accelerator_verilog(graph)
        seconds = time.perf_counter() - started
        parts, clock = dict(extra), clock_mhz
        (staging / f"{TOP_NAME}.v").write_text(text)
        save_fold(net, fold, staging / "fold.json")
        save_network(net, staging / "network.json")
        if target == "ultrascale":
            parts.update(_build_ultrascale(net, fold, staging, board_spec, part, clock_mhz,
                                           estimate, scores))
        elif target == "ecp5":
            ecp5 = build_bitstream(build_graph(net, fold), staging / "ecp5", board=board_spec,
                                   part=part, clock_mhz=clock_mhz, baud=baud)
            clock = ecp5["clock_mhz"]
            parts.update(ecp5=ecp5, outputs=["ecp5/xnorflow.bit"],
                         uart_frames_per_second=ecp5["baud_actual"] / (10 * _frame_bytes(net)))
        parts["generator_seconds"] = round(seconds, 3)
        return build_report(graph, clock_mhz=clock, extra=parts, wrapper=wrapper)

    stagings = []

    def build_staged(fold):
        """Assemble the build of ``fold`` in a new temporary directory beside ``out_dir``."""
        stagings.append(Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent)))
        return stagings[-1], assemble(fold, stagings[-1])

    try:
        if luts and not (fold_path or fps):
            _, staging, report = fold_within_counted_luts(
                net, fold, build_staged, luts, wrapper, luts_per_model_lut)
        else:
            staging, report = build_staged(fold)
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        for path in stagings:  # all but the one renamed to out_dir
            shutil.rmtree(path, ignore_errors=True)
    return report


def check_block_ram_model(graph, target_spec, part):
    """``BuildError`` when the resource model puts the memories of hardware ``graph`` well past
    ``part``'s block RAMs (see ``BLOCK_RAM_MODEL_MARGIN``), naming the target's boards that have
    room."""
    def block_rams(part_name):
        return PART_CAPACITY.get(part_name, {}).get("bram36")

    def holds(part_name):
        return needed <= block_rams(part_name) * BLOCK_RAM_MODEL_MARGIN

    if block_rams(part) is None:
        return
    needed = graph_resources(graph)["total"].bram36
    if holds(part):
        return
    roomy = [f"--board {board.name} ({block_rams(board.default_part)})"
             for board in target_spec.boards
             if block_rams(board.default_part) is not None and holds(board.default_part)]
    raise BuildError(f"the design does not fit {part}: the resource model puts it at {needed:g} "
                     f"36 Kb block RAMs, the part has {block_rams(part)}; accepted: a part with "
                     f"more, {', '.join(roomy) or 'named with --part'}")


def _frame_bytes(net):
    return math.prod(net.input.shape)


def _build_ultrascale(net, fold, staging, board, part, clock_mhz, estimate, scores):
    """The AXI4-Stream top, its layout, the Vivado script and the resource estimate."""
    try:
        top = AxisAccelerator(build_graph(net, fold), scores=scores)
    except ValueError as error:  # too many classes for a byte, scores wider than a word
        raise BuildError(str(error)) from None
    (staging / f"{AXIS_NAME}.v").write_text(
        LINT_WAIVERS + verilog.convert(top, name=AXIS_NAME, emit_src=False))
    (staging / LAYOUT_FILE).write_text(json.dumps(top.layout, indent=2) + "\n")
    (staging / "vivado").mkdir()
    write_vivado_project(staging / "vivado", network=net.name, board=board.name, part=part,
                         board_part=board.board_part, top=AXIS_NAME, verilog=f"{AXIS_NAME}.v",
                         clock_mhz=clock_mhz, in_bits=8 * top.layout["beat_bytes"],
                         out_bits=8 * top.layout["out_word_bytes"])
    extra = {"axis_top": AXIS_NAME, "axis_verilog": f"{AXIS_NAME}.v", "axis_layout": top.layout,
             "outputs": [f"{AXIS_NAME}.v", LAYOUT_FILE, "vivado/build.tcl"]}
    if estimate:
        resources = estimate_xcup_any_size(staging / f"{AXIS_NAME}.v", AXIS_NAME,
                                           f"{AXIS_NAME}.accelerator")
        capacity = check_fit(resources, part)
        if capacity:
            resources["available"] = capacity
        extra["resources"] = resources
    return extra
