"""The golden executor: runs a network file on integer tensors exactly as the hardware does.

Tensors are in the hardware's encoding, batch first and HWC: raw input bytes (or bits), binary
activations as 0/1 (bit 1 is +1), ternary activations as counts 0/1/2 (−1/0/+1; a layer with two
thresholds per channel gives them), final scores as integers. It is the
specification that the exporter and the RTL are both tested against.
"""
from dataclasses import dataclass

import numpy as np

from gen.ir import ComputeLayer, LabelLayer, PoolLayer

# float32 sums integers exactly below 2**24; larger accumulations fall back to int64.
_FLOAT32_EXACT = 1 << 24


def _exact_matmul(a, b, bound):
    """``a @ b`` (``a`` of any rank, ``b`` 2-D) for integers whose dot products stay within
    ±bound, computed exactly. ``a`` is flattened to 2-D first: NumPy's stacked matmul does not
    reach BLAS, which made a CNV layer 80 times slower."""
    flat = a.reshape(-1, a.shape[-1])
    if bound < _FLOAT32_EXACT:
        product = (flat.astype(np.float32) @ b.astype(np.float32)).astype(np.int64)
    else:
        product = flat.astype(np.int64) @ b.astype(np.int64)
    return product.reshape(a.shape[:-1] + (b.shape[1],))


def layer_input_values(layer, x, net):
    """The signed values a compute layer multiplies: ±1 for bits, count − 1 for ternary counts,
    int8 for the first layer's bytes."""
    if layer.in_bits == 8:
        return net.input.values(x)
    if layer.in_bits == 2:
        return x.astype(np.int64) - 1
    return 2 * x.astype(np.int64) - 1


def im2col(values, kernel, pad, pad_value):
    """[N, H, W, C] → [N, Hout, Wout, k*k*C] windows in (ky, kx, c) order, stride 1."""
    n, h, w, c = values.shape
    padded = np.pad(values, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=pad_value)
    out_h, out_w = h + 2 * pad - kernel + 1, w + 2 * pad - kernel + 1
    cols = np.empty((n, out_h, out_w, kernel, kernel, c), dtype=values.dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            cols[:, :, :, ky, kx, :] = padded[:, ky:ky + out_h, kx:kx + out_w, :]
    return cols.reshape(n, out_h, out_w, kernel * kernel * c)


def accumulate(layer, values):
    """Dot products (±1 arithmetic) of a compute layer; ``values`` from ``layer_input_values``."""
    signed_weights = 2 * layer.weights.astype(np.int64) - 1
    bound = layer.mw * max(1, int(np.abs(values).max(initial=0)))
    if layer.kind == "conv":
        binary_pad = -1                     # bit 0, or ternary count 0
        pad_value = layer.pad_value if layer.in_bits == 8 else binary_pad
        cols = im2col(values, layer.kernel, layer.pad, pad_value)
        return _exact_matmul(cols, signed_weights.T, bound)
    flat = values.reshape(values.shape[0], -1)
    return _exact_matmul(flat, signed_weights.T, bound)


def apply_thresholds(layer, acc):
    """Output counts: thresholds passed (``acc >= t``, or ``acc <= t`` for direction −1)."""
    thresholds = layer.thresholds  # [MH, T]
    above = (acc[..., None] >= thresholds).sum(-1)
    if layer.direction is None:
        return above.astype(np.int64)
    below = (acc[..., None] <= thresholds).sum(-1)
    return np.where(layer.direction > 0, above, below).astype(np.int64)


def max_pool(bits, kernel):
    """Maximum over non-overlapping k x k windows (the OR of bits, the largest ternary count),
    dropping rows/cols that do not fill one (floor mode)."""
    n, h, w, c = bits.shape
    oh, ow = h // kernel, w // kernel
    windows = bits[:, :oh * kernel, :ow * kernel, :].reshape(n, oh, kernel, ow, kernel, c)
    return windows.max(axis=(2, 4))


def top_k(scores, k):
    """Class indices of the k best scores, best first; ties go to the lower index."""
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def run_layer(net, layer, x):
    """One layer on a batch ``x`` in the hardware's encoding; returns its output likewise."""
    if isinstance(layer, ComputeLayer):
        acc = accumulate(layer, layer_input_values(layer, x, net))
        return acc if layer.output == "scores" else apply_thresholds(layer, acc)
    if isinstance(layer, PoolLayer):
        return max_pool(x, layer.kernel)
    if isinstance(layer, LabelLayer):
        return top_k(x, layer.top_k)
    raise TypeError(f"unknown layer {layer!r}")


@dataclass
class GoldenResult:
    """Per-image integer scores of the last compute layer and the selected class indices."""
    scores: np.ndarray
    labels: np.ndarray
    layer_outputs: list = None


def execute(net, images, *, batch=256, keep_layers=False):
    """Run ``images`` ([N, H, W, C] raw input elements) through ``net``."""
    images = np.asarray(images)
    expected = (images.shape[0],) + tuple(net.input.shape)
    if images.shape != expected:
        raise ValueError(f"images must have shape [N, {', '.join(map(str, net.input.shape))}], "
                         f"not {list(images.shape)}")
    scores, labels, per_layer = [], [], []
    for start in range(0, images.shape[0], batch):
        x = images[start:start + batch]
        outputs = []
        for layer in net.layers:
            if isinstance(layer, LabelLayer):
                scores.append(x)
            x = run_layer(net, layer, x)
            outputs.append(x)
        labels.append(x)
        per_layer.append(outputs)
    layer_outputs = None
    if keep_layers:
        layer_outputs = [np.concatenate([chunk[i] for chunk in per_layer]) for i in range(len(net.layers))]
    return GoldenResult(np.concatenate(scores), np.concatenate(labels), layer_outputs)
