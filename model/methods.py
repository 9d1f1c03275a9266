"""Training methods by name (``python -m model.train --method M``; docs/methods.md).

A method changes a freshly built binary ``model.nets.BNN`` (``prepare``) and may act before every
optimizer step (``on_step``: annealing, freezing). ``restore`` rebuilds, for a resumed run, the
structure the model had after ``step`` steps, before its state dict is loaded. Every method
exports to the same hardware: ±1 weights, integer thresholds (one per channel, or two for
ternary outputs), integer scores.

- ``ste``: BinaryNet — sign with the hardtanh straight-through estimator, weights clipped to
  [−1, 1] (the baseline; nothing to change).
- ``xnor``: XNOR-Net's per-output-channel weight scale α = mean |W| on every thresholded layer.
- ``ubq``: uncertainty-based sign annealed to the hard sign, then gradual freezing (first layers
  first) with batch norm replaced by the exported integer thresholds, then fine-tuning.
- ``dualpath``: ternary outputs as two binary paths (two thresholds per channel) with a
  trainable positive output scale per layer.
"""
import torch

from model.layers import (ChannelScale, FrozenThresholds, InputScale, TernaryAct, UncertainSign,
                          hard_sign)
from model.nets import PoolBlock
from model.quant import INPUT_FRAC_BITS


class MethodError(ValueError):
    """An unknown method, or one that does not apply to the model (one-line message)."""


def compute_blocks(model):
    """The conv/dense blocks in order (pools left out)."""
    return [block for block in model.blocks if not isinstance(block, PoolBlock)]


def thresholded_blocks(model):
    """The compute blocks with a batch norm + activation (all but the last, which gives scores)."""
    return compute_blocks(model)[:-1]


class Ste:
    name = "ste"
    description = "BinaryNet sign + hardtanh straight-through estimator, weight clipping (baseline)"
    compilable = True       # model.train --compile may compile its training forward pass

    def prepare(self, model):
        pass

    def on_step(self, model, step, total):
        pass

    def restore(self, model, step, total):
        pass


class Xnor(Ste):
    name = "xnor"
    description = "XNOR-Net per-output-channel weight scale alpha = mean|W|, folded into the thresholds"

    def prepare(self, model):
        for block in thresholded_blocks(model):
            block.scale = ChannelScale(block.core.weight)


class DualPath(Ste):
    name = "dualpath"
    description = ("ternary outputs as two binary paths at -a/2 and +a/2 (two thresholds per channel), "
                   "a trainable positive output scale a per layer")

    def prepare(self, model):
        blocks = compute_blocks(model)
        for block, after in zip(blocks[:-1], blocks[1:]):
            block.act = TernaryAct()
            after.scale = InputScale(block.act)


UBQ_PHASES = (0.4, 0.5, 0.8)   # ubq's default (hard_at, freeze_from, freeze_to)


def check_ubq_phases(phases):
    """``phases`` as a float triple (hard_at, freeze_from, freeze_to); ``MethodError`` unless
    0 < hard_at ≤ freeze_from ≤ freeze_to ≤ 1."""
    phases = tuple(float(value) for value in phases)
    if len(phases) != 3 or not 0 < phases[0] <= phases[1] <= phases[2] <= 1:
        raise MethodError(f"ubq phases must be three fractions of the steps, 0 < HARD <= FREEZE_FROM "
                          f"<= FREEZE_TO <= 1 (default {','.join(map(str, UBQ_PHASES))}), not "
                          f"{','.join(map(str, phases))}")
    return phases


class Ubq(Ste):
    """Phases over the training steps (fractions of ``total``): τ annealed linearly from
    ``tau0`` to 0 until ``hard_at``; thresholded layer i of n frozen at
    ``freeze_from + (freeze_to − freeze_from)·i/(n − 1)``; after ``freeze_to`` only the last
    layer (binary weights and the scores' norm) trains, on the exact hardware features."""
    name = "ubq"
    description = ("uncertainty-based sign annealed to a hard sign, gradual freezing first layers first "
                   "with batch norm replaced by integer thresholds, then fine-tuning")
    tau0 = 1.0
    compilable = False      # the model changes at every step (annealing, freezing): recompiles

    def __init__(self, phases=UBQ_PHASES):
        self.hard_at, self.freeze_from, self.freeze_to = check_ubq_phases(phases)

    @property
    def phases(self):
        return self.hard_at, self.freeze_from, self.freeze_to

    def prepare(self, model):
        for block in thresholded_blocks(model):
            block.act = UncertainSign(self.tau0)

    def tau(self, step, total):
        return self.tau0 * max(0.0, 1.0 - step / (self.hard_at * total))

    def freeze_step(self, index, count, total):
        """The step at which thresholded layer ``index`` of ``count`` is frozen."""
        fraction = self.freeze_from + (self.freeze_to - self.freeze_from) * index / max(1, count - 1)
        return int(fraction * total)

    def on_step(self, model, step, total):
        blocks = thresholded_blocks(model)
        for index, block in enumerate(blocks):
            if isinstance(block.bn, FrozenThresholds):
                continue
            block.act.tau = self.tau(step, total)
            if step >= self.freeze_step(index, len(blocks), total):
                freeze(block, first=index == 0)

    def restore(self, model, step, total):
        blocks = thresholded_blocks(model)
        for index, block in enumerate(blocks):
            block.act.tau = self.tau(max(0, step - 1), total)
            if step > self.freeze_step(index, len(blocks), total):
                _set_norm(block, FrozenThresholds.empty(block.bn.num_features).to(block.core.weight.device))
                block.core.weight.requires_grad_(False)
                block.act.tau = 0.0


def _set_norm(block, module):
    setattr(block, "norm" if hasattr(block, "linear") else "bn", module)


def freeze(block, *, first):
    """Turn a block into its hardware form: weights fixed to their signs, batch norm (with the
    block's scale) replaced by the exact integer thresholds the exporter writes, hard sign."""
    from model.export import block_thresholds, max_accumulation

    unit = 2.0 ** -INPUT_FRAC_BITS if first else 1.0
    bound = max_accumulation(block.core.weight[0].numel(), first=first)
    thresholds, direction, _ = block_thresholds(block, unit, bound)
    if thresholds.shape[1] != 1:
        raise MethodError("only binary (one-threshold) layers can be frozen")
    with torch.no_grad():
        block.core.weight.copy_(hard_sign(block.core.weight))
    block.core.weight.requires_grad_(False)
    _set_norm(block, FrozenThresholds(thresholds[:, 0], direction, unit).to(block.core.weight.device))
    block.scale = torch.nn.Identity()
    block.act.tau = 0.0


METHODS = {method.name: method for method in (Ste(), Xnor(), Ubq(), DualPath())}


def get_method(name, *, ubq_phases=None):
    """The method called ``name``, with ``ubq_phases`` (see ``Ubq``) replacing ubq's defaults; an
    unknown name, or phases for another method, raises ``MethodError`` in one line."""
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}; accepted: {', '.join(METHODS)}")
    if ubq_phases is None:
        return METHODS[name]
    if name != "ubq":
        raise MethodError(f"ubq phases apply to --method ubq, not {name}")
    return Ubq(ubq_phases)
