"""Fit gen.resources' AXIS_LUT and AXIS_FF to Yosys' counts of the AXI4-Stream top.

    python -m benchmarks.calibrate_axis_top [--samples NETWORK@CYCLES[:SHAPE]/BEAT[+scores] ...]
        [--out DIR]

Builds each sample's AXI4-Stream top (``boards.axis``) at a fold of
``benchmarks.calibrate_resources`` (``NETWORK@CYCLES[:SHAPE]``), ``BEAT`` bytes a beat, with or
without the scores, cuts the accelerator's stages out as black boxes and has Yosys
(``synth_xilinx -family xcup``) count what is left: the top's width converters, counters,
frame-flag FIFO, output multiplexer and zero-fill gate. The WIDTH tables price the converters;
AXIS_LUT and AXIS_FF fit the rest (Yosys less the converters) over the features of
``boards.axis.axis_logic_features``, by non-negative least squares. Prints each sample's counts
and the model's, the new tables, and writes them to ``DIR/axis_top.json``. Paste the tables
into gen/resources.py.
"""
import argparse
import json
import tempfile
from pathlib import Path

from amaranth.back import verilog

from benchmarks.calibrate_resources import fit_table, sample_fold, sample_network, shaped_fold
from boards.axis import (AxisAccelerator, axis_logic_features, axis_top_resources,
                         converter_shapes)
from boards.verilog_parts import split_design
from boards.yosys import estimate_xcup
from gen.files import replace_text
from gen.graph import build_graph
from gen.resources import Resources, converter_resources, linear

CNV = "gen/networks/cnv-cifar10.json@56448"
DEFAULT_SAMPLES = ["random-cnv-small@20000/1", "random-cnv-small@20000/4",
                   "random-cnv-small@2000/2", "random-cnv-small@2000/4+scores",
                   "random-cnv-small-ternary@6000:pe/4", "random-vgg16@36864/4+scores",
                   "random-vgg16@73728:simd/8", "random-vgg16@73728:simd/32", f"{CNV}/4",
                   f"{CNV}/8", f"{CNV}/4+scores", "random-sfc@2000/4", "random-sfc@200/1+scores",
                   "random-sfc@50:pe/4+scores"]
TOP = "axis"


def sample(text):
    """``((network, target, shape), beat bytes, scores)`` of a sample argument."""
    fold_text, _, beat_text = text.rpartition("/")
    beat, _, with_scores = beat_text.partition("+")
    if not beat.isdigit() or with_scores not in ("", "scores"):
        raise argparse.ArgumentTypeError(
            f"sample {text!r}: expected NETWORK@CYCLES[:SHAPE]/BEAT[+scores], e.g. "
            f"random-vgg16@36864/4+scores")
    return sample_fold(fold_text), int(beat), with_scores == "scores"


def top_counts(graph, beat_bytes, scores, directory):
    """Yosys' counts of the AXI4-Stream top around ``graph``'s accelerator, its stages black
    boxes."""
    top = AxisAccelerator(graph, beat_bytes=beat_bytes, scores=scores)
    _, rest = split_design(verilog.convert(top, name=TOP, emit_src=False), TOP,
                           f"{TOP}.accelerator")
    path = Path(directory) / f"{TOP}.v"
    path.write_text(rest)
    return top.layout, estimate_xcup(path, TOP)


def measure(samples):
    """Each sample's layout, Yosys counts and the WIDTH tables' price of its converters."""
    rows = []
    for (network, target, shape), beat_bytes, scores in samples:
        net = sample_network(network)
        graph = build_graph(net, shaped_fold(net, target, shape))
        with tempfile.TemporaryDirectory(prefix="xnorflow-axis-") as directory:
            layout, counts = top_counts(graph, beat_bytes, scores, directory)
        converters = converter_shapes(graph, layout["beat_bytes"], scores)
        priced = sum((converter_resources(**c) for c in converters.values()), Resources())
        rows.append({"sample": f"{network}@{target}{':' if shape else ''}{shape}/{beat_bytes}"
                               f"{'+scores' if scores else ''}",
                     "lanes": {name: [c["in_lanes"], c["out_lanes"]]
                               for name, c in converters.items()},
                     "yosys": {"lut": counts["lut"], "ff": counts["ff"]},
                     "converters": {"lut": round(priced.lut), "ff": round(priced.ff)},
                     "features": axis_logic_features(converters["gather"], layout["beat_bytes"],
                                                     scores),
                     "model": axis_top_resources(graph, beat_bytes=beat_bytes,
                                                 scores=scores).as_dict()})
        print(f"{rows[-1]['sample']:<44} converters {rows[-1]['lanes']}: Yosys "
              f"{counts['lut']:>5} LUT {counts['ff']:>5} FF; converters priced "
              f"{priced.lut:>5.0f} / {priced.ff:>5.0f}", flush=True)
    return rows


def fit(rows, count):
    """Non-negative least-squares coefficients of Yosys' ``count`` ("lut" or "ff") of the tops in
    ``rows``, less their converters' price, over the features of their own logic."""
    return fit_table([row["features"] for row in rows],
                     [row["yosys"][count] - row["converters"][count] for row in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate_axis_top",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=sample, nargs="+",
                        default=[sample(text) for text in DEFAULT_SAMPLES],
                        help="NETWORK@CYCLES[:SHAPE]/BEAT[+scores]: a fold as "
                             "benchmarks.calibrate_resources takes it, the beat in bytes, and "
                             f"whether scores go out (default {' '.join(DEFAULT_SAMPLES)})")
    parser.add_argument("--out", default="build/calibration")
    args = parser.parse_args(argv)
    rows = measure(args.samples)
    tables = {count: fit(rows, count) for count in ("lut", "ff")}
    print(f"AXIS_LUT = {tables['lut']}\nAXIS_FF = {tables['ff']}")
    for row in rows:
        fitted = {count: round(row["converters"][count] + linear(tables[count], row["features"]))
                  for count in tables}
        print(f"  {row['sample']:<44} LUT Yosys {row['yosys']['lut']:>5} model "
              f"{fitted['lut']:>5}   FF Yosys {row['yosys']['ff']:>5} model {fitted['ff']:>5}")
    out = Path(args.out) / "axis_top.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    calibration = {"axis_lut": tables["lut"], "axis_ff": tables["ff"], "samples": rows}
    replace_text(out, json.dumps(calibration, indent=1) + "\n")


if __name__ == "__main__":
    main()
