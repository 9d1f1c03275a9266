"""Classify images on an ECP5 board over its UART and print accuracy and frames/s.

    python -m boards.host --port /dev/ttyUSB0 --build build/random-cnv-small --dataset cifar10

The board must run the bitstream of ``--build`` (``ecp5/xnorflow.bit``); its ``report.json``
gives the baud rate and ``network.json`` the network, which the golden executor runs on the same
images so the board's answers are also checked bit for bit. The protocol: a UART break (which
resets the accelerator to a frame boundary), then each image as its raw bytes in HWC order; the
board answers each image with ``top_k`` bytes, the class indices, best first.
"""
import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

EXIT_BAD_INPUT = 2


class HostError(RuntimeError):
    """The board did not answer as expected (no reply, too few bytes)."""


def frame_seconds(frame_bytes, baud):
    """Time one image takes on the line (8N1: 10 bits a byte)."""
    return 10 * frame_bytes / baud


def classify(port, images, *, top_k=1, baud, timeout=None):
    """Send ``images`` (uint8 ``[N, ...]``) through ``port`` (a pyserial-like object with
    ``write``, ``read``, ``send_break``, ``reset_input_buffer``); returns ``(labels [N, top_k],
    seconds)``. A writer thread streams the images while this thread reads the answers, so the
    line stays busy."""
    images = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
    count, frame_bytes = images.shape
    expected = count * top_k
    port.reset_input_buffer()
    port.send_break(duration=0.01)
    time.sleep(0.01)
    errors = []

    def write():
        try:
            for image in images:
                port.write(image.tobytes())
        except Exception as error:  # reported by the reader
            errors.append(error)

    started = time.perf_counter()
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    limit = timeout or 2 * count * frame_seconds(frame_bytes, baud) + 2.0
    received = bytearray()
    while len(received) < expected:
        if time.perf_counter() - started > limit or errors:
            break
        received += port.read(expected - len(received))
    seconds = time.perf_counter() - started
    writer.join(timeout=1.0)
    if errors:
        raise HostError(f"writing to the serial port failed: {errors[0]}")
    if len(received) < expected:
        raise HostError(f"the board answered {len(received)} of {expected} bytes in "
                        f"{limit:.1f} s: is the bitstream loaded and the baud rate right?")
    return np.frombuffer(bytes(received), dtype=np.uint8).reshape(count, top_k), seconds


def load_build(directory):
    """``(report, network)`` of a build directory."""
    from gen.ir import load_network

    directory = Path(directory)
    report = json.loads((directory / "report.json").read_text())
    if report.get("target") != "ecp5":
        raise ValueError(f"{directory} is a {report.get('target')!r} build; the host talks to "
                         f"an ecp5 build (python -m gen build --target ecp5)")
    return report, load_network(directory / "network.json")


def pick_images(net, args):
    """``(images, labels or None, what)`` as ``gen sim`` picks them."""
    rng = np.random.default_rng(args.seed)
    if args.dataset is None:
        shape = (args.images,) + tuple(net.input.shape)
        return rng.integers(0, 1 << net.input.bits, size=shape), None, "random images"
    from model.data import load_dataset

    images, labels = load_dataset(args.dataset, "test", args.data)
    if images.shape[1:] != tuple(net.input.shape):
        raise ValueError(f"{args.dataset} images are {list(images.shape[1:])}, network "
                         f"{net.name!r} takes {list(net.input.shape)}")
    chosen = rng.permutation(len(images))[:args.images]
    return images[chosen], labels[chosen], f"{args.dataset} test images"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m boards.host", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or COM3")
    parser.add_argument("--build", required=True, metavar="DIR",
                        help="the ecp5 build directory whose bitstream the board runs")
    parser.add_argument("--dataset", choices=["cifar10", "mnist"],
                        help="test images from this dataset (default: random images)")
    parser.add_argument("--data", metavar="PATH", help="dataset file or directory")
    parser.add_argument("--images", type=int, default=100, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baud", type=int, help="default: the build's")
    args = parser.parse_args(argv)
    from gen import golden

    try:
        report, net = load_build(args.build)
        images, labels, what = pick_images(net, args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    baud = args.baud or report["ecp5"]["baud"]
    top_k = net.layers[-1].top_k
    try:
        import serial  # pyserial, only needed here
    except ImportError:
        print("error: pyserial is not installed (pip install pyserial)", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"sending {len(images)} {what} to {args.port} at {baud} baud")
    with serial.Serial(args.port, baud, timeout=0.5) as port:
        try:
            got, seconds = classify(port, images, top_k=top_k, baud=baud)
        except HostError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    expected = golden.execute(net, images).labels
    same = int((got == expected).all(axis=1).sum())
    line_rate = 1 / frame_seconds(images[0].size, baud)
    print(f"{len(images)} frames in {seconds:.2f} s: {len(images) / seconds:.1f} frames/s "
          f"(the UART carries at most {line_rate:.1f})")
    print(f"classes: {same}/{len(images)} match the golden executor")
    if labels is not None:
        correct = int((got[:, 0] == labels).sum())
        print(f"accuracy: {correct}/{len(images)} top-1 correct "
              f"({100 * correct / len(images):.1f}%) on the board")
    return 0 if same == len(images) else 1


if __name__ == "__main__":
    sys.exit(main())
