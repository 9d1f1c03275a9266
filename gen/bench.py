"""``python -m gen bench``: CNV-W1A1 under FINN's folding and our automatic folds, measured.

For each fold: per layer PE, SIMD, expected cycles, the resource model's estimate and (with
``synth``) Yosys' count; the Verilog generation time; (with ``sim``) the interval measured in
Verilator on random images, bit-exactness against the golden executor and the simulation speed;
(with ``layer_sims``) each layer's cycles measured alone at full rate; (with ``fmax``)
nextpnr-ecp5's Fmax where the estimate fits an ECP5-85F. Writes ``bench.json``, ``bench.md``
and ``bench.png`` through temporary names.
"""
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from boards import BuildError
from gen.files import output_directory, replace_text, replacing
from gen.fold import LayerFold, default_fifo_depth, fold_for_fps, fold_for_luts
from gen.resources import graph_resources

# FINN's finn-examples CNV-W1A1 folding (PE, SIMD) by compute layer: 32,768 cycles per frame.
# Its last layer has PE 4 over 10 classes padded to 12; we take 5, the nearest divisor of 10.
FINN_CNV_FOLD = ((16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32), (1, 4), (1, 8), (5, 1))
XCZU7EV_LUTS = 230_400
ECP5_85F_LUT4 = 83_640
DEFAULT_FPS = (10_000, 30_000, 100_000)
SYNTH_TIMEOUT = 3600  # seconds of Yosys per fold


def finn_fold(net):
    """FINN's folding on ``net``'s compute layers (in order), with our default FIFO depths."""
    return {layer.name: LayerFold(pe, simd, default_fifo_depth(net, layer, pe))
            for layer, (pe, simd) in zip(net.compute_layers, FINN_CNV_FOLD)}


def bench_folds(net, *, clock_mhz, fps_targets=DEFAULT_FPS, lut_budget=XCZU7EV_LUTS):
    """``[(label, fold)]``: FINN's, ours for each frame rate, and ours for the LUT budget."""
    folds = [("FINN", finn_fold(net))]
    for fps in fps_targets:
        folds.append((f"auto {fps:,} fps", fold_for_fps(net, fps, clock_mhz)))
    folds.append((f"auto {lut_budget:,} LUTs", fold_for_luts(net, lut_budget)))
    return folds


def _synthesize(graph, text, directory, timeout):
    """Yosys' per-layer counts (LUT, FF, BRAM36) and the sum over all modules, from one
    hierarchical run of at most ``timeout`` seconds."""
    from boards.yosys import counts_by_instance, estimate_xcup

    path = Path(directory) / "top.v"
    path.write_text(text)
    estimate = estimate_xcup(path, "xnorflow_top", per_module=True, timeout=timeout)
    stage_layer = {stage.name: stage.layer for stage in graph.stages}
    per_layer = {}
    for stage, counts in counts_by_instance(estimate["modules"], "xnorflow_top").items():
        layer = stage_layer.get(stage)
        if layer is not None:
            totals = per_layer.setdefault(layer, {"lut": 0, "ff": 0, "bram36": 0})
            for key in totals:
                totals[key] += counts[key]
    total = {key: sum(counts[key] for counts in estimate["modules"].values())
             for key in ("lut", "ff", "bram36")}
    return per_layer, total


