"""Trained ``model.nets.BNN`` → xnorflow network file (``gen.ir.Network``), checked on data.

What is exported (docs/network-format.md):

- the input table ``gen.networks.cifar_input_table()`` (the model's 8-bit quantizer, checked equal
  on all 256 pixel values before anything is written);
- weights as bits (1 ↔ +1) of the quantized (±1) weights, conv columns in ``(ky, kx, c)`` order,
  a dense layer after a conv permuted from PyTorch's CHW flattening to HWC;
- batch norm + sign folded into one integer threshold per channel in the ``acc`` domain, computed
  in exact arithmetic (below) — direction −1 for a negative BN scale, an out-of-range threshold
  (a constant channel) for a zero scale;
- the last layer's integer ``acc`` as scores (Brevitas' ``TensorNorm`` is a scalar affine map; a
  negative scale is folded by flipping the last layer's weights, so the scores keep the argmax).

Exact thresholds. Layer input values are ``s·v`` with ``v`` integers (``s = 2**-7`` for the 8-bit
first layer, 1 for ±1 inputs), so the float accumulation is ``s·acc``. Batch norm in eval mode is
``y = γ(s·acc − μ)/σ + β`` with ``σ = sqrt(var + eps)``; the activation is +1 iff ``y ≥ 0``, i.e.
iff ``γ(s·acc − μ) + β·σ ≥ 0``. The parameters are floats, i.e. exact rationals; the sign of
``L + β·sqrt(v)`` with rational ``L``, ``β``, ``v`` is decided exactly by comparing squares, and the
threshold is found from a float estimate and corrected with that exact predicate. An *exact tie*
is an ``acc`` with ``y = 0`` exactly (``sign(0) = +1`` decides it); the check counts them on data,
and counts where PyTorch's float32 batch norm disagrees with the exact threshold.
"""
import math
from fractions import Fraction

import numpy as np
import torch

from gen import golden
from gen.ir import ComputeLayer, InputSpec, LabelLayer, Network, PoolLayer, save_network
from gen.networks import cifar_input_table
from model.layers import FrozenThresholds, TernaryAct
from model.nets import ConvBlock, DenseBlock, PoolBlock
from model.quant import INPUT_FRAC_BITS, pixels_to_input


class ExportError(ValueError):
    """A model that cannot be exported as a network file (the message says why)."""


# ---------------------------------------------------------------- exact threshold folding

def _sign_l_plus_b_sqrt_v(L, b, v):
    """Exact sign (−1, 0, 1) of ``L + b·sqrt(v)`` for rationals ``L``, ``b`` and ``v > 0``."""
    if L >= 0 and b >= 0:
        return 0 if (L == 0 and b == 0) else 1
    if L <= 0 and b <= 0:
        return -1
    diff = L * L - b * b * v            # opposite signs: the larger magnitude wins
    if diff == 0:
        return 0
    return (1 if diff > 0 else -1) * (1 if L > 0 else -1)


