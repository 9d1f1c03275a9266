"""Fit gen.resources' coefficients to Yosys ``synth_xilinx -family xcup`` counts of real stages.

    python -m benchmarks.calibrate_resources [--folds NETWORK@CYCLES[:SHAPE] ...]
        [--held-out NETWORK@CYCLES[:SHAPE] ...] [--out DIR]
    python -m benchmarks.calibrate_resources --refit docs/runs/calibration/calibration.json

Builds each sample network (random weights) at each fold (``DEFAULT_FOLDS``: random-cnv-small,
CNV's topology at a quarter width, and random-vgg16, B-VGG16's, binary and ternary, at folds the
model chooses and at folds it does not, and at the fastest folds, whose first units are fully
unrolled) and has Yosys count every stage: one run keeping the hierarchy, or in parts where the
Verilog is too big for one. Each coefficient table of
gen.resources is fitted by non-negative least squares to the per-stage counts of its kind of
stage (matrix-vector units, window generators, FIFOs, pools, width converters, the input map,
the label); the ``--held-out`` folds are synthesized too and priced with the new tables, not
fitted to (``--refit`` reuses the counts and folds of earlier runs). Prints the new tables and,
per stage and per fold, model against Yosys; writes the counts, folds and tables to
``DIR/calibration.json``. Paste the printed tables into gen/resources.py.
"""
import argparse
import hashlib
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from boards.yosys import (ONE_RUN_VERILOG_BYTES, counts_by_instance, estimate_xcup,
                          estimate_xcup_in_parts)
from gen import resources
from gen.build import elaborate
from gen.files import replace_text
from gen.fold import (LayerFold, fastest_interval, fold_for_interval, fold_options, fold_to_json,
                      layer_cycles)
from gen.graph import build_graph
from gen.ir import load_network
from gen.networks import random_cnv_small, random_sfc, random_vgg16


SAMPLE_NETWORKS = {
    "random-cnv-small": random_cnv_small,
    "random-cnv-small-ternary": lambda: random_cnv_small(ternary=True),
    "random-vgg16": random_vgg16,
    "random-vgg16-ternary": lambda: random_vgg16(ternary=True),
    "random-sfc": random_sfc,
}
DEFAULT_FOLDS = ["random-cnv-small@20000", "random-cnv-small@6000", "random-cnv-small@2000",
                 "random-cnv-small@20000:pe", "random-cnv-small@2000:pe",
                 "random-cnv-small@6000:simd", "random-cnv-small-ternary@20000",
                 "random-cnv-small-ternary@2000", "random-cnv-small-ternary@6000:pe",
                 "random-vgg16@36864", "random-vgg16@73728:pe", "random-vgg16-ternary@36864",
                 "random-vgg16-ternary@73728:simd", "random-cnv-small@1024",
                 "random-cnv-small@1500:pe", "random-cnv-small-ternary@1024"]
FOLD_SHAPES = ("", "pe", "simd")
TOP = "xnorflow_top"


def sample_network(name):
    """The sample network called ``name``, or the network file at path ``name``."""
    return SAMPLE_NETWORKS[name]() if name in SAMPLE_NETWORKS else load_network(name)


def sample_fold(text):
    """``(network, target interval, shape)`` of a ``NETWORK@CYCLES[:SHAPE]`` argument."""
    name, _, rest = text.partition("@")
    target, _, shape = rest.partition(":")
    if (not (name in SAMPLE_NETWORKS or name.endswith(".json") and Path(name).is_file())
            or not target.isdigit() or shape not in FOLD_SHAPES):
        raise argparse.ArgumentTypeError(
            f"fold {text!r}: expected NETWORK@CYCLES[:SHAPE] with NETWORK one of "
            f"{', '.join(SAMPLE_NETWORKS)} or an existing network file and SHAPE one of "
            f"{', '.join(shape for shape in FOLD_SHAPES if shape)}, e.g. random-vgg16@36864:pe")
    return name, int(target), shape


def shaped_fold(net, target, shape):
    """Each layer's fold within ``target`` cycles: the cheapest by gen.resources (no
    ``shape``), or, of the options with the fewest lanes that meet it, the one with the most PE
    (``"pe"``) or the most SIMD (``"simd"``): samples that do not depend on the model fitted."""
    if not shape:
        return fold_for_interval(net, target)
    fold = {}
    for layer in net.compute_layers:
        meeting = [o for o in fold_options(net, layer) if layer_cycles(layer, o) <= target]
        fewest = min(o.pe * o.simd for o in meeting)
        fold[layer.name] = max((o for o in meeting if o.pe * o.simd == fewest),
                               key=lambda o: getattr(o, shape))
    return fold