def measure_fold(net, fold, *, clock_mhz, synth=True, sim=True, layer_sims=False, fmax=False,
                 images=6, seed=0, synth_timeout=SYNTH_TIMEOUT):
    """Everything ``gen bench`` reports for ``net`` under ``fold``, as a JSON-ready dict."""
    from gen.build import elaborate

    started = time.perf_counter()
    graph, text = elaborate(net, fold)
    generator_seconds = time.perf_counter() - started
    model = graph_resources(graph)
    layers = []
    for layer in net.compute_layers:
        layers.append({"name": layer.name, "pe": fold[layer.name].pe,
                       "simd": fold[layer.name].simd,
                       "expected_cycles": graph.layer_cycles(layer.name),
                       "estimate": model[layer.name].as_dict()})
    result = {"interval_expected": graph.interval, "generator_seconds": generator_seconds,
              "estimate": model["total"].as_dict(), "layers": layers}
    if synth:
        with tempfile.TemporaryDirectory(prefix="xnorflow-bench-") as directory:
            started = time.perf_counter()
            try:
                per_layer, total = _synthesize(graph, text, directory, synth_timeout)
            except BuildError as error:  # reported in the table; the other figures still count
                result["yosys_error"] = str(error)
            else:
                result["yosys"] = total
                for entry in layers:
                    entry["yosys"] = per_layer.get(entry["name"])
            result["yosys_seconds"] = time.perf_counter() - started
    if layer_sims:
        from sim.layer import measure_layer_cycles

        for entry in layers:
            entry["measured_cycles"] = measure_layer_cycles(graph, entry["name"], seed=seed)
    if sim:
        result.update(_simulate(net, fold, images, seed))
    if fmax:
        lut4 = result["estimate"]["lut"] * 1.5  # a LUT6 is about 1.5 LUT4 (estimate)
        if lut4 <= ECP5_85F_LUT4:
            from boards.fmax import ecp5_fmax
            from gen.top import Accelerator

            try:
                result["ecp5"] = ecp5_fmax(Accelerator(graph))
            except BuildError as error:
                result["ecp5_error"] = str(error)
    result["frames_per_second"] = clock_mhz * 1e6 / graph.interval
    luts = result.get("yosys", result["estimate"])["lut"]
    result["frames_per_second_per_klut"] = result["frames_per_second"] / (luts / 1000)
    return result


def _simulate(net, fold, images, seed):
    """Verilator on random images: interval, bit-exactness and simulated frames per wall second."""
    from sim.network import simulate_network

    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 1 << net.input.bits, size=(images,) + tuple(net.input.shape))
    started = time.perf_counter()
    outcome = simulate_network(net, fold, batch, seed=seed)
    seconds = time.perf_counter() - started
    return {"interval_measured": outcome.measured_interval,
            "bit_exact": (outcome.labels_matching == images
                          and outcome.scores_matching == images),
            "sim_seconds": seconds, "sim_frames_per_second": images / seconds}


def run_bench(net, folds, out_dir, *, clock_mhz=300.0, synth=True, sim=True, layer_sims=False,
              fmax=False, images=6, synth_timeout=SYNTH_TIMEOUT, log=print):
    """Measure each ``(label, fold)`` of ``folds``; writes bench.json/.md/.png into ``out_dir``."""
    out_dir = output_directory(out_dir, BuildError)
    results = []
    for label, fold in folds:
        log(f"{label}: measuring")
        entry = measure_fold(net, fold, clock_mhz=clock_mhz, synth=synth, sim=sim,
                             layer_sims=layer_sims, fmax=fmax, images=images,
                             synth_timeout=synth_timeout)
        results.append({"fold": label, **entry})
        log(summary_line(results[-1], clock_mhz))
        if "yosys_error" in entry:
            log(f"{label}: {entry['yosys_error']}")
    report = {"network": net.name, "clock_mhz": clock_mhz, "folds": results}
    out_dir.mkdir(exist_ok=True)
    replace_text(out_dir / "bench.json", json.dumps(report, indent=2) + "\n")
    replace_text(out_dir / "bench.md", markdown(report))
    plot(report, out_dir / "bench.png")
    return report


def summary_line(entry, clock_mhz):
    """One line on a measured fold, naming any tool that failed on it."""
    measured = entry.get("interval_measured")
    luts = entry.get("yosys", entry["estimate"])["lut"]
    ecp5 = entry.get("ecp5")
    return (f"{entry['fold']}: interval {entry['interval_expected']:,} expected"
            + (f", {measured:,.1f} measured" if measured else "")
            + f"; {entry['frames_per_second']:,.0f} frames/s at {clock_mhz:g} MHz; "
            f"{luts:,} LUTs ({'Yosys' if 'yosys' in entry else 'estimate'}); Verilog in "
            f"{entry['generator_seconds']:.1f} s"
            + (f"; ECP5-85F {ecp5['fmax_mhz']:.1f} MHz" if ecp5 else "")
            + "".join(f"; {entry[key]}" for key in ("yosys_error", "ecp5_error") if key in entry))