def fold_threshold(gamma, beta, mean, var, eps, scale, bound, shift=0):
    """One channel's ``(threshold, direction, tie)`` for ``sign(BN(scale·acc) + shift)``, exactly.

    ``acc`` ranges over the integers in ``[-bound, bound]``; the output bit is
    ``acc >= threshold`` (direction +1) or ``acc <= threshold`` (direction −1), equal to
    ``γ(scale·acc − μ)/sqrt(var + eps) + β + shift >= 0`` in exact arithmetic for every such ``acc``.
    ``tie`` is the integer ``acc`` where that expression is exactly 0, ``"all"`` where it is 0
    for every ``acc`` (γ = β = 0), else ``None``.
    Thresholds are clamped to ``[-bound-1, bound+1]`` (a constant channel lies at the ends).
    ``scale`` and ``shift`` may be ``Fraction``s (a positive scale: the input's unit times
    XNOR's α or a ternary layer's output scale; a shift: ±a/2 for the two ternary levels).
    """
    g, b, m = Fraction(gamma), Fraction(beta) + Fraction(shift), Fraction(mean)
    v, s = Fraction(var) + Fraction(eps), Fraction(scale)
    if v <= 0:
        raise ExportError(f"batch-norm variance + eps must be positive, not {float(v)}")
    lo, hi = -bound - 1, bound + 1
    if g == 0:                                       # y = β for every acc: a constant channel
        return (lo if b >= 0 else hi), 1, ("all" if b == 0 else None)

    def sign_at(n):
        return _sign_l_plus_b_sqrt_v(g * (s * n - m), b, v)

    estimate = (float(m) - float(b) * math.sqrt(float(v)) / float(g)) / float(s)
    if not math.isfinite(estimate):
        estimate = math.copysign(hi, estimate) if not math.isnan(estimate) else 0.0
    if g > 0:                                        # +1 exactly on [t, ∞)
        t = min(max(math.ceil(estimate), lo), hi)
        while t > lo and sign_at(t - 1) >= 0:
            t -= 1
        while t < hi and sign_at(t) < 0:
            t += 1
        direction = 1
    else:                                            # +1 exactly on (−∞, t]
        t = min(max(math.floor(estimate), lo), hi)
        while t < hi and sign_at(t + 1) >= 0:
            t += 1
        while t > lo and sign_at(t) < 0:
            t -= 1
        direction = -1
    tie = t if (lo < t < hi and sign_at(t) == 0) else None
    return t, direction, tie


def fold_batchnorm(bn, scales, bound, shifts=(0,)):
    """Thresholds ``[C, T]``, directions ``[C]`` and tie accs ``[C][T]`` (``None``, an int or
    ``"all"``) of a BN followed by ``T = len(shifts)`` comparisons ``BN(scale_c·acc) + shift ≥ 0``;
    ``scales`` holds one positive factor per channel (or one for all)."""
    params = [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    gamma, beta, mean, var = (p.detach().cpu().double().numpy() for p in params)
    channels = gamma.shape[0]
    scales = list(scales) if np.ndim(scales) else [scales] * channels
    thresholds, directions, ties = np.zeros((channels, len(shifts)), dtype=np.int64), [], []
    for c in range(channels):
        if not scales[c] > 0:
            raise ExportError(f"channel {c}: the accumulation scale must be positive, not {float(scales[c])}")
        folded = [fold_threshold(gamma[c], beta[c], mean[c], var[c], bn.eps, scales[c], bound, shift)
                  for shift in shifts]
        thresholds[c] = [t for t, _, _ in folded]
        directions.append(folded[0][1])
        ties.append([tie for _, _, tie in folded])
    return thresholds, np.array(directions, dtype=np.int64), ties


# ---------------------------------------------------------------- model → network

def _weight_bits(module):
    weight = module.quant_weight().value.detach().cpu()
    if not bool(((weight == 1) | (weight == -1)).all()):
        raise ExportError(f"{type(module).__name__} weights are not all ±1 after quantization")
    return (weight > 0).to(torch.uint8).numpy()


def _scale_factors(block):
    """The positive factors (``Fraction``s: one, or one per channel) on the block's accumulation."""
    if not hasattr(block.scale, "factors"):
        return Fraction(1)
    factors = block.scale.factors().detach().cpu().double().numpy()
    return [Fraction(float(f)) for f in factors.reshape(-1)] if factors.ndim else Fraction(float(factors))


def accumulation_bound(layer):
    """The largest ``|acc|`` of compute layer ``layer``: its width times the largest input value
    (128 for the 8-bit first layer, 1 for ±1 or ternary inputs)."""
    return max_accumulation(layer.mw, first=layer.in_bits == 8)


def max_accumulation(width, *, first):
    """The largest ``|acc|`` of a unit summing ``width`` products: of 8-bit inputs (up to 128)
    in the ``first`` layer, else of ±1 or ternary ones."""
    return width * (1 << INPUT_FRAC_BITS if first else 1)


def accumulation_scales(block, unit):
    """The exact positive factor(s) from the block's integer accumulation to the value its batch
    norm sees: ``unit`` (of the input values) times the block's scale (one, or one per channel)."""
    factors = _scale_factors(block)
    return [Fraction(unit) * f for f in factors] if isinstance(factors, list) else Fraction(unit) * factors


def block_thresholds(block, unit, bound):
    """``(thresholds [C, T], direction [C], ties [C][T])`` of a thresholded block whose input
    values are ``unit`` times integers: frozen thresholds as they are; else batch norm folded
    with the block's scale, one level for a sign (T = 1), two at ±a/2 for a ternary activation."""
    if isinstance(block.bn, FrozenThresholds):
        if float(block.bn.unit) != unit:
            raise ExportError(f"frozen thresholds on inputs of unit {float(block.bn.unit)}, not {unit}")
        thresholds = block.bn.thresholds.cpu().numpy()[:, None]
        return thresholds, block.bn.direction.cpu().numpy(), [[None]] * thresholds.shape[0]
    scales = accumulation_scales(block, unit)
    shifts = (0,)
    if isinstance(block.act, TernaryAct):
        half = Fraction(float(block.act.scale().detach())) / 2
        shifts = (half, -half)                  # count >= 1 iff y >= -a/2, count >= 2 iff y >= a/2
    return fold_batchnorm(block.bn, scales, bound, shifts)


def check_input_quantizer(model):
    """The model's 8-bit input quantizer must map pixel p to cifar_input_table()[p] / 128."""
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 256, 1)
    with torch.no_grad():
        values = model.input(pixels_to_input(pixels)).reshape(-1).double().numpy()
    expected = cifar_input_table() / float(1 << INPUT_FRAC_BITS)
    if not np.array_equal(values, expected):
        bad = int(np.flatnonzero(values != expected)[0])
        raise ExportError(f"input quantizer maps pixel {bad} to {values[bad]}, the table to {expected[bad]}")


