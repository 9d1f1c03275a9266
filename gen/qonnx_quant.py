"""QONNX quantizer semantics (``Quant``'s integers, rounding modes) and their exact folding,
per channel and in rational arithmetic, into the integer thresholds of an accumulation.

``gen.qonnx`` reads a model's nodes into an ``Affine`` map per layer; ``fold_thresholds`` turns
that map and the next quantizer's levels into thresholds in the ``acc`` domain.
"""
import functools
import math
from fractions import Fraction

import numpy as np

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "FLOOR", "CEIL", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


# ---------------------------------------------------------------- quantizer semantics

def int_quant(x, scale, zeropt, bitwidth, signed, narrow, rounding_mode):
    """QONNX ``Quant`` (as ``qonnx.custom_op.general.quant``) in ``x``'s dtype, returning the
    integers ``q - zeropt`` (the output divided by ``scale``)."""
    y = x / scale + zeropt
    if bitwidth == 1 and signed:                 # qonnx reads a 1-bit signed Quant as bipolar
        return np.where(y >= 0, 1, -1).astype(np.int64)
    low, high = quant_range(signed, narrow, bitwidth)
    y = np.clip(y, low, high)
    return (round_mode(rounding_mode)(y) - zeropt).astype(np.int64)


def quant_range(signed, narrow, bitwidth):
    """The smallest and largest integer of a ``Quant`` (before the zero point is taken off)."""
    if signed:
        return -(1 << (bitwidth - 1)) + int(bool(narrow)), (1 << (bitwidth - 1)) - 1
    return 0, (1 << bitwidth) - 1 - int(bool(narrow))


def round_mode(mode):
    """The numpy rounding function of a QONNX ``rounding_mode``."""
    return {
        "ROUND": np.round, "HALF_EVEN": np.round, "FLOOR": np.floor, "CEIL": np.ceil,
        "UP": lambda v: np.sign(v) * np.ceil(np.abs(v)), "DOWN": np.fix,
        "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
        "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5),
    }[mode]


def rounds_at_least(mode, m):
    """``(c, strict)`` such that ``round(y) >= m`` iff ``y > c`` (strict) or ``y >= c``, for an
    integer ``m`` and every real ``y``, with ``round`` the rounding mode ``mode``."""
    half = Fraction(2 * m - 1, 2)
    if mode in ("ROUND", "HALF_EVEN"):           # a half rounds to the even neighbour
        return half, m % 2 != 0
    if mode == "FLOOR":
        return Fraction(m), False
    if mode == "CEIL":
        return Fraction(m - 1), True
    if mode == "UP":                             # away from zero
        return (Fraction(m - 1), True) if m >= 1 else (Fraction(m), False)
    if mode == "DOWN":                           # toward zero
        return (Fraction(m), False) if m >= 1 else (Fraction(m - 1), True)
    if mode == "HALF_UP":                        # a half goes away from zero
        return half, m <= 0
    if mode == "HALF_DOWN":                      # a half goes toward zero
        return half, m >= 1
    raise ValueError(mode)


# ---------------------------------------------------------------- exact per-channel folding

def _sign(x):
    return (x > 0) - (x < 0)


@functools.cache
def _exact_sign():
    """``model.export``'s exact sign of ``L + b·sqrt(v)`` (rationals), the same helper the
    exporter of our own models folds with. model.export imports torch and brevitas; brevitas
    warns at import about optional kernels, which is noise on the command line."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from model.export import _sign_l_plus_b_sqrt_v
    return _sign_l_plus_b_sqrt_v


class Affine:
    """Per output channel, the float value after the accumulation as a function of ``acc``:
    ``(k·acc + l) / sqrt(v) + m``, with ``v`` None (read as 1) before a batch norm."""

    def __init__(self, k):
        self.k = list(k)
        self.l = [Fraction(0)] * len(self.k)
        self.m = [Fraction(0)] * len(self.k)
        self.v = None

    def scale(self, c):
        self.k = [a * b for a, b in zip(self.k, c)]
        self.l = [a * b for a, b in zip(self.l, c)]
        self.m = [a * b for a, b in zip(self.m, c)]

    def shift(self, c):
        self.m = [a + b for a, b in zip(self.m, c)]

    def batch_norm(self, gamma, beta, mean, var):
        # gamma * ((k*acc + l + m) - mean) / sqrt(var) + beta
        self.k = [g * k for g, k in zip(gamma, self.k)]
        self.l = [g * (l + m - mu) for g, l, m, mu in zip(gamma, self.l, self.m, mean)]
        self.m = list(beta)
        self.v = list(var)

    def value_sign(self, c, acc, theta):
        """Exact sign of ``value(acc) - theta`` for channel ``c``."""
        linear = self.k[c] * acc + self.l[c]
        if self.v is None:
            return _sign(linear + self.m[c] - theta)
        # (linear)/sqrt(v) + m - theta has the sign of linear + (m - theta)*sqrt(v).
        return _exact_sign()(linear, self.m[c] - theta, self.v[c])

    def estimate(self, c, theta):
        """A float estimate of the ``acc`` where ``value(acc) == theta`` (``k != 0``)."""
        root_v = 1.0 if self.v is None else math.sqrt(float(self.v[c]))
        return ((float(theta) - float(self.m[c])) * root_v - float(self.l[c])) / float(self.k[c])


def fold_thresholds(affine, levels, bound):
    """Thresholds ``[C, T]``, directions ``[C]`` and the number of exact ties, for outputs
    ``count = Σⱼ [value ≥ θⱼ]`` (``value > θⱼ`` where ``levels[j] = (θⱼ, True)``).

    ``acc`` ranges over the integers in ``[-bound, bound]``; a channel whose value grows with
    ``acc`` passes level ``j`` exactly when ``acc >= t[c, j]``, one whose value falls (direction −1)
    when ``acc <= t[c, j]``. A constant channel gets ``-bound-1`` (always) or ``bound+1`` (never).
    """
    channels = len(affine.k)
    thresholds = np.zeros((channels, len(levels)), dtype=np.int64)
    direction = np.ones(channels, dtype=np.int64)
    ties = 0
    for c in range(channels):
        slope = _sign(affine.k[c])
        direction[c] = -1 if slope < 0 else 1
        for j, (theta, strict) in enumerate(levels):
            def passes(acc):
                s = affine.value_sign(c, acc, theta)
                return s > 0 or (s == 0 and not strict)

            if slope == 0:
                thresholds[c, j] = -bound - 1 if passes(0) else bound + 1
                continue
            estimate = affine.estimate(c, theta)
            estimate = estimate if math.isfinite(estimate) else math.copysign(bound + 1, estimate)
            if slope > 0:                        # the smallest passing acc, else bound + 1
                t = min(max(math.ceil(estimate), -bound), bound + 1)
                while t > -bound and passes(t - 1):
                    t -= 1
                while t <= bound and not passes(t):
                    t += 1
            else:                                # the largest passing acc, else -bound - 1
                t = min(max(math.floor(estimate), -bound - 1), bound)
                while t < bound and passes(t + 1):
                    t += 1
                while t >= -bound and not passes(t):
                    t -= 1
            thresholds[c, j] = t
            ties += int(-bound <= t <= bound and affine.value_sign(c, t, theta) == 0)
    return thresholds, direction, ties
