"""Fit gen.resources' coefficients to Yosys ``synth_xilinx -family xcup`` counts of real stages.

    python -m benchmarks.calibrate_resources [--targets 20000 6000 2000] [--out DIR]

Builds random-cnv-small (CNV's topology at a quarter width) at several target intervals, keeps
the module hierarchy through one Yosys run per fold, and fits each coefficient table of
gen.resources by least squares to the per-stage counts: matrix-vector units (LUTs and
flip-flops) and window generators. Prints the new tables and, per stage, model against Yosys;
writes the samples to ``DIR/calibration.json``. Paste the printed tables into gen/resources.py.
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from boards.yosys import estimate_xcup
from gen import resources
from gen.build import elaborate
from gen.fold import fold_for_interval
from gen.networks import random_cnv_small


def mvu_features(layer, fold):
    """The LUT and flip-flop features of ``resources.mvu_resources``, by coefficient name."""
    lanes = fold.pe * fold.simd
    acc = resources.accumulator_bits(layer)
    thresholds = 0 if layer.output == "scores" else layer.thresholds.shape[1]
    depth = (layer.mh // fold.pe) * (layer.mw // fold.simd)
    kind = {1: "lanes_binary", 2: "lanes_ternary"}.get(layer.in_bits, "lanes_int8")
    lut = {name: 0.0 for name in resources.MVU_LUT}
    lut.update({kind: lanes, "acc_bits": fold.pe * acc,
                "compare_bits": fold.pe * thresholds * acc,
                "rom_luts": resources.memory(lanes, depth, rom=True).lut, "const": 1})
    ff = {"lanes": lanes if depth > 1 else 0, "acc_bits": fold.pe * acc,
          "input_bits": fold.simd * resources.element_bits(layer.in_bits), "const": 1}
    return lut, ff


def window_features(layer, simd):
    h, w, c = layer.in_shape
    bits = resources.element_bits(layer.in_bits)
    registers = 0 if simd <= c else layer.kernel ** 2 * c * bits
    features = {"lane_bits": simd * bits, "register_bits": registers, "const": 1}
    return features, dict(features)


def samples(targets, directory):
    """``[(stage kind, lut features, ff features, yosys counts)]`` over the folds."""
    net = random_cnv_small()
    rows = []
    for target in targets:
        fold = fold_for_interval(net, target)
        graph, text = elaborate(net, fold)
        path = Path(directory) / f"cnv-small-{target}.v"
        path.write_text(text)
        modules = estimate_xcup(path, "xnorflow_top", per_module=True)["modules"]
        layers = {layer.name: layer for layer in net.compute_layers}
        for stage in graph.stages:
            counts = modules.get(f"\\xnorflow_top.{stage.name}") or modules.get(
                f"xnorflow_top.{stage.name}")
            if counts is None or stage.kind not in ("mvu", "window"):
                continue
            layer, layer_fold = layers[stage.layer], fold[stage.layer]
            lut, ff = (mvu_features(layer, layer_fold) if stage.kind == "mvu"
                       else window_features(layer, layer_fold.simd))
            rows.append({"target": target, "stage": stage.name, "kind": stage.kind,
                         "lut_features": lut, "ff_features": ff, "yosys": counts})
            print(f"{target:>6} {stage.name:<14} Yosys {counts['lut']:>6} LUT {counts['ff']:>6} FF")
    return rows


def fit(rows, kind, features_key, count_key, names):
    """Least-squares coefficients (clipped at 0) of ``count_key`` over ``names``."""
    chosen = [r for r in rows if r["kind"] == kind]
    a = np.array([[r[features_key][n] for n in names] for r in chosen], dtype=float)
    b = np.array([r["yosys"][count_key] for r in chosen], dtype=float)
    coefficients = np.clip(np.linalg.lstsq(a, b, rcond=None)[0], 0, None)
    for row, predicted in zip(chosen, a @ coefficients):
        row.setdefault("model", {})[count_key] = round(float(predicted))
    return {name: round(float(c), 3) for name, c in zip(names, coefficients)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate_resources",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[20000, 6000, 2000],
                        help="target intervals (cycles per frame) of the folds synthesized")
    parser.add_argument("--out", default="build/calibration")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="xnorflow-calibrate-") as directory:
        rows = samples(args.targets, directory)
    tables = {
        "MVU_LUT": fit(rows, "mvu", "lut_features", "lut", list(resources.MVU_LUT)),
        "MVU_FF": fit(rows, "mvu", "ff_features", "ff", list(resources.MVU_FF)),
        "WINDOW_LUT": fit(rows, "window", "lut_features", "lut", list(resources.WINDOW_LUT)),
        "WINDOW_FF": fit(rows, "window", "ff_features", "ff", list(resources.WINDOW_FF)),
    }
    for name, table in tables.items():
        print(f"{name} = {table}")
    for row in rows:
        print(f"{row['target']:>6} {row['stage']:<14} LUT Yosys {row['yosys']['lut']:>6} model "
              f"{row['model']['lut']:>6}   FF Yosys {row['yosys']['ff']:>6} model "
              f"{row['model']['ff']:>6}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps({"tables": tables, "samples": rows},
                                                     indent=2) + "\n")


if __name__ == "__main__":
    main()