def build_network(model, *, name=None, description="", top_k=1):
    """The ``gen.ir.Network`` of a trained binary ``model`` (eval-mode semantics) plus export facts."""
    if getattr(model, "precision", None) != "binary":
        raise ExportError(f"only binary models export to a network file, not {getattr(model, 'precision', None)!r}")
    model.eval()
    check_input_quantizer(model)
    shape = tuple(model.input_shape)
    net = Network(name=name or model.arch, input=InputSpec(shape, 8, cifar_input_table()),
                  description=description)
    facts = {"ties": {}, "scales": {}, "score_sign": 1, "score_scale": None, "score_offset": None,
             "constant_channels": 0, "negative_directions": 0}
    bits, count = 8, {"conv": 0, "dense": 0, "pool": 0}
    for block in model.blocks:
        scale = 2.0 ** -INPUT_FRAC_BITS if bits == 8 else 1.0      # unit of the input values
        if isinstance(block, PoolBlock):
            layer = PoolLayer(name=f"pool{count['pool']}", in_shape=shape, kernel=block.kernel)
            count["pool"] += 1
        elif isinstance(block, ConvBlock):
            w = _weight_bits(block.conv)                        # [O, C, ky, kx]
            layer = ComputeLayer(name=f"conv{count['conv']}", kind="conv", in_shape=shape, in_bits=bits,
                                 out_channels=w.shape[0], kernel=w.shape[2], pad=block.pad,
                                 weights=w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1))
            if bits == 8:
                if block.pad_value != 0.0:
                    raise ExportError("the 8-bit first layer must be padded with 0")
                layer.pad_value = 0
            elif block.pad and block.pad_value != -1.0:
                raise ExportError(f"binary feature maps are padded with -1, not {block.pad_value}")
            count["conv"] += 1
        elif isinstance(block, DenseBlock):
            w = _weight_bits(block.linear)                      # [O, F], F in CHW order
            if len(shape) == 3:
                h, wd, c = shape
                w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            layer = ComputeLayer(name=f"fc{count['dense']}", kind="dense", in_shape=shape, in_bits=bits,
                                 out_channels=w.shape[0], weights=w)
            count["dense"] += 1
        else:
            raise ExportError(f"cannot export block {type(block).__name__}")
        if isinstance(layer, ComputeLayer):
            if layer.mw != layer.weights.shape[1]:
                raise ExportError(f"{layer.name}: {layer.weights.shape[1]} weight columns for MW={layer.mw}")
            facts["scales"][layer.name] = scale
            if isinstance(block, DenseBlock) and block.last:
                layer.output = "scores"
                norm = block.norm
                weight = float(norm.weight.detach())
                if weight == 0:
                    raise ExportError("the final TensorNorm weight is 0: every class gets the same score")
                if weight < 0:                                  # scores = −acc keep the argmax
                    layer.weights = 1 - layer.weights
                    facts["score_sign"] = -1
                inv_std = 1.0 / math.sqrt(float(norm.running_var.detach()) + norm.eps)
                factors = _scale_factors(block)
                if isinstance(factors, list):
                    raise ExportError("a per-class scale on the scores would change their ranking")
                facts["score_scale"] = abs(weight) * inv_std * scale * float(factors)
                facts["score_offset"] = float(norm.bias.detach()) - float(norm.running_mean.detach()) * weight * inv_std
            else:
                bound = accumulation_bound(layer)
                layer.thresholds, layer.direction, ties = block_thresholds(block, scale, bound)
                facts["ties"][layer.name] = ties
                facts["constant_channels"] += int((np.abs(layer.thresholds) > bound).all(axis=1).sum())
                facts["negative_directions"] += int((layer.direction < 0).sum())
                bits = 1 if layer.thresholds.shape[1] == 1 else 2
        net.layers.append(layer)
        shape = layer.out_shape
    if net.layers[-1].kind != "dense" or net.layers[-1].output != "scores":
        raise ExportError("the model must end in a dense layer giving the scores")
    net.layers.append(LabelLayer(name="label", in_shape=shape, top_k=top_k))
    return net, facts


