"""Accuracy of a network file as the hardware computes it: the golden executor on the test split.

    python -m model.eval --model runs/cnv/cnv.json --dataset cifar10 [--data PATH] [--limit N]
    python -m model.eval --model cnv_1w1a.onnx --dataset cifar10     # a QONNX model, imported

Prints top-1 and top-5 of ``gen.golden.execute`` (integer scores; ties go to the lower class
index, as in the hardware). The test split is the one training used (``model.augment.
load_splits``): CIFAR-10's official test set; for MNIST without the official training files,
the last 2,000 of the 10,000 t10k images.
"""
import argparse
import sys
import time

import numpy as np

from model.data import DEFAULT_PATHS, DatasetError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m model.eval", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True,
                        help="network file (.json header, .npz beside it) or QONNX model (.onnx "
                             "from brevitas export_qonnx, imported as gen build imports it)")
    parser.add_argument("--dataset", required=True, choices=list(DEFAULT_PATHS))
    parser.add_argument("--data", help="dataset path (default: $XNORFLOW_<DATASET> or the shared copy)")
    parser.add_argument("--limit", type=int,
                        help="a fixed random subset of N test images (the same as model.train --limit-test N)")
    parser.add_argument("--batch", type=int, default=100, help="images per golden-executor batch")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be positive, not {args.limit}")
    if args.batch < 1:
        parser.error(f"--batch must be positive, not {args.batch}")
    return args


def evaluate_network(net, images, labels, *, batch=100, progress=None):
    """``(top1, top5, scores)`` of the golden executor on uint8 HWC ``images``."""
    from gen import golden

    scores = []
    for start in range(0, images.shape[0], batch):
        scores.append(golden.execute(net, images[start:start + batch], batch=batch).scores)
        if progress:
            progress(min(start + batch, images.shape[0]), images.shape[0])
    scores = np.concatenate(scores)
    top = golden.top_k(scores, min(5, scores.shape[1]))
    labels = np.asarray(labels).astype(np.int64)
    return float((top[:, 0] == labels).mean()), float((top == labels[:, None]).any(axis=1).mean()), scores


def main(argv=None):
    args = parse_args(argv)
    from gen.ir import NetworkFileError, read_model
    from model.augment import check_images, load_splits, subset

    try:
        net = read_model(args.model)
        _, _, images, labels, note = load_splits(args.dataset, args.data, need_train=False)
        check_images(images, net.input.shape, f"{args.dataset} test")
    except (NetworkFileError, DatasetError) as error:
        print(f"python -m model.eval: error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        images, labels = subset(images, labels, args.limit)
        note += f"; a fixed random subset of {images.shape[0]} test images"
    tty = sys.stderr.isatty()

    def progress(done, total):
        if tty:
            print(f"\rgolden executor {done}/{total}", end="", file=sys.stderr, flush=True)

    start = time.time()
    top1, top5, _ = evaluate_network(net, images, labels, batch=args.batch, progress=progress)
    if tty:
        print(file=sys.stderr)
    print(f"{net.name}: golden executor on {images.shape[0]} {args.dataset} test images ({note}): "
          f"top-1 {100 * top1:.2f}%  top-5 {100 * top5:.2f}%  ({time.time() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
