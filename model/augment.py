"""Training and test splits (the same for training and evaluation) and batch augmentation on tensors.

Splits (``load_splits``):

- CIFAR-10: the official 50,000 training and 10,000 test images.
- MNIST: when the data folder has the official ``train-images-idx3-ubyte[.gz]`` it is used with the
  official test set. Otherwise (the shared copy holds only ``t10k``): a fixed split of the 10,000
  test images — the first 80% (8,000) for training, the last 20% (2,000) held out for testing.
"""
from pathlib import Path

import numpy as np

from model.data import DatasetError, dataset_path, load_dataset

MNIST_TRAIN_FRACTION = 0.8
SUBSET_SEED = 20261122


def subset(images, labels, limit):
    """A fixed random subset of ``limit`` images (in their original order), the same in every run.

    Not the first ``limit``: the CIFAR-10 JPEG copy is sorted by class, so its first images are
    all airplanes. ``limit`` of ``None`` (or at least the size) returns everything.
    """
    if limit is None or limit >= images.shape[0]:
        return images, labels
    keep = np.sort(np.random.default_rng(SUBSET_SEED).permutation(images.shape[0])[:limit])
    return images[keep], labels[keep]


def _has_mnist_train(path):
    path = Path(path)
    return path.is_dir() and any((path / f"train-images-idx3-ubyte{suffix}").exists() for suffix in ("", ".gz"))


def load_splits(dataset, path=None, *, need_train=True):
    """``(train_images, train_labels, test_images, test_labels, note)``, uint8 HWC images.

    ``note`` says in words which split is used (it goes into summaries and reports).
    With ``need_train=False`` the training arrays are ``None`` where they need not be read.
    """
    path = dataset_path(dataset, path)
    if dataset == "mnist" and not _has_mnist_train(path):
        images, labels = load_dataset("mnist", "test", path)
        cut = int(round(images.shape[0] * MNIST_TRAIN_FRACTION))
        if cut < 1 or cut >= images.shape[0]:
            raise DatasetError(f"{path}: {images.shape[0]} MNIST images are too few to split")
        note = (f"MNIST t10k only: images 0..{cut - 1} ({cut}) train, "
                f"{cut}..{images.shape[0] - 1} ({images.shape[0] - cut}) held-out test")
        return images[:cut], labels[:cut], images[cut:], labels[cut:], note
    test_images, test_labels = load_dataset(dataset, "test", path)
    train_images = train_labels = None
    if need_train:
        train_images, train_labels = load_dataset(dataset, "train", path)
    note = f"{dataset} official train ({'not read' if train_images is None else train_images.shape[0]}) " \
           f"/ test ({test_images.shape[0]}) split"
    return train_images, train_labels, test_images, test_labels, note


def random_crop_flip(batch, generator, *, pad=4, flip=True):
    """Random crop with ``pad`` pixels of zero padding and random horizontal flips.

    ``batch``: uint8 (or float) tensor ``[N, C, H, W]``; the same shape comes back. One random
    offset and flip per image, drawn from ``generator`` (a CPU ``torch.Generator``), done by indexing
    on the batch's device.
    """
    import torch

    n, c, h, w = batch.shape
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = dy[:, None] + torch.arange(h)[None, :]                       # [N, H]
    cols = dx[:, None] + torch.arange(w)[None, :]                       # [N, W]
    if flip:
        flipped = torch.rand(n, generator=generator) < 0.5
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    device = batch.device          # the random draws stay on the generator's (CPU) device
    rows, cols = rows.to(device), cols.to(device)
    index = torch.arange(n, device=device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]   # [N, H, W, C]
    return out.permute(0, 3, 1, 2).contiguous()


def check_images(images, shape, what):
    """Raise ``DatasetError`` unless ``images`` are ``[N, *shape]``."""
    if tuple(images.shape[1:]) != tuple(shape):
        raise DatasetError(f"{what}: images are {list(images.shape[1:])}, the network takes {list(shape)}")
    return images