# ---------------------------------------------------------------- the check on data

def _nhwc(t):
    t = t.detach().cpu()
    return (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).numpy()


def check_against_torch(model, net, facts, images, labels=None, *, batch=64, progress=None):
    """Run ``images`` (uint8 ``[N, H, W, C]``) through the golden executor and the PyTorch model.

    Returns a report: prediction agreement, per layer the accumulations and output bits that
    differ, exact ties and PyTorch batch-norm outputs that are exactly 0.0; scores vs logits.
    The golden side runs layer by layer with ``gen.golden``'s own functions (to see the
    accumulations); the first batch is also run through ``golden.execute`` and must agree.
    """
    model.eval()
    images = np.asarray(images)
    blocks = [b for b in model.blocks if not isinstance(b, PoolBlock)]
    compute = net.compute_layers
    captured, hooks = {}, []

    def keep(name, what):
        return lambda module, inputs, output: captured.__setitem__((name, what), output)

    for block, layer in zip(blocks, compute):
        core = block.conv if isinstance(block, ConvBlock) else block.linear
        hooks.append(core.register_forward_hook(keep(layer.name, "acc")))
        if layer.output == "threshold":
            hooks.append(block.bn.register_forward_hook(keep(layer.name, "bn")))
            hooks.append(block.act.register_forward_hook(keep(layer.name, "act")))
    per_layer = {layer.name: {"acc_mismatches": 0, "bit_mismatches": 0, "bit_mismatches_at_ties": 0,
                              "exact_ties": 0, "float_zero": 0} for layer in compute}
    tie_arrays = {name: (np.array([[t if isinstance(t, int) else 0 for t in c] for c in ties], dtype=np.int64),
                         np.array([[isinstance(t, int) for t in c] for c in ties]),
                         np.array([[t == "all" for t in c] for c in ties]))
                  for name, ties in facts["ties"].items()}
    all_scores, all_logits = [], []
    try:
        for start in range(0, images.shape[0], batch):
            x_img = images[start:start + batch]
            captured.clear()
            with torch.no_grad():
                logits = model(pixels_to_input(x_img))
            all_logits.append(logits.double().numpy())
            x = x_img
            for layer in net.layers:
                if not isinstance(layer, ComputeLayer):
                    if isinstance(layer, LabelLayer):
                        break
                    x = golden.run_layer(net, layer, x)
                    continue
                acc = golden.accumulate(layer, golden.layer_input_values(layer, x, net))
                stats = per_layer[layer.name]
                torch_acc = _nhwc(captured[(layer.name, "acc")]).astype(np.float64) / facts["scales"][layer.name]
                if layer.output == "scores":
                    stats["acc_mismatches"] += int((torch_acc * facts["score_sign"] != acc).sum())
                    x = acc
                    continue
                stats["acc_mismatches"] += int((torch_acc != acc).sum())
                x = golden.apply_thresholds(layer, acc)
                act = _nhwc(captured[(layer.name, "act")])          # ±1, or ternary −1/0/+1
                torch_bits = (act > 0 if layer.thresholds.shape[1] == 1 else np.rint(act) + 1).astype(np.int64)
                tie_acc, has_tie, all_tie = tie_arrays[layer.name]
                at_tie = (((acc[..., None] == tie_acc) & has_tie) | all_tie).any(axis=-1)
                stats["bit_mismatches"] += int((torch_bits != x).sum())
                stats["bit_mismatches_at_ties"] += int(((torch_bits != x) & at_tie).sum())
                stats["float_zero"] += int((_nhwc(captured[(layer.name, "bn")]) == 0).sum())
                stats["exact_ties"] += int(at_tie.sum())
            all_scores.append(x)
            if start == 0:
                reference = golden.execute(net, x_img)
                if not np.array_equal(reference.scores, x):
                    raise AssertionError("the layer-by-layer golden run differs from golden.execute")
            if progress:
                progress(min(start + batch, images.shape[0]), images.shape[0])
    finally:
        for hook in hooks:
            hook.remove()
    scores, logits = np.concatenate(all_scores), np.concatenate(all_logits)
    g_top = golden.top_k(scores, min(5, scores.shape[1]))
    t_pred = logits.argmax(axis=1)
    disagree = np.flatnonzero(g_top[:, 0] != t_pred)
    fitted = facts["score_scale"] * scores + facts["score_offset"]
    report = {
        "images": int(images.shape[0]),
        "agree": int(images.shape[0] - disagree.size),
        "disagree": int(disagree.size),
        "disagree_indices": disagree[:20].tolist(),
        "exact_ties": int(sum(s["exact_ties"] for s in per_layer.values())),
        "float_zero": int(sum(s["float_zero"] for s in per_layer.values())),
        "bit_mismatches": int(sum(s["bit_mismatches"] for s in per_layer.values())),
        "bit_mismatches_at_ties": int(sum(s["bit_mismatches_at_ties"] for s in per_layer.values())),
        "acc_mismatches": int(sum(s["acc_mismatches"] for s in per_layer.values())),
        "logits_vs_scores_max_error": float(np.abs(fitted - logits).max(initial=0.0)),
        "per_layer": per_layer,
    }
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64)
        report["golden_top1"] = float((g_top[:, 0] == labels).mean())
        report["golden_top5"] = float((g_top == labels[:, None]).any(axis=1).mean())
        report["torch_top1"] = float((t_pred == labels).mean())
    return report, scores, logits


