"""Fit gen.resources' coefficients to Yosys ``synth_xilinx -family xcup`` counts of real stages.

    python -m benchmarks.calibrate_resources [--targets 20000 6000 2000] [--out DIR]
    python -m benchmarks.calibrate_resources --refit build/calibration/calibration.json

Builds random-cnv-small (CNV's topology at a quarter width) at several target intervals, keeps
the module hierarchy through one Yosys run per fold, and fits each coefficient table of
gen.resources by non-negative least squares to the per-stage counts of the matrix-vector units
and window generators (``--refit`` reuses the counts of an earlier run). Prints the new tables
and, per stage, model against Yosys; writes ``DIR/calibration.json``. Paste the printed tables
into gen/resources.py.
"""
import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from boards.yosys import estimate_xcup
from gen import resources
from gen.build import elaborate
from gen.fold import LayerFold, fold_for_interval
from gen.networks import random_cnv_small


def synthesize(targets, directory):
    """Yosys' counts of every unit and window of random-cnv-small at each target interval."""
    net = random_cnv_small()
    rows = []
    for target in targets:
        fold = fold_for_interval(net, target)
        graph, text = elaborate(net, fold)
        path = Path(directory) / f"cnv-small-{target}.v"
        path.write_text(text)
        modules = estimate_xcup(path, "xnorflow_top", per_module=True)["modules"]
        for stage in graph.stages:
            counts = modules.get(f"\\xnorflow_top.{stage.name}")
            if counts is not None and stage.kind in ("mvu", "window"):
                rows.append({"target": target, "stage": stage.name, "kind": stage.kind,
                             "layer": stage.layer, "fold": asdict(fold[stage.layer]),
                             "yosys": counts})
                print(f"{target:>6} {stage.name:<14} Yosys {counts['lut']:>6} LUT "
                      f"{counts['ff']:>6} FF", flush=True)
    return rows


def add_features(rows):
    """Each row's LUT and flip-flop features under the current model."""
    layers = {layer.name: layer for layer in random_cnv_small().compute_layers}
    for row in rows:
        layer, fold = layers[row["layer"]], LayerFold(**row["fold"])
        if row["kind"] == "mvu":
            lut, ff, memories = resources.mvu_features(layer, fold)
            row["counted_ff"] = resources.mvu_counted_ff(layer, fold, memories)
        else:
            lut, ff, _ = resources.window_features(layer, fold.simd)
            row["counted_ff"] = 0
        row["lut_features"], row["ff_features"] = lut, ff
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


def fit(rows, kind, features_key, count_key, names):
    """Non-negative least-squares coefficients of ``count_key`` over ``names``, less the
    flip-flops the model counts rather than fits."""
    chosen = [r for r in rows if r["kind"] == kind]
    a = np.array([[r[features_key][n] for n in names] for r in chosen], dtype=float)
    counted = np.array([r["counted_ff"] if count_key == "ff" else 0 for r in chosen])
    b = np.array([r["yosys"][count_key] for r in chosen], dtype=float) - counted
    coefficients = nonnegative_least_squares(a, b)
    for row, predicted in zip(chosen, a @ coefficients + counted):
        row.setdefault("model", {})[count_key] = round(float(predicted))
    return {name: round(float(c), 3) for name, c in zip(names, coefficients)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate_resources",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[20000, 6000, 2000],
                        help="target intervals (cycles per frame) of the folds synthesized")
    parser.add_argument("--out", default="build/calibration")
    parser.add_argument("--refit", metavar="JSON",
                        help="fit again to the Yosys counts of an earlier calibration.json")
    args = parser.parse_args(argv)
    if args.refit:
        rows = json.loads(Path(args.refit).read_text())["samples"]
    else:
        with tempfile.TemporaryDirectory(prefix="xnorflow-calibrate-") as directory:
            rows = synthesize(args.targets, directory)
    add_features(rows)
    tables = {
        "MVU_LUT": fit(rows, "mvu", "lut_features", "lut", list(resources.MVU_LUT)),
        "MVU_FF": fit(rows, "mvu", "ff_features", "ff", list(resources.MVU_FF)),
        "WINDOW_LUT": fit(rows, "window", "lut_features", "lut", list(resources.WINDOW_LUT)),
        "WINDOW_FF": fit(rows, "window", "ff_features", "ff", list(resources.WINDOW_FF)),
    }
    for name, table in tables.items():
        print(f"{name} = {table}")
    errors = []
    for row in rows:
        errors.append(abs(row["model"]["lut"] - row["yosys"]["lut"]) / row["yosys"]["lut"])
        print(f"{row['target']:>6} {row['stage']:<14} LUT Yosys {row['yosys']['lut']:>6} model "
              f"{row['model']['lut']:>6}   FF Yosys {row['yosys']['ff']:>6} model "
              f"{row['model']['ff']:>6}")
    print(f"LUT error per stage: median {100 * np.median(errors):.0f}%, "
          f"largest {100 * max(errors):.0f}%")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps({"tables": tables, "samples": rows},
                                                     indent=2) + "\n")


if __name__ == "__main__":
    main()
