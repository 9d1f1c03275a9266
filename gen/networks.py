"""The shipped networks: ``DEFAULT_NETWORK`` (the trained one ``gen build`` builds without
``--model``) and networks with fixed random weights, for tests.

Thresholds are calibrated on random inputs to each channel's median accumulation, so that every
binary activation is +1 about half of the time: a random network then exercises every layer.
"""
from pathlib import Path

import numpy as np

from gen import golden
from gen.ir import ComputeLayer, InputSpec, LabelLayer, Network, PoolLayer

SHIPPED_DIR = Path(__file__).resolve().parent / "networks"
DEFAULT_NETWORK = SHIPPED_DIR / "cnv-dualpath-cifar10.json"


def cifar_input_table():
    """Raw pixel p → clamp(round((2p/255 − 1)·128), −128, 127), rounding half to even (Q1.7)."""
    pixels = np.arange(256, dtype=np.float64)
    return np.clip(np.round((2 * pixels / 255 - 1) * 128), -128, 127).astype(np.int64)


def random_network(name, input_shape, layer_specs, *, input_bits=8, table=None, seed=0,
                   calibration_images=32, top_k=1, ternary=()):
    """A network from compact specs with random weights and median-calibrated thresholds.

    ``layer_specs``: tuples ``("conv", out_channels, kernel, pad)``, ``("pool", kernel)``,
    ``("dense", out_features)``; the last compute layer gives scores and a label layer follows.
    The compute layers at the indices in ``ternary`` get two thresholds per channel (at the
    channel's tertiles) and give ternary outputs −1/0/+1.
    """
    rng = np.random.default_rng(seed)
    net = Network(name=name, input=InputSpec(tuple(input_shape), input_bits, table),
                  description=f"random weights (seed {seed}), thresholds at channel medians")
    images = rng.integers(0, 1 << input_bits, size=(calibration_images,) + tuple(input_shape))
    x = images
    shape, bits = tuple(input_shape), input_bits
    last_compute = max(i for i, spec in enumerate(layer_specs) if spec[0] in ("conv", "dense"))
    for index, spec in enumerate(layer_specs):
        kind = spec[0]
        if kind == "pool":
            layer = PoolLayer(name=f"pool{index}", in_shape=shape, kernel=spec[1], in_bits=bits)
        else:
            layer = ComputeLayer(name=f"{kind}{index}", kind=kind, in_shape=shape, in_bits=bits,
                                 out_channels=spec[1], weights=None,
                                 output="scores" if index == last_compute else "threshold")
            if kind == "conv":
                layer.kernel, layer.pad = spec[2], spec[3]
            layer.weights = rng.integers(0, 2, size=(layer.mh, layer.mw), dtype=np.uint8)
            if layer.output == "threshold":
                acc = golden.accumulate(layer, golden.layer_input_values(layer, x, net))
                quantiles = (1 / 3, 2 / 3) if index in ternary else (1 / 2,)
                levels = np.quantile(acc.reshape(-1, layer.mh), quantiles, axis=0)
                layer.thresholds = np.ceil(levels).astype(np.int64).T
        net.layers.append(layer)
        x = golden.run_layer(net, layer, x)
        shape = layer.out_shape
        bits = layer.out_bits if isinstance(layer, ComputeLayer) else bits
    net.layers.append(LabelLayer(name="label", in_shape=shape, top_k=top_k))
    return net


def random_cnv_small(seed=0, ternary=False):
    """CNV's topology at a quarter of its width, CIFAR-10-shaped input (32x32x3 bytes); with
    ``ternary``, every layer but the last gives ternary outputs."""
    specs = [("conv", 16, 3, 0), ("conv", 16, 3, 0), ("pool", 2),
             ("conv", 32, 3, 0), ("conv", 32, 3, 0), ("pool", 2),
             ("conv", 64, 3, 0), ("conv", 64, 3, 0),
             ("dense", 128), ("dense", 10)]
    return random_network("random-cnv-small" + "-ternary" * ternary, (32, 32, 3), specs,
                          table=cifar_input_table(), seed=seed,
                          ternary=_thresholded(specs) if ternary else ())


def random_sfc(seed=0):
    """SFC's topology (BNN-PYNQ: dense 256, 256, 256, 10) on MNIST-shaped input (28x28 bytes),
    random weights."""
    return random_network("random-sfc", (28, 28, 1), [("dense", 256)] * 3 + [("dense", 10)],
                          seed=seed)


def _thresholded(specs):
    """Indices of the compute layers in ``specs`` that end in thresholds: all but the last."""
    return [i for i, spec in enumerate(specs[:-1]) if spec[0] != "pool"]


def random_cnv(seed=0):
    """FINN's CNV-W1A1 topology (conv 64, 64, pool, 128, 128, pool, 256, 256; dense 512, 512,
    10), CIFAR-10-shaped input, random weights: the network ``gen bench`` measures."""
    return random_network(
        "random-cnv-w1a1", (32, 32, 3),
        [("conv", 64, 3, 0), ("conv", 64, 3, 0), ("pool", 2),
         ("conv", 128, 3, 0), ("conv", 128, 3, 0), ("pool", 2),
         ("conv", 256, 3, 0), ("conv", 256, 3, 0),
         ("dense", 512), ("dense", 512), ("dense", 10)],
        table=cifar_input_table(), seed=seed, calibration_images=8)


def random_vgg16(seed=0, ternary=False):
    """B-VGG16's topology (13 padded 3x3 convs 2x64, 2x128, 3x256, 3x512, 3x512, a max-pool
    after each stack, dense 1024, 10), CIFAR-10-shaped input, random weights: units of up to
    1,024 outputs and 4,608 inputs, for the resource model's calibration; with ``ternary``,
    every layer but the last gives ternary outputs."""
    specs = []
    for channels, count in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        specs += [("conv", channels, 3, 1)] * count + [("pool", 2)]
    specs += [("dense", 1024), ("dense", 10)]
    return random_network("random-vgg16" + "-ternary" * ternary, (32, 32, 3), specs,
                          table=cifar_input_table(), seed=seed, calibration_images=4,
                          ternary=_thresholded(specs) if ternary else ())