def export_network(model, path=None, *, check_images=None, check_labels=None, name=None,
                   description="", batch=64, progress=None):
    """Export ``model`` (a binary ``model.nets.BNN``) to ``path`` (``.json`` + ``.npz``).

    With ``check_images`` the golden executor and the PyTorch model (eval mode) are run on them
    first; the report says how many predictions agree (and accuracies with ``check_labels``).
    Returns ``(network, report)``. The files are written only after the check (whatever its
    result: the report tells), through temporary files.
    """
    net, facts = build_network(model, name=name, description=description)
    layers = net.compute_layers
    report = {
        "arch": model.arch, "input_shape": list(model.input_shape),
        "layers": [{"name": l.name, "kind": l.kind, "mh": l.mh, "mw": l.mw, "out_shape": list(l.out_shape)}
                   for l in layers],
        "tie_channels": int(sum(any(t is not None for t in c) for ties in facts["ties"].values() for c in ties)),
        "constant_channels": facts["constant_channels"],
        "negative_directions": facts["negative_directions"],
        "score_sign": facts["score_sign"], "score_scale": facts["score_scale"],
        "score_offset": facts["score_offset"],
    }
    if check_images is not None:
        check, _, _ = check_against_torch(model, net, facts, check_images, check_labels,
                                          batch=batch, progress=progress)
        report["check"] = check
    if path is not None:
        save_network(net, path)
        report["path"] = str(path)
    return net, report
