"""xnorflow's command line: ``python -m gen {build,sim,report,bench} --help``."""
import argparse
import sys
from pathlib import Path

import numpy as np

from boards import TARGETS, BuildError
from gen.fold import FoldError
from gen.ir import NetworkFileError, load_network, read_model
from model.data import DatasetError
from gen.networks import DEFAULT_NETWORK

EXIT_BAD_INPUT = 2


def load_model(path):
    """The network to build: ``path``, or the shipped default; returns (network, path, is_default)."""
    if path is None:
        return load_network(DEFAULT_NETWORK), DEFAULT_NETWORK, True
    return read_model(path), Path(path), False


def describe_model(net, path, is_default):
    origin = "the shipped default network" if is_default else "network"
    return f"{origin} {net.name!r} from {path}" + (f" ({net.description})" if net.description else "")


def add_model_options(parser):
    parser.add_argument("--model", metavar="FILE",
                        help="network file header (.json) or QONNX model (.onnx from brevitas "
                             "export_qonnx); default: the network shipped in the repo")
    folding = parser.add_mutually_exclusive_group()
    folding.add_argument("--fold", metavar="FILE",
                         help="fold JSON (per layer pe, simd, fifo_depth); default: a balanced fold")
    folding.add_argument("--fps", type=positive_float, metavar="F",
                         help="choose the cheapest fold that reaches F frames/s at --clock")
    folding.add_argument("--luts", type=positive_int, metavar="N",
                         help="choose the fastest fold whose estimated LUTs, the AXI4-Stream "
                              "top's included, stay within N; build, with its Yosys estimate, "
                              "chooses again by Yosys' count (up to 4 syntheses); build "
                              "--target ecp5: N LUT4s, as nextpnr counts them")


def fold_from_args(net, args):
    """The ``gen.build.TargetFold`` that ``--fold``, ``--fps`` or ``--luts`` ask for on
    ``--target``'s ``--board`` at ``--clock``, else the target's default: the fold ``gen build``
    starts from with the same options."""
    from gen.build import target_fold

    return target_fold(net, args.target, args.board, fold_path=args.fold, fps=args.fps,
                       luts=args.luts, clock_mhz=args.clock, baud=args.baud)


def add_target_options(parser):
    """``--target``, ``--board``, ``--clock`` and ``--baud``: what the fold is for."""
    parser.add_argument("--target", default="ultrascale", choices=sorted(TARGETS))
    parser.add_argument("--board", help="board of the target (default: the target's first; "
                                        "see build --list-targets)")
    parser.add_argument("--clock", type=positive_float, metavar="MHZ",
                        help="the design's clock, for --fps and frames/s too (default: the "
                             "board's)")
    parser.add_argument("--baud", type=positive_int, metavar="N",
                        help="ecp5: UART baud rate (default 1000000), which the default fold "
                             "keeps up with")


def command_build(args):
    from boards import describe_targets
    from gen.build import build
    from gen.report import format_report, lut_budget_check

    if args.list_targets:
        print(describe_targets())
        return 0
    net, path, is_default = load_model(args.model)
    out = Path(args.out or Path("build") / net.name)
    print(f"building {describe_model(net, path, is_default)}")
    try:
        report = build(net, out, target=args.target, board=args.board, fold_path=args.fold,
                       fps=args.fps, luts=args.luts,
                       part=args.part, clock_mhz=args.clock, source=path, baud=args.baud,
                       estimate=not args.no_estimate, scores=args.scores)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_report(report))
    resources = report.get("resources")
    if resources:
        print(f"resources ({resources['tool']}): {resources['lut']:,} LUTs, {resources['ff']:,} "
              f"FFs, {resources['bram36']:g} BRAM36, {resources['dsp']} DSPs")
    budget = lut_budget_check(report)
    if budget:
        print(budget)
    ecp5 = report.get("ecp5")
    if ecp5:
        print(f"{ecp5['part']}: {ecp5['lut4']['used']:,} LUT4s, {ecp5['ff']['used']:,} FFs, "
              f"{ecp5['ebr']['used'] if ecp5['ebr'] else 0} EBR; Fmax {ecp5['fmax_mhz']} MHz "
              f"(clock {ecp5['clock_mhz']:g} MHz); UART {ecp5['baud_actual']:,.0f} baud: "
              f"{report['uart_frames_per_second']:,.1f} frames/s")
    outputs = ", ".join([report["verilog"]] + report.get("outputs", []))
    print(f"wrote {out}/: {outputs}, report.json, fold.json, network.json/.npz "
          f"({report['target']} board {report['board']}, part {report['part']}); Verilog "
          f"generated in {report['generator_seconds']:.1f} s")
    return 0


