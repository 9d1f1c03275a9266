"""A network file written exactly as docs/network-format.md says, without xnorflow's writer."""
import json

import numpy as np


def pack(weights):
    return np.packbits(np.asarray(weights, dtype=np.uint8), axis=1, bitorder="little")


def write_tiny_network(directory, *, seed=0, overrides=None):
    """12x12x3 bytes → conv 3x3 pad 1 (6) → pool 2 → conv 3x3 (10) → dense scores (7) → label.

    ``overrides`` replaces arrays by key (``None`` deletes one), to make broken files.
    Returns the header path.
    """
    rng = np.random.default_rng(seed)
    table = np.clip(np.round((2 * np.arange(256) / 255 - 1) * 128), -128, 127).astype(np.int16)
    arrays = {
        "input.table": table,
        "conv0.weights": pack(rng.integers(0, 2, (6, 27))),
        "conv0.thresholds": rng.integers(-150, 150, (6, 1)),
        "conv0.direction": np.array([1, -1, 1, 1, -1, 1]),
        "conv1.weights": pack(rng.integers(0, 2, (10, 54))),
        "conv1.thresholds": rng.integers(-6, 7, (10, 1)),
        "fc0.weights": pack(rng.integers(0, 2, (7, 160))),
    }
    for key, value in (overrides or {}).items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    header = {
        "format": "xnorflow-network", "version": 1, "name": "tiny", "arrays": "tiny.npz",
        "input": {"shape": [12, 12, 3], "bits": 8, "table": "input.table"},
        "layers": [
            {"name": "conv0", "kind": "conv", "out_channels": 6, "kernel": 3, "pad": 1,
             "pad_value": 0},
            {"name": "pool0", "kind": "maxpool", "kernel": 2},
            {"name": "conv1", "kind": "conv", "out_channels": 10, "kernel": 3, "pad": 0},
            {"name": "fc0", "kind": "dense", "out_features": 7, "output": "scores"},
            {"name": "label", "kind": "label", "top_k": 1},
        ],
    }
    np.savez(directory / "tiny.npz", **arrays)
    path = directory / "tiny.json"
    path.write_text(json.dumps(header))
    return path
