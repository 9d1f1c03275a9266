"""A network file back into a trainable ``model.nets.BNN`` (``--init-from`` / ``--teacher NET.json``).

The shipped models are network files (bits and integer thresholds); the training checkpoints
they came from stay on the machine that trained them. This module rebuilds, from the file alone,
a model whose eval-mode function *is* the network's:

- latent weights ``±LATENT_MAGNITUDE`` with the file's signs (the latent magnitudes are not in
  the file; one magnitude for all);
- each batch norm set so that its output is ``y = slope·(x − centre)``, where ``x`` is the value
  it sees (``scale·acc``, ``scale`` the exact factor of ``model.export.accumulation_scales``) and
  ``centre`` lies half an integer step beyond the threshold, so ``y`` is never 0 at an integer
  ``acc``; a sign layer gets ``slope = ±1/σ`` (direction), a ternary layer the slope that puts
  its two thresholds at ``y = ∓a/2``;
- running mean and variance measured on calibration images (layer by layer, in one eval pass),
  with ``γ``/``β`` solved from them: in training mode, where batch norm uses batch statistics,
  the model then starts close to the network instead of far from it;
- the last layer's ``TensorNorm`` with a weight of 1 (a positive affine map of the scores).

``build_network`` of the result is checked equal to the file (weights, clamped thresholds,
directions, padding) before the model is returned.
"""
from pathlib import Path

import numpy as np
import torch

from gen.ir import ComputeLayer, NetworkFileError, PoolLayer, load_network
from gen.networks import cifar_input_table
from model.export import ExportError, accumulation_bound, accumulation_scales, build_network
from model.layers import TernaryAct
from model.methods import get_method
from model.nets import ARCHS, PoolBlock, build_model, get_arch
from model.quant import INPUT_FRAC_BITS

LATENT_MAGNITUDE = 0.5
CALIBRATION_IMAGES = 1000


class NetworkImportError(ValueError):
    """A network file that does not fit the model it should become (one-line message)."""


def is_network_file(path):
    """Whether ``path`` names a network file (``.json`` header) rather than a checkpoint."""
    return Path(path).suffix == ".json"


def read_network_file(path, option):
    """The network in file ``path``; an unreadable one raises ``NetworkImportError`` naming ``option``."""
    try:
        return load_network(path)
    except (OSError, NetworkFileError) as error:
        raise NetworkImportError(f"{option}: {error}")


def _arch_structure(arch, classes):
    """``(kind, size, pad)`` per layer of ``arch`` (a ``model.nets.Arch``) ending in ``classes``
    scores: conv out channels and padding, pool kernel, dense outputs."""
    return [(spec[0], spec[1], spec[2] if spec[0] == "conv" else 0)
            for spec in arch.layers + (("dense", classes),)]


def _network_structure(net):
    """The network's layers as ``_arch_structure`` gives an architecture's."""
    def one(layer):
        if isinstance(layer, PoolLayer):
            return ("pool", layer.kernel, 0)
        return (layer.kind, layer.out_channels, layer.pad if layer.kind == "conv" else 0)
    return [one(layer) for layer in net.layers if isinstance(layer, (ComputeLayer, PoolLayer))]


def _describe(entry):
    kind, size, pad = entry
    return f"{kind} {size}" + (f" padded {pad}" if kind == "conv" else "")


def structure_mismatch(model, net):
    """``None`` where ``model``'s blocks have the network's layers (kind, size, padding) on the
    same input shape, else a phrase saying where they first differ."""
    if tuple(net.input.shape) != tuple(model.input_shape):
        return f"its input is {list(net.input.shape)}, the model's {list(model.input_shape)}"
    ours, theirs = _arch_structure(get_arch(model.arch), model.num_classes), _network_structure(net)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return f"layer {index} is {_describe(b)}, the model's {_describe(a)}"
    if len(ours) != len(theirs):
        return f"it has {len(theirs)} conv/pool/dense layers, the model {len(ours)}"
    return None


