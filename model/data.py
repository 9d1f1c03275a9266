"""Datasets as uint8 HWC image arrays and label arrays, with one-line errors for bad paths.

- CIFAR-10: the JPEG copy (``cifar10-jpeg.npz``) or the official python batches
  (``cifar-10-batches-py/``; read with an unpickler that admits only NumPy arrays).
- MNIST: idx files, gzipped or not (``t10k-images-idx3-ubyte[.gz]`` and the labels beside it).

Paths come from the caller, else ``XNORFLOW_CIFAR10`` / ``XNORFLOW_MNIST``, else the shared data
folder beside the repository.
"""
import gzip
import io
import os
import pickle
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEFAULT_PATHS = {
    "cifar10": ("XNORFLOW_CIFAR10", SHARED_DATA / "cifar10" / "cifar10-jpeg.npz"),
    "mnist": ("XNORFLOW_MNIST", SHARED_DATA / "mnist"),
}
SPLITS = ("train", "test")


class DatasetError(ValueError):
    """A dataset that cannot be read; the message is one line naming the path."""


def dataset_path(name, path=None):
    """The path to read ``name`` from: ``path``, the environment variable, or the shared copy."""
    if name not in DEFAULT_PATHS:
        raise DatasetError(f"unknown dataset {name!r}; accepted: {', '.join(DEFAULT_PATHS)}")
    variable, default = DEFAULT_PATHS[name]
    return Path(path or os.environ.get(variable) or default)


def load_dataset(name, split="test", path=None):
    """``(images, labels)``: uint8 ``[N, H, W, C]`` and uint8 ``[N]``."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    path = dataset_path(name, path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory for dataset {name!r} "
                           f"(give a path, or set {DEFAULT_PATHS[name][0]})")
    return LOADERS[name](path, split)


# ---------------------------------------------------------------- CIFAR-10

def _load_cifar10(path, split):
    if path.is_dir():
        return _cifar10_python_batches(path, split)
    return _cifar10_jpeg_npz(path, split)


def _cifar10_jpeg_npz(path, split):
    from PIL import Image

    try:
        with np.load(path, allow_pickle=False) as npz:
            jpeg, offsets, labels = (npz[f"{split}_jpeg"], npz[f"{split}_offsets"],
                                     npz[f"{split}_labels"])
    except (ValueError, OSError, KeyError) as error:
        raise DatasetError(f"{path}: not a CIFAR-10 JPEG .npz with {split}_jpeg, {split}_offsets "
                           f"and {split}_labels ({error})")
    if offsets.shape != (labels.shape[0] + 1,):
        raise DatasetError(f"{path}: {split}_offsets must have one entry more than {split}_labels")
    images = np.empty((labels.shape[0], 32, 32, 3), dtype=np.uint8)
    try:
        for i in range(labels.shape[0]):
            blob = jpeg[offsets[i]:offsets[i + 1]].tobytes()
            images[i] = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: image {i} of {split} is not a 32x32 JPEG ({error})")
    return images, labels.astype(np.uint8)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and NumPy arrays; refuses every other global."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only NumPy arrays are read")
        return super().find_class(module, name)


def _cifar10_python_batches(directory, split):
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        path = directory / name
        try:
            with open(path, "rb") as f:
                batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            images.append(data.transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch[b"labels"], dtype=np.uint8))
        except FileNotFoundError:
            raise DatasetError(f"{path}: missing CIFAR-10 python batch")
        except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as error:
            raise DatasetError(f"{path}: not a CIFAR-10 python batch ({error})")
    return np.concatenate(images), np.concatenate(labels)


# ---------------------------------------------------------------- MNIST

def _read_idx(path, magic, dims):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise DatasetError(f"{path}: unreadable idx file ({error})")
    header = 4 + 4 * dims
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise DatasetError(f"{path}: not an idx file (expected magic 0x{magic:08x})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != np.prod(shape):
        raise DatasetError(f"{path}: holds {data.size} bytes, its header promises {shape}")
    return data.reshape(shape)


def _find(directory, stem):
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DatasetError(f"{directory}: no {stem} or {stem}.gz")


def _load_mnist(path, split):
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find(path, f"{prefix}-images-idx3-ubyte"), 0x803, 3)
    labels = _read_idx(_find(path, f"{prefix}-labels-idx1-ubyte"), 0x801, 1)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{path}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images[..., None].copy(), labels.copy()


LOADERS = {"cifar10": _load_cifar10, "mnist": _load_mnist}