def command_report(args):
    from gen.graph import build_graph
    from gen.report import build_report, format_report

    net, path, is_default = load_model(args.model)
    print(describe_model(net, path, is_default))
    chosen = fold_from_args(net, args)
    report = build_report(build_graph(net, chosen.fold), clock_mhz=chosen.clock_mhz,
                          wrapper=chosen.wrapper)
    print(format_report(report))
    ratio = chosen.luts_per_model_lut
    if ratio != 1:
        print(f"{args.target}: about {ratio * report['resource_model']['lut']:,.0f} LUT4s at "
              f"{ratio:g} a model LUT, the UART top not priced (gen build counts them with "
              f"nextpnr)")
    return 0


def sim_images(net, args):
    """``(images, labels or None, description)`` for ``gen sim``."""
    rng = np.random.default_rng(args.seed)
    if args.dataset is None:
        images = rng.integers(0, 1 << net.input.bits, size=(args.images,) + tuple(net.input.shape))
        return images, None, "random images"
    from model.data import load_dataset

    images, labels = load_dataset(args.dataset, "test", args.data)
    if images.shape[1:] != tuple(net.input.shape) or net.input.bits != 8:
        raise NetworkFileError(f"{args.dataset} images are {list(images.shape[1:])} bytes, but "
                               f"network {net.name!r} takes {list(net.input.shape)} of "
                               f"{net.input.bits}-bit elements")
    chosen = rng.permutation(images.shape[0])[:args.images]  # test sets may be sorted by class
    return images[chosen], labels[chosen], f"{args.dataset} test images"


def command_sim(args):
    from sim.network import simulate_network

    net, path, is_default = load_model(args.model)
    fold = fold_from_args(net, args).fold
    images, labels, what = sim_images(net, args)
    print(f"simulating {describe_model(net, path, is_default)} in Verilator on {len(images)} "
          f"{what} (stall probability {args.stall})")
    result = simulate_network(net, fold, images, valid_probability=1 - args.stall,
                              ready_probability=1 - args.stall, seed=args.seed,
                              cxx_opt=args.cxx_opt)
    n = result.images
    print(f"classes: {result.labels_matching}/{n} match the golden executor")
    print(f"scores:  {result.scores_matching}/{n} match the golden executor")
    interval = result.measured_interval
    if interval is None:
        print("interval: too few images to measure (need at least 4)")
    else:
        error = 100 * (interval - result.expected_interval) / result.expected_interval
        print(f"interval: {interval:.1f} cycles/frame measured in steady state, "
              f"{result.expected_interval} expected ({error:+.1f}%)")
    if labels is not None:
        correct = int((result.labels[:, 0] == labels).sum())
        print(f"accuracy: {correct}/{n} top-1 correct ({100 * correct / n:.1f}%) in the RTL")
    ok = result.labels_matching == n and result.scores_matching == n
    return 0 if ok else 1


def command_bench(args):
    from gen.bench import DEFAULT_FPS, SYNTH_TIMEOUT, bench_folds, run_bench
    from gen.networks import random_cnv

    net = random_cnv()
    folds = bench_folds(net, clock_mhz=args.clock, fps_targets=tuple(args.fps or DEFAULT_FPS),
                        lut_budget=args.luts)
    if args.only:
        unknown = set(args.only) - {label for label, _ in folds}
        if unknown:
            raise FoldError(f"--only: no fold named {sorted(unknown)}; the folds are "
                            f"{[label for label, _ in folds]}")
        folds = [(label, fold) for label, fold in folds if label in args.only]
    report = run_bench(net, folds, args.out, clock_mhz=args.clock, synth=not args.no_synth,
                       sim=not args.no_sim, layer_sims=args.layer_sims, fmax=args.fmax,
                       images=args.images, synth_timeout=args.synth_timeout or SYNTH_TIMEOUT)
    print(f"wrote {args.out}/bench.json, bench.md, bench.png ({len(report['folds'])} folds)")
    return 0


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def probability(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), not {text}")
    return value


