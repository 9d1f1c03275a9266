"""Fmax of every stage of CNV-W1A1 under a fold, each placed and routed alone on an ECP5-85F.

    python -m benchmarks.stage_fmax                          # FINN's fold, every stage
    python -m benchmarks.stage_fmax --fps 100000 --kinds mvu window
    python -m benchmarks.stage_fmax --stages conv1_window label --out build/stage-fmax.json

``boards.fmax.ecp5_fmax`` on each stage's component out of context (register-to-register paths
only; the whole network's figure is ``python -m gen bench --fmax``). Prints a line per stage
with nextpnr's Fmax, its cells and the first and last cell of the slowest path, and writes them
as JSON with ``--out``. Stages beyond an ECP5-85F's 83,640 LUT4s fail in nextpnr and are
reported as such.
"""
import argparse
import json
import warnings
from pathlib import Path

from amaranth.hdl import UnusedElaboratable

from boards import BuildError
from boards.fmax import ecp5_fmax
from gen.bench import finn_fold
from gen.files import replace_text
from gen.fold import fold_for_fps
from gen.graph import build_graph
from gen.networks import random_cnv


def stage_fmax(graph, *, stages=None, kinds=None, log=print):
    """``{stage name: ecp5_fmax result or {"error": message}}`` for the chosen stages."""
    results = {}
    for stage in graph.stages:
        if (stages and stage.name not in stages) or (kinds and stage.kind not in kinds):
            continue
        try:
            results[stage.name] = {"kind": stage.kind, **ecp5_fmax(stage.component)}
        except BuildError as error:
            results[stage.name] = {"kind": stage.kind, "error": str(error)}
        log(f"{stage.name} ({stage.kind}): {json.dumps(results[stage.name])}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, help="our fold for this frame rate (default: "
                        "FINN's fold)")
    parser.add_argument("--clock", type=float, default=300.0, metavar="MHZ",
                        help="clock of the --fps target (default 300)")
    parser.add_argument("--stages", nargs="+", metavar="NAME", help="only these stages")
    parser.add_argument("--kinds", nargs="+", metavar="KIND",
                        help="only these kinds (mvu, window, pool, fifo, width, map, label)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the results as JSON")
    args = parser.parse_args(argv)
    net = random_cnv()
    fold = (finn_fold(net) if args.fps is None else
            fold_for_fps(net, args.fps, args.clock))
    graph = build_graph(net, fold)
    # Stages left out are built but never elaborated; that is intended here.
    warnings.simplefilter("ignore", UnusedElaboratable)
    unknown = set(args.stages or ()) - {stage.name for stage in graph.stages}
    if unknown:
        parser.error(f"--stages: no stage named {sorted(unknown)}; the stages are "
                     f"{[stage.name for stage in graph.stages]}")
    results = stage_fmax(graph, stages=args.stages, kinds=args.kinds)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        replace_text(args.out, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