def _cell(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def markdown(report):
    """The bench report as Markdown: a summary table, then one table per fold."""
    clock = report["clock_mhz"]
    lines = [f"# gen bench: {report['network']} at {clock:g} MHz", "",
             "| fold | interval expected | interval measured | frames/s | LUT (Yosys) | "
             "LUT (model) | FF (Yosys) | BRAM36 (Yosys) | frames/s per kLUT | Fmax ECP5 "
             "| Verilog s | sim frames/s | bit-exact |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for f in report["folds"]:
        yosys = f.get("yosys") or {}
        lines.append(
            f"| {f['fold']} | {_cell(f['interval_expected'])} | "
            f"{_cell(f.get('interval_measured'), 1)} | {_cell(f['frames_per_second'])} | "
            f"{_cell(yosys.get('lut'))} | {_cell(f['estimate']['lut'])} | "
            f"{_cell(yosys.get('ff'))} | {_cell(yosys.get('bram36'), 1)} | "
            f"{_cell(f['frames_per_second_per_klut'])} | "
            f"{_cell((f.get('ecp5') or {}).get('fmax_mhz'), 1)} | "
            f"{f['generator_seconds']:.1f} | {_cell(f.get('sim_frames_per_second'), 2)} | "
            f"{ {True: 'yes', False: 'NO', None: '–'}[f.get('bit_exact')]} |")
    for f in report["folds"]:
        lines += ["", f"## {f['fold']}", "",
                  "| layer | PE | SIMD | cycles expected | cycles measured | LUT (Yosys) | "
                  "LUT (model) | FF (Yosys) | FF (model) | BRAM36 (Yosys) | BRAM36 (model) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for layer in f["layers"]:
            yosys, model = layer.get("yosys") or {}, layer["estimate"]
            lines.append(
                f"| {layer['name']} | {layer['pe']} | {layer['simd']} | "
                f"{_cell(layer['expected_cycles'])} | {_cell(layer.get('measured_cycles'), 1)} "
                f"| {_cell(yosys.get('lut'))} | {_cell(model['lut'])} | {_cell(yosys.get('ff'))} "
                f"| {_cell(model['ff'])} | {_cell(yosys.get('bram36'), 1)} | "
                f"{_cell(model['bram36'], 1)} |")
    lines += [f"\n{f['fold']}: Yosys failed: {f['yosys_error']}"
              for f in report["folds"] if "yosys_error" in f]
    return "\n".join(lines) + "\n"


def plot(report, path):
    """Per fold, cycles and LUTs per layer (bars), written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    folds = report["folds"]
    figure, axes = pyplot.subplots(2, 1, figsize=(10, 7), sharex=True)
    names = [layer["name"] for layer in folds[0]["layers"]]
    width = 0.8 / len(folds)
    for index, f in enumerate(folds):
        x = np.arange(len(names)) + index * width
        cycles = [layer.get("measured_cycles") or layer["expected_cycles"] for layer in f["layers"]]
        luts = [(layer.get("yosys") or layer["estimate"])["lut"] for layer in f["layers"]]
        axes[0].bar(x, cycles, width, label=f["fold"])
        axes[1].bar(x, luts, width, label=f["fold"])
    axes[0].set(ylabel="cycles per frame", yscale="log",
                title=f"{report['network']}: cycles and LUTs per layer")
    axes[1].set(ylabel="LUTs (Yosys where run)", yscale="log")
    axes[1].set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    with replacing(path) as tmp:
        figure.savefig(tmp, dpi=100)
    pyplot.close(figure)