def stage_counts(path):
    """Yosys' counts of each stage of the accelerator in Verilog ``path``, by stage name, each
    with its submodules: from one run keeping the hierarchy, or in parts past
    ``ONE_RUN_VERILOG_BYTES``."""
    if path.stat().st_size > ONE_RUN_VERILOG_BYTES:
        return estimate_xcup_in_parts(path, TOP, TOP)["parts"]
    return counts_by_instance(estimate_xcup(path, TOP, per_module=True)["modules"], TOP)


def synthesize(folds, directory):
    """Yosys' counts of every stage of each ``(network name, target interval, shape)``: the
    rows, and each fold by its label."""
    rows, fold_by_label = [], {}
    for network, target, shape in folds:
        net = sample_network(network)
        fold = shaped_fold(net, target, shape)
        graph, text = elaborate(net, fold)
        path = Path(directory) / f"{net.name}-{target}-{shape}" / f"{net.name}.v"
        path.parent.mkdir(parents=True)
        path.write_text(text)
        counts = stage_counts(path)
        as_json = fold_to_json(net, fold)["layers"]
        fold_id = hashlib.sha1(json.dumps(as_json, sort_keys=True).encode()).hexdigest()[:6]
        label = f"{target}{':' if shape else ''}{shape} (fold {fold_id})"
        fold_by_label[f"{network}@{label}"] = as_json
        for stage in graph.stages:
            if stage.name not in counts:  # nothing left of it after synthesis
                print(f"{network}@{label} {stage.name:<14} no cells", flush=True)
                continue
            rows.append({"network": network, "fold_label": label, "stage": stage.name,
                         "kind": stage.kind, "layer": stage.layer, "yosys": counts[stage.name]})
            print(f"{network}@{label} {stage.name:<14} Yosys "
                  f"{counts[stage.name]['lut']:>6} LUT {counts[stage.name]['ff']:>6} FF",
                  flush=True)
    return rows, fold_by_label


def add_features(rows, folds):
    """Each row's LUT and flip-flop features and counted flip-flops under the current model,
    from its stage in the hardware graph of its fold (``folds``: by ``network@fold label``)."""
    graphs = {}
    for row in rows:
        key = f"{row['network']}@{row['fold_label']}"
        if key not in graphs:
            net = sample_network(row["network"])
            graph = build_graph(net, {name: LayerFold(**layer_fold)
                                      for name, layer_fold in folds[key].items()})
            graphs[key] = (graph, {stage.name: stage for stage in graph.stages},
                           {layer.name: layer for layer in net.layers})
        graph, stages, layers = graphs[key]
        lut, ff, _, counted_ff = resources.stage_features(
            stages[row["stage"]], layers[row["layer"]], graph.fold.get(row["layer"]))
        row["lut_features"], row["ff_features"], row["counted_ff"] = lut, ff, counted_ff
    return rows


def nonnegative_least_squares(a, b):
    """Least squares with every coefficient >= 0 (features given a negative one are dropped)."""
    active = list(range(a.shape[1]))
    while True:
        solution = np.linalg.lstsq(a[:, active], b, rcond=None)[0]
        if (solution >= 0).all():
            coefficients = np.zeros(a.shape[1])
            coefficients[active] = solution
            return coefficients
        active = [index for index, value in zip(active, solution) if value >= 0]


def fit_table(features, targets):
    """A coefficient table (by feature name, rounded to 3 decimals) fitting ``targets`` over
    ``features`` (one dict per sample, the same names in each) by non-negative least squares."""
    names = list(features[0])
    a = np.array([[sample[name] for name in names] for sample in features], dtype=float)
    coefficients = nonnegative_least_squares(a, np.array(targets, dtype=float))
    return {name: round(float(c), 3) for name, c in zip(names, coefficients)}


# gen.resources' coefficient tables by name, e.g. MVU_LUT: (stage kind, count).
TABLES = {f"{kind.upper()}_{count.upper()}": (kind, count)
          for kind in resources.STAGE_TABLES for count in ("lut", "ff")}


def counted(row, count):
    """What the model counts rather than fits of ``row``'s ``count``: its counted flip-flops."""
    return row["counted_ff"] if count == "ff" else 0


def fit(rows, kind, count):
    """Non-negative least-squares coefficients of Yosys' ``count`` ("lut" or "ff") of the
    ``kind`` stages in ``rows`` over their features, less the flip-flops the model counts
    rather than fits."""
    chosen = [r for r in rows if r["kind"] == kind]
    return fit_table([r[f"{count}_features"] for r in chosen],
                     [r["yosys"][count] - counted(r, count) for r in chosen])


def predict(rows, tables):
    """Set each row's ``"model"`` counts under coefficient ``tables``."""
    for row in rows:
        row["model"] = {}
        for name, coefficients in tables.items():
            kind, count = TABLES[name]
            if row["kind"] == kind:
                row["model"][count] = round(resources.linear(coefficients,
                                                             row[f"{count}_features"])
                                            + counted(row, count))