def make_parser():
    parser = argparse.ArgumentParser(prog="python -m gen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="compile a network to Verilog, report and project",
                                description="Compile a network file to Verilog, report.json, "
                                            "fold.json and the target's project.")
    add_target_options(build)
    build.add_argument("--list-targets", action="store_true",
                       help="list targets, their boards and parts, and exit")
    add_model_options(build)
    build.add_argument("--out", metavar="DIR", help="output directory (default build/<network>)")
    build.add_argument("--part", help="FPGA part (default: the board's)")
    build.add_argument("--no-estimate", action="store_true",
                       help="ultrascale: skip the Yosys resource estimate (and the fit check)")
    build.add_argument("--scores", action="store_true",
                       help="ultrascale: send each frame's scores (int32) before its classes")
    build.set_defaults(run=command_build)

    sim = commands.add_parser("sim", help="simulate the whole network in Verilator",
                              description="Simulate the accelerator in Verilator on random images "
                                          "and compare classes and scores with the golden executor.")
    add_model_options(sim)
    add_target_options(sim)
    sim.add_argument("--images", type=positive_int, default=10, metavar="N")
    sim.add_argument("--dataset", choices=["cifar10", "mnist"],
                     help="take test images from this dataset instead of random ones")
    sim.add_argument("--data", metavar="PATH", help="dataset file or directory (default: "
                     "$XNORFLOW_CIFAR10 / $XNORFLOW_MNIST, else the shared copy)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--stall", type=probability, default=0.0, metavar="P",
                     help="probability of a valid/ready gap on the input and outputs each cycle")
    sim.add_argument("--cxx-opt", type=int, choices=[0, 1], default=0, metavar="LEVEL",
                     help="C++ optimisation level of the Verilator model: 0 (default) builds "
                          "fastest; 1 builds longer and runs several times faster (many "
                          "images, or a build reused); each level is cached apart")
    sim.set_defaults(run=command_sim)

    report = commands.add_parser("report", help="print per-layer folding and expected cycles",
                                 description="Print the fold, per-layer cycles and the interval "
                                             "without generating Verilog.")
    add_model_options(report)
    add_target_options(report)
    report.set_defaults(run=command_report)

    bench = commands.add_parser(
        "bench", help="measure CNV-W1A1 under FINN's fold and automatic folds",
        description="Build CNV-W1A1 (random weights) under FINN's folding and our automatic "
                    "folds; print and write per-layer cycles (expected and measured), LUT/FF/BRAM "
                    "(model and Yosys), Fmax, frames/s, generator and simulation speed.")
    bench.add_argument("--out", metavar="DIR", default="build/bench")
    bench.add_argument("--clock", type=positive_float, default=300.0, metavar="MHZ")
    bench.add_argument("--fps", type=positive_float, nargs="+", metavar="F",
                       help="frame-rate targets for automatic folds (default 10000 30000 100000)")
    bench.add_argument("--luts", type=positive_int, default=230_400, metavar="N",
                       help="LUT budget of the largest automatic fold (default: an xczu7ev's)")
    bench.add_argument("--only", nargs="+", metavar="FOLD",
                       help="measure only these folds (labels as printed, e.g. FINN)")
    bench.add_argument("--images", type=positive_int, default=6, metavar="N",
                       help="random images through the Verilator simulation of each fold")
    bench.add_argument("--no-synth", action="store_true", help="skip the Yosys syntheses")
    bench.add_argument("--no-sim", action="store_true", help="skip the Verilator simulations")
    bench.add_argument("--synth-timeout", type=positive_int, metavar="S",
                       help="seconds Yosys may take per fold (default: an hour)")
    bench.add_argument("--layer-sims", action="store_true",
                       help="also simulate each layer alone to measure its cycles")
    bench.add_argument("--fmax", action="store_true",
                       help="place and route on an ECP5-85F (nextpnr) where the design fits")
    bench.set_defaults(run=command_bench)
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        return args.run(args)
    except (NetworkFileError, FoldError, DatasetError, BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
