"""Binarized networks by name (a registry), in Brevitas, and the same topologies in full precision.

Every network takes pixels ``x = p/255`` as a float tensor ``[N, C, H, W]`` (``model.quant.
pixels_to_input`` makes one from uint8 HWC images) and returns ``[N, classes]`` scores.

A binarized network (``precision="binary"``) is an 8-bit input quantizer (Q1.7, see ``model/quant``)
followed by blocks:

- ``ConvBlock``: optional constant padding (−1 for binary input, 0 for the 8-bit first layer),
  an unpadded 3x3 ``QuantConv2d`` with ±1 weights and no bias, ``BatchNorm2d``, 1-bit sign.
- ``PoolBlock``: ``MaxPool2d`` on ±1 values (an OR of bits), after the activation.
- ``DenseBlock``: flatten (PyTorch's CHW order; the exporter permutes to HWC), ``QuantLinear``
  with ±1 weights and no bias, ``BatchNorm1d`` and sign; the last one ends in ``TensorNorm``
  (one positive scalar scale and a bias: it does not change the argmax) and gives the scores.

``precision="fp32"`` builds the same topology with float ``Conv2d``/``Linear``, zero padding,
ReLU instead of sign and no input quantization: the full-precision baseline (not exportable).
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from brevitas.nn import QuantConv2d, QuantLinear

from model.quant import BinaryWeightQuant, FloatInput, InputQuant, binary_act

PRECISIONS = ("binary", "fp32")
BN_EPS = 1e-4
DATASET_SHAPES = {"cifar10": (32, 32, 3), "mnist": (28, 28, 1)}


class ArchError(ValueError):
    """An unknown architecture or precision, or one that does not fit the input shape."""


@dataclass(frozen=True)
class Arch:
    """A topology: ``layers`` of ``("conv", out_channels, pad)``, ``("pool", kernel)`` and
    ``("dense", out_features)``; the last dense layer (``classes`` outputs) is appended."""
    name: str
    dataset: str
    layers: tuple
    description: str
    dropout: float = 0.0          # after hidden dense activations and on the input (Brevitas FC)
    aliases: tuple = field(default=())


def _vgg16_layers():
    layers = []
    for channels, count in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        layers += [("conv", channels, 1)] * count + [("pool", 2)]
    return tuple(layers) + (("dense", 1024),)


ARCHS = {arch.name: arch for arch in [
    Arch("cnv", "cifar10",
         (("conv", 64, 0), ("conv", 64, 0), ("pool", 2), ("conv", 128, 0), ("conv", 128, 0),
          ("pool", 2), ("conv", 256, 0), ("conv", 256, 0), ("dense", 512), ("dense", 512)),
         "CNV-W1A1 (FINN/Brevitas BNN-PYNQ): 6 unpadded 3x3 convs, 2 max-pools, FC 512, 512, classes"),
    Arch("cnv-small", "cifar10",
         (("conv", 16, 0), ("conv", 16, 0), ("pool", 2), ("conv", 32, 0), ("conv", 32, 0),
          ("pool", 2), ("conv", 64, 0), ("conv", 64, 0), ("dense", 128), ("dense", 128)),
         "CNV at a quarter of its width (16, 16, 32, 32, 64, 64; FC 128, 128): trains on a CPU"),
    Arch("vgg16", "cifar10", _vgg16_layers(),
         "B-VGG16: 13 padded 3x3 convs (2x64, 2x128, 3x256, 3x512, 3x512), a max-pool after "
         "each stack, FC 1024, classes"),
    Arch("sfc", "mnist", (("dense", 256),) * 3,
         "SFC (BNN-PYNQ): MLP 256x3 hidden, 8-bit input", dropout=0.2),
    Arch("lfc", "mnist", (("dense", 1024),) * 3,
         "LFC (BNN-PYNQ): MLP 1024x3 hidden, 8-bit input", dropout=0.2),
    Arch("tiny-cnv", "cifar10", (("conv", 16, 0), ("pool", 2), ("conv", 32, 0), ("pool", 2)),
         "tiny CNV for tests: conv 16, pool, conv 32, pool, dense classes"),
    Arch("tiny-mlp", "mnist", (("dense", 64), ("dense", 32)),
         "tiny MLP for tests: dense 64, 32, classes"),
]}


def get_arch(name):
    """The ``Arch`` called ``name``; an unknown name raises ``ArchError`` listing the accepted ones."""
    if name not in ARCHS:
        raise ArchError(f"unknown architecture {name!r}; accepted: {', '.join(ARCHS)}")
    return ARCHS[name]


class TensorNorm(nn.Module):
    """Brevitas' ``TensorNorm``: one batch-norm over the whole tensor (scalar mean, var, weight,
    bias). With a positive weight it is a positive affine map of the scores: argmax unchanged."""

    def __init__(self, eps=BN_EPS, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))

    def forward(self, x):
        if self.training:
            mean, biased_var = x.mean(), x.var(unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * x.var(unbiased=True))
            return (x - mean) / (biased_var + self.eps).sqrt() * self.weight + self.bias
        return (x - self.running_mean) / (self.running_var + self.eps).sqrt() * self.weight + self.bias

    def scale(self):
        """The (float) factor that multiplies the integer scores in eval mode."""
        return float(self.weight.detach() / (self.running_var.detach() + self.eps).sqrt())


class ConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels, pad, pad_value, binary):
        super().__init__()
        self.pad, self.pad_value = pad, pad_value
        self.padding = nn.ConstantPad2d(pad, pad_value) if pad else nn.Identity()
        if binary:
            self.conv = QuantConv2d(in_channels, out_channels, 3, bias=False,
                                    weight_quant=BinaryWeightQuant, weight_bit_width=1)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 3, bias=False)
        self.scale = nn.Identity()        # a positive factor on the accumulation (model.methods)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = binary_act() if binary else nn.ReLU()

    @property
    def core(self):
        return self.conv

    def forward(self, x):
        return self.act(self.bn(self.scale(self.conv(self.padding(x)))))


class PoolBlock(nn.Module):
    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel
        self.pool = nn.MaxPool2d(kernel)

    def forward(self, x):
        return self.pool(x)


class DenseBlock(nn.Module):
    def __init__(self, in_features, out_features, binary, last, dropout=0.0):
        super().__init__()
        self.last = last
        if binary:
            self.linear = QuantLinear(in_features, out_features, bias=False,
                                      weight_quant=BinaryWeightQuant, weight_bit_width=1)
        else:
            self.linear = nn.Linear(in_features, out_features, bias=False)
        self.scale = nn.Identity()
        if last:
            self.norm = TensorNorm()
            self.act = nn.Identity()
        else:
            self.norm = nn.BatchNorm1d(out_features, eps=BN_EPS)
            self.act = binary_act() if binary else nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout and not last else nn.Identity()

    @property
    def bn(self):
        return self.norm

    @property
    def core(self):
        return self.linear

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        return self.dropout(self.act(self.norm(self.scale(self.linear(x)))))


class BNN(nn.Module):
    """A network built from an ``Arch``; ``blocks`` in order, ``input`` the (quantizing) front."""

    def __init__(self, arch, input_shape, num_classes=10, precision="binary"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ArchError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
        self.arch, self.precision, self.num_classes = arch.name, precision, num_classes
        self.input_shape = tuple(input_shape)
        binary = precision == "binary"
        self.input = InputQuant() if binary else FloatInput()
        self.input_dropout = nn.Dropout(arch.dropout) if arch.dropout else nn.Identity()
        self.blocks = nn.ModuleList()
        h, w, c = self.input_shape
        flat = None                         # features once flattened
        layers = list(arch.layers) + [("dense", num_classes)]
        first = True
        for index, spec in enumerate(layers):
            where = f"architecture {arch.name!r} on input {list(self.input_shape)}, layer {index} {spec}"
            if spec[0] == "conv":
                if flat is not None:
                    raise ArchError(f"{where}: a conv cannot follow a dense layer")
                _, out_channels, pad = spec
                pad_value = 0.0 if (first or not binary) else -1.0
                self.blocks.append(ConvBlock(c, out_channels, pad, pad_value, binary))
                h, w, c = h + 2 * pad - 2, w + 2 * pad - 2, out_channels
            elif spec[0] == "pool":
                self.blocks.append(PoolBlock(spec[1]))
                h, w = h // spec[1], w // spec[1]
            else:
                in_features = flat if flat is not None else h * w * c
                last = index == len(layers) - 1
                self.blocks.append(DenseBlock(in_features, spec[1], binary, last,
                                              dropout=arch.dropout))
                flat = spec[1]
            if min(h, w) < 1:
                raise ArchError(f"{where}: the feature map shrinks to {h}x{w}; "
                                f"the input is too small for this architecture")
            first = first and spec[0] == "pool"
        if binary:
            for module in self.modules():
                if isinstance(module, (QuantConv2d, QuantLinear)):
                    nn.init.uniform_(module.weight.data, -1, 1)

    def forward(self, x):
        x = self.input_dropout(self.input(x))
        for block in self.blocks:
            x = block(x)
        return x

    def clip_weights(self, low=-1.0, high=1.0):
        """Clamp the latent float weights of binary layers (BinaryConnect), after each step."""
        if self.precision != "binary":
            return
        for module in self.modules():
            if isinstance(module, (QuantConv2d, QuantLinear)):
                module.weight.data.clamp_(low, high)


def build_model(arch, input_shape=None, num_classes=10, precision="binary"):
    """A ``BNN`` for the architecture called ``arch`` (input shape: the arch's default dataset's)."""
    spec = get_arch(arch)
    if input_shape is None:
        input_shape = DATASET_SHAPES[spec.dataset]
    return BNN(spec, input_shape, num_classes, precision)
