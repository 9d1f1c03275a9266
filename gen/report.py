"""The build report: per layer shapes, folding, expected cycles and the resource model's
estimate; the network's interval."""
import math
from typing import NamedTuple

from gen.ir import ComputeLayer
from gen.resources import Resources, graph_resources


def layer_entry(graph, layer, estimate):
    entry = {"name": layer.name, "kind": layer.kind, "in_shape": list(layer.in_shape),
             "out_shape": list(layer.out_shape),
             "expected_cycles": graph.layer_cycles(layer.name)}
    if isinstance(layer, ComputeLayer):
        fold = graph.fold[layer.name]
        entry.update(mh=layer.mh, mw=layer.mw, pe=fold.pe, simd=fold.simd,
                     fifo_depth=fold.fifo_depth, output=layer.output)
        if layer.kind == "conv":
            entry.update(kernel=layer.kernel, pad=layer.pad)
    entry["stages"] = [{"name": s.name, "kind": s.kind, "cycles": s.cycles}
                       for s in graph.stages if s.layer == layer.name]
    entry["resource_model"] = estimate.as_dict()
    return entry


def build_report(graph, *, clock_mhz, extra=None, wrapper=None):
    """A JSON-serialisable report of ``graph`` at ``clock_mhz``; with ``wrapper`` (a hardware
    graph's ``Resources`` of the top around it, e.g. ``boards.axis.axis_top_resources``), the
    resource model's total includes that top, whose price is also given alone as
    ``resource_model_top``."""
    net = graph.network
    interval = graph.interval
    estimate = graph_resources(graph)
    top = wrapper(graph) if wrapper else Resources()
    report = {
        "network": net.name,
        "description": net.description,
        "input_shape": list(net.input.shape),
        "input_bits": net.input.bits,
        "classes": net.classes,
        "layers": [layer_entry(graph, layer, estimate[layer.name]) for layer in net.layers],
        "interval_cycles": interval,
        "bottleneck": max(graph.stages, key=lambda s: s.cycles).name,
        "clock_mhz": clock_mhz,
        "frames_per_second": clock_mhz * 1e6 / interval,
        "binary_macs_per_frame": sum(l.out_pixels * l.mh * l.mw for l in net.compute_layers),
        "resource_model": (estimate["total"] + top).as_dict(),
    }
    if wrapper:
        report["resource_model_top"] = top.as_dict()
    report.update(extra or {})
    return report


def format_report(report):
    """The report as a text table for the terminal."""
    lines = [f"{'layer':<12}{'kind':<9}{'in':>14}{'out':>14}{'PE':>5}{'SIMD':>6}{'cycles':>10}"
             f"{'LUTs':>9}"]
    for entry in report["layers"]:
        shape = lambda s: "x".join(map(str, s))
        lines.append(f"{entry['name']:<12}{entry['kind']:<9}{shape(entry['in_shape']):>14}"
                     f"{shape(entry['out_shape']):>14}{entry.get('pe', ''):>5}"
                     f"{entry.get('simd', ''):>6}{entry['expected_cycles']:>10}"
                     f"{entry['resource_model']['lut']:>9,}")
    lines.append(f"interval: {report['interval_cycles']} cycles/frame (bottleneck "
                 f"{report['bottleneck']}); {report['frames_per_second']:,.0f} frames/s at "
                 f"{report['clock_mhz']:g} MHz")
    model = report["resource_model"]
    top = report.get("resource_model_top")
    lines.append(f"resource model (UltraScale+, fitted to Yosys): {model['lut']:,} LUTs, "
                 f"{model['ff']:,} FFs, {model['bram36']:g} BRAM36"
                 + (f", of which the top around the stages {top['lut']:,} LUTs, {top['ff']:,} FFs"
                    if top else ""))
    return "\n".join(lines)


class LutCount(NamedTuple):
    """The LUTs a tool counted for a build: the report key of a ``--luts`` round, the tool,
    what it counts, how many, and what the resource model's LUTs are beside them."""
    key: str
    tool: str
    unit: str
    value: int
    model_unit: str = "LUTs"


def yosys_lut_count(value):
    return LutCount("yosys_lut", "Yosys", "LUTs", value)


def nextpnr_lut_count(value):
    return LutCount("nextpnr_lut4", "nextpnr", "LUT4s", value, model_unit="UltraScale+ LUTs")


def lut_count(report):
    """The LUTs the target's tool counted for the build of ``report``: Yosys' estimate
    (``ultrascale``) or nextpnr's LUT4s (``ecp5``); ``None`` when none counted them."""
    if "resources" in report:
        return yosys_lut_count(report["resources"]["lut"])
    if "ecp5" in report:
        return nextpnr_lut_count(report["ecp5"]["lut4"]["used"])
    return None


def lut_count_past_the_part(error):
    """The LUTs the tool counted for a build that failed with ``error``, when its LUTs are what
    the part lacks (a ``boards.DoesNotFit`` in Yosys' LUTs or nextpnr's LUT4s); else ``None``."""
    counter = {"LUTs": yosys_lut_count, "LUT4s": nextpnr_lut_count}.get(
        getattr(error, "resource", None))
    return counter(error.used) if counter else None


def lut_overrun(report):
    """How many LUTs the tool counts past the report's ``--luts`` budget (0 without a count)."""
    counted = lut_count(report)
    return counted.value - report["lut_budget"] if counted else 0


def lut_budget_check(report):
    """One line setting the ``--luts`` budget against the resource model's LUTs and, when a
    tool counted them (Yosys, nextpnr), its count, with the other folds built for the budget;
    ``None`` without a budget."""
    budget = report.get("lut_budget")
    if budget is None:
        return None
    model = report["resource_model"]["lut"]
    counted = lut_count(report)
    line = (f"--luts {budget:,}: the resource model puts the chosen fold at {model:,} "
            f"{counted.model_unit if counted else 'LUTs'}")
    if not counted:
        return line + " (no Yosys estimate to check it by)"
    tried = [f"{counted.tool} counted {r[counted.key]:,} {counted.unit} for the "
             f"{r['interval_cycles']:,}-cycle fold" if "error" not in r else
             f"the {r['interval_cycles']:,}-cycle fold failed: {r['error']}"
             for r in report.get("lut_budget_rounds", []) if not r["kept"]]
    if tried:
        line += f" (chosen again: {', then '.join(tried)})"
    line += f"; {counted.tool} counts {counted.value:,}"
    over = lut_overrun(report)
    if over <= 0:
        return line + ", within the budget"
    return (line + f", {over:,} ({100 * over / budget:.1f}%) over the budget: ask for about "
            f"{budget - over:,} or set the fold with --fold")


def within(measured, expected, tolerance):
    return math.isclose(measured, expected, rel_tol=tolerance)
