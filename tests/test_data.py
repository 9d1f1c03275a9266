"""Dataset loaders on small files made here, and their one-line errors."""
import gzip
import io
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from model.data import DatasetError, load_dataset


def write_cifar_jpeg_npz(path, images, labels):
    blobs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=95)
        blobs.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    np.savez(path, test_jpeg=np.concatenate(blobs), test_offsets=offsets, test_labels=labels)


def test_cifar_jpeg_copy_decodes_to_hwc_bytes(tmp_path):
    rng = np.random.default_rng(0)
    flat = np.repeat(rng.integers(0, 256, (3, 1, 1, 3), dtype=np.uint8), 32, 1).repeat(32, 2)
    write_cifar_jpeg_npz(tmp_path / "c.npz", flat, np.array([3, 1, 4], np.uint8))
    images, labels = load_dataset("cifar10", "test", tmp_path / "c.npz")
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [3, 1, 4]
    assert np.abs(images.astype(int) - flat).max() <= 3  # flat colours survive JPEG


def test_cifar_python_batches_without_running_arbitrary_pickles(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [0, 9, 2, 2]}))
    images, labels = load_dataset("cifar10", "test", tmp_path)
    assert images.shape == (4, 32, 32, 3) and labels.tolist() == [0, 9, 2, 2]
    assert (images[1, 5, 7] == data[1].reshape(3, 32, 32)[:, 5, 7]).all()  # CHW → HWC

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DatasetError, match="refusing .*system: only NumPy arrays"):
        load_dataset("cifar10", "test", tmp_path)


def idx_bytes(magic, array):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_mnist_idx_files_plain_and_gzipped(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(idx_bytes(0x803, images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(0x801, np.arange(5)))
    got, labels = load_dataset("mnist", "test", tmp_path)
    assert got.shape == (5, 28, 28, 1) and (got[..., 0] == images).all()
    assert labels.tolist() == [0, 1, 2, 3, 4]


def written(path, content, result):
    path.write_bytes(content)
    return result


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing.npz", "no such file or directory for dataset 'cifar10'"),
    (lambda d: written(d / "x.npz", b"junk", d / "x.npz"), "not a CIFAR-10 JPEG .npz"),
    (lambda d: written(d / "test_batch", b"\x80\x04junk", d), "not a CIFAR-10 python batch"),
])
def test_bad_cifar_paths_give_one_line(tmp_path, make, message):
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar10", "test", make(tmp_path))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_mnist_files_and_names(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(0x801, np.arange(3)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(0x801, np.arange(3)))
    with pytest.raises(DatasetError, match="not an idx file"):
        load_dataset("mnist", "test", tmp_path)
    with pytest.raises(DatasetError, match="accepted: cifar10, mnist"):
        load_dataset("svhn")
    with pytest.raises(DatasetError, match="no t10k-images-idx3-ubyte or"):
        load_dataset("mnist", "test", tmp_path / "..")
