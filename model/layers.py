"""Layers of the training methods (docs/methods.md), each with an exact integer meaning.

- ``ChannelScale``: XNOR-Net's per-output-channel weight scale α = mean |W| on the accumulation.
- ``TernaryAct`` + ``InputScale``: the dual-path activation (two binary paths of one
  pre-activation at ±a/2, i.e. a ternary −1/0/+1 output) and its trainable output scale ``a``,
  applied to the next layer's accumulation.
- ``UncertainSign``: the uncertainty-based sign, soft in a band of width τ around 0, τ annealed
  to 0 (then exactly ``sign`` with ``sign(0) = +1``).
- ``FrozenThresholds``: batch norm replaced by the exported integer thresholds.

Every forward value that reaches the next layer is an exact integer (±1, −1/0/+1), so PyTorch's
accumulations equal the hardware's; positive scales fold into the thresholds at export.
"""
import torch
from torch import nn


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, soft, hard):
        return hard.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def straight_through(soft, hard):
    """``hard`` in the forward pass, the gradient of ``soft`` in the backward pass."""
    return _StraightThrough.apply(soft, hard)


def hard_sign(x):
    """±1 with ``sign(0) = +1`` (also for −0.0)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def _per_channel(factors, like):
    """``factors`` ([C] or scalar) shaped to broadcast over channel dim 1 of ``like``."""
    return factors.reshape((1, -1) + (1,) * (like.dim() - 2)) if factors.dim() else factors


class ChannelScale(nn.Module):
    """XNOR-Net's α_o = mean |W_o| of the latent weights of output channel o, multiplying the
    accumulation. ``weight`` is the layer's own weight parameter (tied, not copied)."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def factors(self):
        return self.weight.abs().mean(dim=tuple(range(1, self.weight.dim())))

    def forward(self, acc):
        # In the accumulation's dtype: a float32 α would promote a bfloat16 (autocast) tensor and
        # everything after it to float32, which made xnor's training steps ~1.3x slower.
        return acc * _per_channel(self.factors().to(acc.dtype), acc)


class TernaryAct(nn.Module):
    """Dual-path activation: the low path ``sign(y + a/2)`` and the high path ``sign(y − a/2)`` of
    the same batch-norm output ``y``; their mean is ``q = [y ≥ −a/2] + [y ≥ a/2] − 1`` in
    {−1, 0, +1} (y/a rounded half up and clamped: two thresholds per channel in hardware).
    ``a = exp(log_scale) > 0`` is the layer's trainable output scale: the layer's value is ``a·q``;
    it outputs ``q`` and the next layer's ``InputScale`` multiplies its accumulation by ``a``.
    Backward: LSQ's straight-through estimator (gradient 1/a to y and −y/a² to a where
    |y/a| ≤ 1.5)."""

    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))

    def scale(self):
        return self.log_scale.exp()

    def forward(self, y):
        a = self.scale()
        half = a / 2
        q = (y >= -half).to(y.dtype) + (y >= half).to(y.dtype) - 1
        return straight_through(torch.clamp(y / a, -1.5, 1.5), q)


class InputScale(nn.Module):
    """Multiplies the accumulation by the output scale ``a`` of the ternary layer before
    (its parameter, tied)."""

    def __init__(self, act):
        super().__init__()
        self.log_scale = act.log_scale

    def factors(self):
        return self.log_scale.exp()

    def forward(self, acc):
        return acc * self.factors()


class UncertainSign(nn.Module):
    """The uncertainty-based sign. In training with ``tau > 0`` the output is the expected sign
    of ``x + u``, ``u`` uniform in (−τ, τ): ±1 where |x| ≥ τ (certain), ``x/τ`` in the uncertain
    band; the backward pass is BinaryNet's hardtanh estimator (gradient 1 where |x| ≤ 1) for
    every τ. With ``tau == 0``, and always in eval mode, it is the hard sign. ``tau`` is a plain
    float, set by the method at every step (not state: a resumed run sets it from its step), so
    the forward pass never reads a value back from the device."""

    def __init__(self, tau=1.0):
        super().__init__()
        self.tau = float(tau)

    def forward(self, x):
        tau = self.tau
        value = torch.clamp(x / tau, -1.0, 1.0) if self.training and tau > 0 else hard_sign(x)
        return straight_through(torch.clamp(x, -1.0, 1.0), value)


class FrozenThresholds(nn.Module):
    """Batch norm replaced by integer thresholds (what the hardware runs): for the accumulation
    ``acc = value / unit`` it outputs ``direction·(acc − threshold) + 1/2``, positive exactly
    when the hardware's bit is 1 and never 0 (no ties)."""

    def __init__(self, thresholds, direction, unit):
        super().__init__()
        self.register_buffer("thresholds", torch.as_tensor(thresholds, dtype=torch.int64).reshape(-1))
        self.register_buffer("direction", torch.as_tensor(direction, dtype=torch.int64).reshape(-1))
        self.register_buffer("unit", torch.tensor(float(unit)))

    @classmethod
    def empty(cls, channels):
        """A placeholder of ``channels`` channels, to be filled by ``load_state_dict``."""
        return cls(torch.zeros(channels), torch.ones(channels), 1.0)

    def forward(self, acc):
        n = acc / self.unit
        t = _per_channel(self.thresholds.to(acc.dtype), acc)
        d = _per_channel(self.direction.to(acc.dtype), acc)
        return d * (n - t) + 0.5
