"""The golden executor against a direct, loop-by-loop reading of docs/network-format.md."""
import numpy as np
import pytest

from gen import golden
from gen.ir import load_network
from gen.networks import cifar_input_table, random_network
from tests.handmade import write_tiny_network


def reference_conv(values, weights, kernel, pad, pad_value):
    """acc[y, x, o] = Σ over the window of value * (±1 weight), by explicit loops."""
    h, w, c = values.shape
    out_h, out_w = h + 2 * pad - kernel + 1, w + 2 * pad - kernel + 1
    acc = np.zeros((out_h, out_w, weights.shape[0]), dtype=np.int64)
    for y in range(out_h):
        for x in range(out_w):
            column = []
            for ky in range(kernel):
                for kx in range(kernel):
                    iy, ix = y - pad + ky, x - pad + kx
                    inside = 0 <= iy < h and 0 <= ix < w
                    column.extend(values[iy, ix] if inside else [pad_value] * c)
            acc[y, x] = (2 * weights.astype(np.int64) - 1) @ np.array(column)
    return acc


def reference_network(net, image):
    """Scores of one image by the documented semantics, with no code shared with gen.golden."""
    x = net.input.values(image)
    for layer in net.layers[:-1]:
        if layer.kind == "maxpool":
            k = layer.kernel
            oh, ow = x.shape[0] // k, x.shape[1] // k
            x = np.array([[[x[y * k:(y + 1) * k, xx * k:(xx + 1) * k, c].max() for c in range(x.shape[2])]
                           for xx in range(ow)] for y in range(oh)])
            continue
        values = x if layer.in_bits == 8 else x - 1 if layer.in_bits == 2 else 2 * x - 1
        if layer.kind == "conv":
            pad_value = layer.pad_value if layer.in_bits == 8 else -1
            acc = reference_conv(values, layer.weights, layer.kernel, layer.pad, pad_value)
        else:
            acc = (2 * layer.weights.astype(np.int64) - 1) @ values.reshape(-1)
        if layer.output == "scores":
            return acc
        d = layer.direction if layer.direction is not None else np.ones(layer.mh, np.int64)
        x = sum(np.where(d > 0, acc >= t, acc <= t).astype(np.int64) for t in layer.thresholds.T)
    raise AssertionError("no scores layer")


def test_golden_matches_the_reference_on_the_handmade_network(tmp_path):
    net = load_network(write_tiny_network(tmp_path))
    images = np.random.default_rng(0).integers(0, 256, (8, 12, 12, 3))
    result = golden.execute(net, images)
    for image, scores, label in zip(images, result.scores, result.labels):
        expected = reference_network(net, image)
        assert (scores == expected).all()
        assert label[0] == int(np.argmax(expected))  # argmax takes the lowest index on ties


def test_golden_on_binary_input_and_dense_first_layer():
    net = random_network("mlp", (4, 4, 2), [("dense", 12), ("dense", 5)], input_bits=1, seed=4)
    images = np.random.default_rng(1).integers(0, 2, (16, 4, 4, 2))
    result = golden.execute(net, images)
    for image, scores in zip(images, result.scores):
        assert (scores == reference_network(net, image)).all()


def test_golden_on_ternary_layers_and_pools(tmp_path):
    """Two thresholds per channel: counts 0/1/2 are -1/0/+1 for the next conv, pool and dense."""
    rng = np.random.default_rng(5)
    path = write_tiny_network(tmp_path, overrides={
        "conv0.thresholds": np.sort(rng.integers(-150, 150, (6, 2)), axis=1),
        "conv1.thresholds": np.sort(rng.integers(-20, 20, (10, 2)), axis=1)})
    net = load_network(path)
    assert [getattr(layer, "in_bits", None) for layer in net.layers[:4]] == [8, 2, 2, 2]
    images = rng.integers(0, 256, (8, 12, 12, 3))
    result = golden.execute(net, images, keep_layers=True)
    assert set(np.unique(result.layer_outputs[0])) == {0, 1, 2}
    for image, scores in zip(images, result.scores):
        assert (scores == reference_network(net, image)).all()


def test_top_k_orders_best_first_and_breaks_ties_to_the_lower_index():
    scores = np.array([[3, 7, 7, -1, 7], [0, 0, 0, 0, 0]])
    assert golden.top_k(scores, 3).tolist() == [[1, 2, 4], [0, 1, 2]]


def test_cifar_table_rounds_half_to_even():
    table = cifar_input_table()
    assert table[0] == -128 and table[255] == 127 and table.min() >= -128
    # p=51: (102/255 - 1) * 128 = -76.8 -> -77; ties such as p where the product is x.5 round to even
    products = (2 * np.arange(256) / 255 - 1) * 128
    assert (table == np.clip(np.round(products), -128, 127)).all()


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_batching_does_not_change_results(batch):
    net = random_network("small", (8, 8, 3), [("conv", 4, 3, 1), ("pool", 2), ("dense", 6)],
                         table=cifar_input_table(), seed=2)
    images = np.random.default_rng(5).integers(0, 256, (10, 8, 8, 3))
    whole = golden.execute(net, images, batch=256)
    parts = golden.execute(net, images, batch=batch)
    assert (whole.scores == parts.scores).all() and (whole.labels == parts.labels).all()
