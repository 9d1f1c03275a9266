"""Host driver for the UltraScale+ build, PYNQ style: load the overlay, stream a batch of images
through the AXI DMA, read the classes (and scores, if the build has them).

Copy the build's ``vivado/xnorflow.bit``, ``xnorflow.hwh`` and ``overlay.json`` (all three are
in ``vivado/`` once Vivado has run) and this file to the board, then::

    python3 pynq_driver.py xnorflow.bit --images images.npy [--labels labels.npy]

or from Python: ``XnorflowOverlay("xnorflow.bit").classify(images)``. Only this file's
``XnorflowOverlay`` needs ``pynq`` (imported when an overlay is opened); the byte packing and
unpacking are plain numpy functions, tested against the RTL in simulation.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

LAYOUT_FILE = "overlay.json"
# The DMA's buffer length register is 26 bits wide in the block design (c_sg_length_width).
MAX_TRANSFER_BYTES = (1 << 26) - 1


def load_layout(path):
    """The stream layout (``boards.axis.axis_layout``) saved beside the overlay."""
    return json.loads(Path(path).read_text())


def pack_images(images, layout):
    """The input bytes of a batch of HWC images: one byte per element, image after image.

    ``images`` has shape ``[N, *input_shape]`` (or one image without N); values must fit the
    input's bits (0..255, or 0/1 for a binary input).
    """
    images = np.asarray(images)
    shape = tuple(layout["input_shape"])
    if images.shape == shape:
        images = images[None]
    if images.shape[1:] != shape:
        raise ValueError(f"images must have shape [N, {', '.join(map(str, shape))}], "
                         f"not {list(images.shape)}")
    high = (1 << layout["input_bits"]) - 1
    if images.size and (images.min() < 0 or images.max() > high):
        raise ValueError(f"image values must be in 0..{high} for a {layout['input_bits']}-bit "
                         f"input, not {images.min()}..{images.max()}")
    return np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.uint8).reshape(-1)


def words_per_frame(layout):
    return layout["score_words"] + layout["label_words"]


def beats_from_bytes(data, beat_bytes):
    """Input bytes as AXI4-Stream beat values (byte 0 in the lowest bits of TDATA)."""
    data = np.asarray(data, dtype=np.uint8).reshape(-1, beat_bytes)
    return [int.from_bytes(row.tobytes(), "little") for row in data]


def bytes_from_words(words, word_bytes=4):
    """Output words (TDATA values) as the bytes the DMA writes to memory, little-endian."""
    return np.frombuffer(b"".join(int(w).to_bytes(word_bytes, "little") for w in words),
                         dtype=np.uint8)


def unpack_results(data, layout, count):
    """``(labels [count, top_k], scores [count, classes] or None)`` from the output bytes."""
    word_bytes = layout["out_word_bytes"]
    frame = words_per_frame(layout) * word_bytes
    data = np.asarray(data).view(np.uint8).reshape(-1)
    if data.size < count * frame:
        raise ValueError(f"{count} frames need {count * frame} output bytes, got {data.size}")
    frames = data[:count * frame].reshape(count, frame)
    score_bytes = layout["score_words"] * word_bytes
    labels = frames[:, score_bytes:score_bytes + layout["top_k"]].astype(np.int64)
    scores = None
    if layout["scores"]:
        scores = frames[:, :score_bytes].copy().view("<i4").astype(np.int64)
    return labels, scores


def batch_limit(layout):
    """Images per DMA transfer: the larger of the two buffers stays under the DMA's limit."""
    per_frame = max(layout["frame_bytes"], words_per_frame(layout) * layout["out_word_bytes"])
    return max(1, MAX_TRANSFER_BYTES // per_frame)


class XnorflowOverlay:
    """The bitstream on the programmable logic, with its DMA; ``classify`` runs images."""

    def __init__(self, bitfile, layout=None, *, dma_name="dma"):
        from pynq import Overlay  # only on the board

        bitfile = Path(bitfile)
        if layout is None:  # beside the bitstream (as copied to a board), or in the build root
            near = [bitfile.with_name(LAYOUT_FILE), bitfile.parent.parent / LAYOUT_FILE]
            layout = load_layout(next((p for p in near if p.exists()), near[0]))
        self.layout = layout
        self.overlay = Overlay(str(bitfile))
        self.dma = getattr(self.overlay, dma_name)

    def classify(self, images, *, batch=None):
        """``(labels, scores or None, seconds)`` for ``images`` ([N, *input_shape] bytes)."""
        from pynq import allocate

        layout = self.layout
        data = pack_images(images, layout)
        count = data.size // layout["frame_bytes"]
        batch = min(batch or count, batch_limit(layout), count) or 1
        out_words = words_per_frame(layout)
        in_buffer = allocate(shape=(batch * layout["frame_bytes"],), dtype=np.uint8)
        out_buffer = allocate(shape=(batch * out_words,), dtype=np.uint32)
        labels, scores = [], []
        started = time.perf_counter()
        try:
            for first in range(0, count, batch):
                n = min(batch, count - first)
                frame_bytes = layout["frame_bytes"]
                in_buffer[:n * frame_bytes] = data[first * frame_bytes:(first + n) * frame_bytes]
                in_buffer.flush()
                self.dma.recvchannel.transfer(out_buffer, nbytes=n * out_words * 4)
                self.dma.sendchannel.transfer(in_buffer, nbytes=n * frame_bytes)
                self.dma.sendchannel.wait()
                self.dma.recvchannel.wait()
                out_buffer.invalidate()
                got_labels, got_scores = unpack_results(np.array(out_buffer), layout, n)
                labels.append(got_labels)
                if got_scores is not None:
                    scores.append(got_scores)
        finally:
            in_buffer.freebuffer()
            out_buffer.freebuffer()
        seconds = time.perf_counter() - started
        return (np.concatenate(labels), np.concatenate(scores) if scores else None, seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Classify images on the board (PYNQ).")
    parser.add_argument("bitfile", help="xnorflow.bit (with xnorflow.hwh and overlay.json beside)")
    parser.add_argument("--images", required=True, help=".npy of [N, H, W, C] uint8 images")
    parser.add_argument("--labels", help=".npy of [N] true classes, to print the accuracy")
    parser.add_argument("--batch", type=int, help="images per DMA transfer (default: all)")
    args = parser.parse_args(argv)
    images = np.load(args.images)
    labels, _, seconds = XnorflowOverlay(args.bitfile).classify(images, batch=args.batch)
    print(f"{len(labels)} images in {seconds:.3f} s: {len(labels) / seconds:,.0f} frames/s")
    if args.labels:
        truth = np.load(args.labels)[:len(labels)]
        correct = int((labels[:, 0] == truth).sum())
        print(f"accuracy: {correct}/{len(truth)} ({100 * correct / len(truth):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
