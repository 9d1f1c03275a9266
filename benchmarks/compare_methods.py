"""Train every method (and the FP32 twin) at the same epochs and seeds, then print the comparison.

    python -m benchmarks.compare_methods --arch sfc --dataset mnist --epochs 300 --seeds 0 1 2 \\
        --out out/compare/sfc-e300 -- --threads 1
    python -m benchmarks.compare_methods --arch cnv --dataset cifar10 --epochs 200 --seeds 0 \\
        --out runs/compare/cnv-e200 -- --device cuda --bf16 --compile --test-every 10

Arguments after ``--`` go to every ``python -m model.train`` as they are (but ``--compile`` not
to a method that refuses it, ``ubq``). Each run lives in ``OUT/METHOD-sSEED`` (``OUT/fp32-sSEED`` for the
baseline), its console output in ``OUT/METHOD-sSEED.log``. The command can be repeated: a
finished run (its ``summary.json`` has the asked epochs) is kept, an interrupted one goes on with
``--resume``. So on a machine that stops each command after minutes, the same command run again
continues where the last one stopped.

The table gives, per method, the final-epoch top-1/top-5 of the exported network file through the
golden executor (PyTorch's for FP32) for each seed and their mean, the golden == PyTorch count and
exact ties of the export check, and the training accuracy of the last epoch.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from gen.files import output_directory
from model.methods import METHODS
from model.train import CHECKPOINT, LOG, SUMMARY


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_methods", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--no-fp32", action="store_true", help="leave out the FP32 baseline")
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs")
    parser.add_argument("train_args", nargs="*", help="after --: more model.train options")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be a positive integer, not {args.epochs}")
    try:
        output_directory(args.out, ValueError)
    except ValueError as error:
        parser.error(str(error))
    return args


def runs_of(args):
    """(name, model.train options) of every run: each method, then FP32, for every seed.

    A method that is not ``compilable`` (``ubq``) gets the options after ``--`` without
    ``--compile``, which model.train refuses for it."""
    runs = []
    for seed in args.seeds:
        variants = [(method, ["--method", method]) for method in args.methods]
        if not args.no_fp32:
            variants.append(("fp32", ["--precision", "fp32"]))
        for name, options in variants:
            refuses_compile = name in METHODS and not METHODS[name].compilable
            shared = [a for a in args.train_args if not (refuses_compile and a == "--compile")]
            runs.append((f"{name}-s{seed}", options + ["--seed", str(seed)] + shared))
    return runs


def finished(run_dir, epochs):
    """True when ``run_dir`` holds the summary of a run of ``epochs`` epochs."""
    path = run_dir / SUMMARY
    return path.exists() and json.loads(path.read_text())["epochs"] == epochs


def train_run(args, name, options):
    """Train one run to its end (resuming it if interrupted); return its exit status."""
    run_dir = args.out / name
    if finished(run_dir, args.epochs):
        return 0
    command = [sys.executable, "-m", "model.train", "--arch", args.arch, "--dataset", args.dataset,
               "--epochs", str(args.epochs), "--out", str(run_dir), *options]
    if (run_dir / CHECKPOINT).exists():
        command.append("--resume")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{name}: {' '.join(command[1:])}", flush=True)
    with open(args.out / f"{name}.log", "a") as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode


def row_of(summaries):
    """One table row's cells from the summaries of one method's seeds."""
    def pct(value):
        return f"{100 * value:.2f}"

    binary = "export" in summaries[0]
    top1 = [s["export"]["check"]["golden_top1"] if binary else s["torch_test_top1"] for s in summaries]
    top5 = [s["export"]["check"]["golden_top5"] if binary else s["torch_test_top5"] for s in summaries]
    if binary:
        checks = [s["export"]["check"] for s in summaries]
        agree = (f"{sum(c['agree'] for c in checks)}/{sum(c['images'] for c in checks)}, "
                 f"{sum(c['exact_ties'] for c in checks)} ties")
    else:
        agree = "— (PyTorch)"
    return [", ".join(pct(t) for t in top1), f"**{pct(sum(top1) / len(top1))}**",
            f"{pct(sum(top5) / len(top5))}", agree,
            ", ".join(pct(s["final_train_acc"]) for s in summaries)]


def table(args):
    """The comparison as a Markdown table, from the summaries and logs in ``args.out``."""
    header = ["method", f"top-1 per seed ({', '.join(map(str, args.seeds))})", "mean top-1",
              "mean top-5", "golden == PyTorch", "last-epoch train acc per seed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = list(args.methods) + ([] if args.no_fp32 else ["fp32"])
    for name in names:
        summaries = []
        for seed in args.seeds:
            run_dir = args.out / f"{name}-s{seed}"
            summary = json.loads((run_dir / SUMMARY).read_text())
            last = (run_dir / LOG).read_text().splitlines()[-1]
            summary["final_train_acc"] = json.loads(last)["train_acc"]
            summaries.append(summary)
        lines.append("| " + " | ".join([f"`{name}`"] + row_of(summaries)) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    failed = [name for name, options in runs_of(args) if train_run(args, name, options) != 0]
    if failed:
        print(f"python -m benchmarks.compare_methods: error: run(s) {', '.join(failed)} failed; "
              f"see {args.out}/NAME.log", file=sys.stderr)
        return 1
    print(f"{args.arch} on {args.dataset}, {args.epochs} epochs, "
          f"model.train options: {' '.join(args.train_args) or '(none)'}")
    print(table(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
