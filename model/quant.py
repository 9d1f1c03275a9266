"""Quantizers shared by every binarized network (Brevitas injectors) and their exact meaning.

- Weights: 1 bit, constant scale 1.0, ``sign(0) = +1``: the quantized weight is exactly ±1.
- Activations: 1 bit, constant scale 1.0; forward ``sign(x)`` with ``sign(0) = +1`` (also for
  ``-0.0``), backward the hardtanh straight-through estimator (gradient 1 where ``|x| <= 1``).
- First-layer input: 8 bits, Q1.7 (power-of-two scale 2**-7, range [-1, 1 - 2**-7]). A pixel
  ``p`` enters the model as ``x = p / 255``; the model computes ``2x - 1`` and the quantizer gives
  ``clamp(round((2p/255 - 1) * 128), -128, 127) / 128`` with torch's round-half-to-even, which is
  exactly ``gen.networks.cifar_input_table()[p] / 128`` (tested for all 256 values).

These are the quantizers of Brevitas' BNN-PYNQ examples (``CommonWeightQuant``/``CommonActQuant``),
written out here so that ``model/`` does not depend on ``brevitas_examples``.
"""
import torch
from torch import nn

from brevitas.core.bit_width import BitWidthImplType
from brevitas.core.quant import QuantType
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.inject import ExtendedInjector
from brevitas.nn import QuantIdentity
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from dependencies import value

INPUT_BITS = 8
INPUT_FRAC_BITS = 7          # Q1.7: the first layer multiplies int8 values scaled by 2**-7
INPUT_SCALE = 2.0 ** -INPUT_FRAC_BITS


class CommonQuant(ExtendedInjector):
    bit_width_impl_type = BitWidthImplType.CONST
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    zero_point_impl = ZeroZeroPoint
    float_to_int_impl_type = FloatToIntImplType.ROUND
    scaling_per_output_channel = False
    narrow_range = True
    signed = True

    @value
    def quant_type(bit_width):
        if bit_width is None:
            return QuantType.FP
        if bit_width == 1:
            return QuantType.BINARY
        return QuantType.INT


class BinaryWeightQuant(CommonQuant, WeightQuantSolver):
    """±1 weights (scale 1.0): ``sign(w)`` with ``sign(0) = +1``."""
    scaling_const = 1.0


class ActQuant(CommonQuant, ActQuantSolver):
    """Activations in [-1, 1]: with ``bit_width=1`` ±1 (scale 1.0) with the clamped-STE (hardtanh)
    gradient; with more bits a signed integer grid (the input quantizer below)."""
    min_val = -1.0
    max_val = 1.0


def binary_act():
    """A 1-bit sign activation module."""
    return QuantIdentity(act_quant=ActQuant, bit_width=1)


class InputQuant(nn.Module):
    """Pixels ``x = p/255`` in [0, 1] → ``2x − 1`` → Q1.7 (8-bit, scale 2**-7), as Brevitas CNV."""

    def __init__(self):
        super().__init__()
        self.quant = QuantIdentity(act_quant=ActQuant, bit_width=INPUT_BITS,
                                   min_val=-1.0, max_val=1.0 - INPUT_SCALE, narrow_range=False,
                                   restrict_scaling_type=RestrictValueType.POWER_OF_TWO)

    def forward(self, x):
        return self.quant(2.0 * x - 1.0)


class FloatInput(nn.Module):
    """The full-precision baselines' input: ``2x − 1`` without quantization."""

    def forward(self, x):
        return 2.0 * x - 1.0


def pixels_to_input(images):
    """uint8 images ``[N, H, W, C]`` (numpy or tensor) → float tensor ``[N, C, H, W]`` of ``p/255``."""
    images = torch.as_tensor(images)
    return images.permute(0, 3, 1, 2).float().div_(255.0)
