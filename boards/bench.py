"""The slow board checks, kept out of the default test run; their figures go in docs/boards.md.

    python -m boards.bench builds [--model net.json] [--boards ulx3s ecpix5 orangecrab zcu104]
    python -m boards.bench uart-sim [--model net.json] [--images 3] [--divisor 25]

``builds`` runs ``gen build`` for each board (ECP5: bitstream, LUT4/FF/EBR, Fmax; UltraScale+:
Yosys estimate) and prints one table row per board with the wall time. ``uart-sim`` simulates
the UART top exactly as the ECP5 bitstream has it (the UART-matched fold for ``divisor`` clocks
per bit) on random images in Verilator, bytes on RX to class bytes on TX, against the golden
executor.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from boards import TARGETS


def target_of(board):
    return next(t.name for t in TARGETS.values() if any(b.name == board for b in t.boards))


def run_builds(net, boards, out_root):
    from gen.build import build

    print("| board | part | LUT | FF | BRAM/EBR | DSP/MULT18 | Fmax (clock) | interval | wall |")
    print("|---|---|---|---|---|---|---|---|---|")
    for board in boards:
        target = target_of(board)
        started = time.perf_counter()
        report = build(net, Path(out_root) / board, target=target, board=board)
        wall = time.perf_counter() - started
        if target == "ecp5":
            e = report["ecp5"]
            row = (f"{e['lut4']['used']:,} LUT4 | {e['ff']['used']:,} | {e['ebr']['used']} EBR | "
                   f"{e['mult18']['used'] if e['mult18'] else 0} | {e['fmax_mhz']} MHz "
                   f"({e['clock_mhz']:g}) ")
        else:
            r = report["resources"]
            row = (f"{r['lut']:,} (Yosys) | {r['ff']:,} | {r['bram36']:g} BRAM36 | {r['dsp']} | "
                   f"— ({report['clock_mhz']:g}) ")
        print(f"| {board} | {report['part']} | {row}| {report['interval_cycles']:,} | "
              f"{wall:.0f} s |", flush=True)


def run_uart_sim(net, images, divisor, seed):
    from boards.ecp5 import uart_fold
    from boards.uart_top import simulate
    from gen import golden

    fold = uart_fold(net, divisor)
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 1 << net.input.bits, (images,) + tuple(net.input.shape))
    started = time.perf_counter()
    _, result = simulate(net, fold, batch, divisor=divisor, partial=50, seed=seed)
    wall = time.perf_counter() - started
    expected = golden.execute(net, batch).labels.reshape(-1).tolist()
    same = sum(a == b for a, b in zip(result["labels"], expected))
    print(f"{net.name}: UART top, divisor {divisor}, fold "
          f"{ {k: (v.pe, v.simd) for k, v in fold.items()} }")
    print(f"classes: {same}/{len(expected)} match the golden executor; overrun "
          f"{result['overrun']}, framing error {result['framing_error']}; {wall:.0f} s")
    return 0 if same == len(expected) and not result["overrun"] else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m boards.bench", description=__doc__)
    parser.add_argument("what", choices=["builds", "uart-sim"])
    parser.add_argument("--model", help="network header (default: the shipped network)")
    parser.add_argument("--boards", nargs="+", default=["ulx3s", "ecpix5", "orangecrab",
                                                        "zcu104"])
    parser.add_argument("--out", help="build root (default: a temporary directory)")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--divisor", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from gen.__main__ import load_model

    net, _, _ = load_model(args.model)
    if args.what == "uart-sim":
        return run_uart_sim(net, args.images, args.divisor, args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        run_builds(net, args.boards, args.out or scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