def arch_of(net):
    """The name of the ``model.nets`` architecture with the network's layers; ``NetworkImportError``
    where none has."""
    structure, classes = _network_structure(net), net.compute_layers[-1].out_channels
    for name, arch in ARCHS.items():
        if _arch_structure(arch, classes) == structure:
            return name
    raise NetworkImportError(f"network {net.name!r}: no architecture of model.nets has its layers; "
                             f"accepted: {', '.join(ARCHS)}")


def _latent_weights(layer, core):
    """The layer's weight bits as ``±LATENT_MAGNITUDE`` in the PyTorch layout of ``core``."""
    bits = np.asarray(layer.weights, dtype=np.float32)
    if layer.kind == "conv":                       # columns (ky, kx, c) → [O, C, ky, kx]
        k, c = layer.kernel, layer.in_shape[2]
        bits = bits.reshape(-1, k, k, c).transpose(0, 3, 1, 2)
    elif len(layer.in_shape) == 3:                 # a dense layer after a conv: HWC → CHW columns
        h, w, c = layer.in_shape
        bits = bits.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(bits.shape[0], -1)
    latent = torch.from_numpy(np.ascontiguousarray((2 * bits - 1) * LATENT_MAGNITUDE))
    return latent.reshape(core.weight.shape).to(core.weight.dtype)


def _slope_and_centre(layer, block, scales, sigma):
    """Per channel, ``slope`` and ``centre`` (in the batch norm's input units) of ``y = slope·(x −
    centre)``, ``σ`` the standard deviation of ``x``."""
    thresholds = np.asarray(layer.thresholds, dtype=np.float64)
    direction = (np.ones(layer.out_channels) if layer.direction is None
                 else np.asarray(layer.direction, dtype=np.float64))
    if isinstance(block.act, TernaryAct):
        a = float(block.act.scale().detach())
        low, high = thresholds.min(axis=1), thresholds.max(axis=1)
        # direction +1: y = -a/2 at acc = low - 1/2 and +a/2 at high - 1/2; -1 mirrors it
        centre = (low + high - direction) / 2
        slope = direction * a / (np.maximum(high - low, 0.5) * scales)
    else:
        centre = thresholds[:, 0] - direction / 2
        slope = direction / sigma
    return slope, centre * scales


def _statistics(x, per_channel):
    """Mean and (biased) variance of ``x`` per channel (dim 1), or over everything."""
    x = x.detach().double()
    if not per_channel:
        return x.mean(), x.var(unbiased=False)
    dims = [d for d in range(x.dim()) if d != 1]
    return x.mean(dim=dims), x.var(dim=dims, unbiased=False)


def _store(norm, mean, var, weight, bias):
    for tensor, value in ((norm.running_mean, mean), (norm.running_var, var),
                          (norm.weight, weight), (norm.bias, bias)):
        tensor.data.copy_(torch.as_tensor(value).to(tensor.dtype).reshape(tensor.shape))


def _calibrate_thresholds(norm, x, layer, block, scales):
    """Batch norm ``norm`` with ``x``'s statistics and the eval output ``slope·(x − centre)``."""
    mean, var = _statistics(x, per_channel=True)
    sigma = (var + norm.eps).sqrt().numpy()
    slope, centre = _slope_and_centre(layer, block, scales, sigma)
    _store(norm, mean, var, slope * sigma, slope * (mean.numpy() - centre))


def _calibrate_scores(norm, x):
    """``TensorNorm`` with ``x``'s statistics, weight 1 and bias 0."""
    mean, var = _statistics(x, per_channel=False)
    _store(norm, mean, var, 1.0, 0.0)


