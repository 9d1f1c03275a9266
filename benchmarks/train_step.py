"""Seconds per training step of each method, on random data, with nothing else loaded.

    python -m benchmarks.train_step                      # CNV, batch 100, bf16 autocast, 2 threads
    python -m benchmarks.train_step --arch vgg16 --methods ste xnor --steps 5
    python -m benchmarks.train_step --float32            # without autocast, as model.train without --bf16

One optimiser step (forward under bfloat16 autocast unless ``--float32``, cross-entropy,
backward, Adam) of a fresh network per method, eager (no ``torch.compile``), after ``--warmup``
untimed steps. Run it alone: two OpenMP threads stall when another process takes a core.
"""
import argparse
import time

import torch

from model.methods import METHODS
from model.nets import build_model


def seconds_per_step(arch, method, *, batch, steps, warmup, bf16=True):
    """Mean seconds of one training step of ``arch`` prepared by ``method``."""
    torch.manual_seed(0)
    model = build_model(arch, (32, 32, 3))
    METHODS[method].prepare(model)
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    images, labels = torch.rand(batch, 3, 32, 32) * 2 - 1, torch.randint(0, 10, (batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="cnv")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--float32", action="store_true", help="no bfloat16 autocast")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for method in args.methods:
        seconds = seconds_per_step(args.arch, method, batch=args.batch, steps=args.steps,
                                   warmup=args.warmup, bf16=not args.float32)
        precision = "float32" if args.float32 else "bf16"
        print(f"{args.arch} {method:<9} {seconds:.3f} s/step (batch {args.batch}, {precision}, eager, "
              f"{args.threads} threads)")


if __name__ == "__main__":
    main()