def print_errors(rows, title):
    """Per stage and per fold, model against Yosys; the median and largest LUT error."""
    print(title)
    for row in rows:
        print(f"  {row['network']}@{row['fold_label']} {row['stage']:<14} LUT Yosys "
              f"{row['yosys']['lut']:>6} model {row['model']['lut']:>6}   FF Yosys "
              f"{row['yosys']['ff']:>6} model {row['model']['ff']:>6}")
    folds = {}
    for row in rows:
        total = folds.setdefault((row["network"], row["fold_label"]), Counter())
        total.update({f"{source} {count}": row[source][count]
                      for source in ("yosys", "model") for count in ("lut", "ff")})
    for (network, label), total in folds.items():
        print(f"  {network}@{label}, the stages priced: LUT Yosys "
              f"{total['yosys lut']:,} model {total['model lut']:,} "
              f"({100 * (total['model lut'] / total['yosys lut'] - 1):+.0f}%), FF Yosys "
              f"{total['yosys ff']:,} model {total['model ff']:,} "
              f"({100 * (total['model ff'] / total['yosys ff'] - 1):+.0f}%)")
    errors = [abs(row["model"]["lut"] - row["yosys"]["lut"]) / max(1, row["yosys"]["lut"])
              for row in rows]
    print(f"  LUT error per stage: median {100 * np.median(errors):.0f}%, "
          f"largest {100 * max(errors):.0f}%")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate_resources",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=sample_fold, nargs="*",
                        default=[sample_fold(text) for text in DEFAULT_FOLDS],
                        help="the folds fitted, as NETWORK@CYCLES[:SHAPE] (a sample network or "
                             "a network file, a target interval, and pe or simd for the fold with "
                             "the most PE or SIMD rather than the cheapest; default "
                             f"{' '.join(DEFAULT_FOLDS)}); none: price the --held-out folds "
                             "with gen.resources' tables as they are")
    parser.add_argument("--held-out", type=sample_fold, nargs="+", default=[],
                        help="folds synthesized and priced with the new tables but not fitted "
                             "to, as NETWORK@CYCLES[:SHAPE]")
    parser.add_argument("--out", default="build/calibration")
    parser.add_argument("--refit", metavar="JSON", nargs="+",
                        help="fit again to the Yosys counts of earlier calibration.json files "
                             "(their fitted and held-out samples, and the --held-out folds)")
    args = parser.parse_args(argv)
    fastest = {}
    for option, chosen in (("--folds", [] if args.refit else args.folds),
                           ("--held-out", args.held_out)):
        for network, target, _ in chosen:
            if network not in fastest:
                fastest[network] = fastest_interval(sample_network(network))
            if target < fastest[network]:
                parser.error(f"{option} {network}@{target}: no fold reaches {target:,} cycles "
                             f"per frame; the fastest is {fastest[network]:,}")
    rows, held_out, folds = [], [], {}
    for path in args.refit or []:
        try:
            earlier = json.loads(Path(path).read_text())
            rows += earlier["samples"]
            held_out += earlier["held_out"]
            folds.update(earlier["folds"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--refit {path}: expected a calibration.json written by this "
                         f"command, with samples, held_out and folds ({error})")
    out = Path(args.out) / "calibration.json"
    with tempfile.TemporaryDirectory(prefix="xnorflow-calibrate-") as directory:
        if not args.refit:
            rows, folds = synthesize(args.folds, Path(directory) / "fitted")
        more_rows, more_folds = synthesize(args.held_out, Path(directory) / "held-out")
    held_out += more_rows
    folds.update(more_folds)
    write_counts(out, None, rows, held_out, folds)  # the Yosys counts are kept whatever follows
    add_features(rows + held_out, folds)
    if rows:
        tables = {name: fit(rows, kind, count) if any(row["kind"] == kind for row in rows)
                  else getattr(resources, name) for name, (kind, count) in TABLES.items()}
        for name, table in tables.items():
            print(f"{name} = {table}")
    else:
        tables = {name: getattr(resources, name) for name in TABLES}
    predict(rows + held_out, tables)
    if rows:
        print_errors(rows, "Fitted samples:")
    if held_out:
        print_errors(held_out, "Held out:")
    write_counts(out, tables, rows, held_out, folds)


MEASURED = ("network", "fold_label", "stage", "kind", "layer", "yosys")


def write_counts(path, tables, rows, held_out, folds):
    """The tables, the Yosys counts of the fitted and held-out stages and their folds (what
    ``--refit`` reads), written whole or not at all."""
    def measured(chosen):
        return [{key: row[key] for key in MEASURED} for row in chosen]
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_text(path, json.dumps({"tables": tables, "folds": folds, "samples": measured(rows),
                                   "held_out": measured(held_out)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