def load_network_into(model, net, images, where="network"):
    """Give ``model`` (a binary ``BNN``, its method prepared) the function of ``net``, its batch
    norms calibrated on ``images`` (uint8 ``[N, H, W, C]``; ``CALIBRATION_IMAGES`` are enough).
    ``where`` names the file in errors."""
    from model.quant import pixels_to_input

    if model.precision != "binary":
        raise NetworkImportError(f"{where}: a network file holds a binary model, not {model.precision}")
    mismatch = structure_mismatch(model, net)
    if mismatch:
        raise NetworkImportError(f"{where} is not a {model.arch} network: {mismatch}")
    if net.input.bits != 8 or not np.array_equal(net.input.table, cifar_input_table()):
        raise NetworkImportError(f"{where}: its input is not the 8-bit pixel table the models quantize to")
    blocks = [b for b in model.blocks if not isinstance(b, PoolBlock)]
    for block, layer in zip(blocks, net.compute_layers):
        if layer.output == "threshold":
            levels, ternary = layer.thresholds.shape[1], isinstance(block.act, TernaryAct)
            if levels != (2 if ternary else 1):
                raise NetworkImportError(
                    f"{where}: layer {layer.name}: {levels} threshold(s) per channel, the model's "
                    f"{'ternary' if ternary else 'sign'} activation needs {2 if ternary else 1} "
                    f"(--method dualpath: two; any other method: one)")
    hooks = []
    with torch.no_grad():
        for index, (block, layer) in enumerate(zip(blocks, net.compute_layers)):
            block.core.weight.copy_(_latent_weights(layer, block.core))
            unit = 2.0 ** -INPUT_FRAC_BITS if index == 0 else 1.0
            scales = accumulation_scales(block, unit)
            scales = np.array([float(s) for s in scales] if isinstance(scales, list) else float(scales))
            if layer.output == "scores":
                hook = lambda norm, inputs: _calibrate_scores(norm, inputs[0])
            else:
                hook = (lambda norm, inputs, block=block, layer=layer, scales=scales:
                        _calibrate_thresholds(norm, inputs[0], layer, block, scales))
            hooks.append(block.bn.register_forward_pre_hook(hook))
        try:
            model.eval()
            model(pixels_to_input(images))
        finally:
            for hook in hooks:
                hook.remove()
    _check_round_trip(model, net, where)
    return model


def _check_round_trip(model, net, where):
    """``build_network(model)`` must be ``net``: weights, thresholds (clamped to the accumulation's
    range, as the exporter clamps), directions and padding, layer by layer."""
    try:
        rebuilt, _ = build_network(model)
    except ExportError as error:
        raise NetworkImportError(f"{where}: the rebuilt model does not export: {error}")
    for ours, theirs in zip(rebuilt.compute_layers, net.compute_layers):
        differs = [what for what, same in _layer_agreement(ours, theirs) if not same]
        if differs:
            raise NetworkImportError(f"{where}: layer {theirs.name}'s {' and '.join(differs)} do not come "
                                     f"back from the model as they are in the file")


def _layer_agreement(ours, theirs):
    """``(what, equal)`` pairs comparing a rebuilt layer with the file's."""
    yield "weights", np.array_equal(ours.weights, theirs.weights)
    yield "padding", ours.pad_value == theirs.pad_value
    if theirs.output == "scores":
        return
    bound = accumulation_bound(theirs)
    clamped = lambda t: np.sort(np.clip(np.asarray(t), -bound - 1, bound + 1), axis=1)
    direction = np.ones(theirs.out_channels) if theirs.direction is None else theirs.direction
    yield "thresholds", np.array_equal(clamped(ours.thresholds), clamped(theirs.thresholds))
    yield "directions", np.array_equal(ours.direction, direction)


def model_from_network_file(path, images, option):
    """A new binary ``BNN`` with the function of the network file ``path`` (architecture found
    from its layers; ``dualpath`` where it has two thresholds per channel, else ``ste``)."""
    net = read_network_file(path, option)
    model = build_model(arch_of(net), net.input.shape, net.compute_layers[-1].out_channels)
    get_method("dualpath" if net.compute_layers[0].thresholds.shape[1] == 2 else "ste").prepare(model)
    return load_network_into(model, net, images, where=f"{option}: {path}")
