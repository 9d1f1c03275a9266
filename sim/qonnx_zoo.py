"""Brevitas' BNN-PYNQ zoo (random weights, randomized batch norms) through QONNX to the RTL.

    python -m sim.qonnx_zoo                          # every net, 2 images each through Verilator
    python -m sim.qonnx_zoo tfc_1w1a sfc_1w1a --images 8 --check-images 64

For each net: build it with ``brevitas_examples.bnn_pynq.models.model_with_cfg(name, False)`` (no
download), give every batch norm random statistics and affine parameters calibrated on random
images (so that every activation level occurs; 30% of the scales negative) and the final
TensorNorm a random scale and offset, export it with ``brevitas.export.export_qonnx``, import it
with ``gen.qonnx``, compare the golden executor with PyTorch and with ``qonnx``'s own executor
(classes, and scores up to the final scale), then simulate the accelerator in Verilator against
the golden executor. Needs the ``train`` extra (torch, brevitas, onnx, qonnx).
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np

ZOO = ("tfc_1w1a", "tfc_1w2a", "sfc_1w1a", "lfc_1w1a", "cnv_1w1a", "cnv_1w2a")

# Folds for simulation: a few hundred PE*SIMD lanes per net keep Verilator's C++ compile short
# (it grows with the lanes: sfc at 3,800 lanes took 13 minutes on a loaded 2-core machine),
# while a few frames of even 226,000 cycles simulate in seconds.
FOLDS = {
    "tfc_1w1a": {"fc0": (4, 49), "fc1": (4, 16), "fc2": (4, 16), "fc3": (5, 16)},
    "sfc_1w1a": {"fc0": (4, 56), "fc1": (4, 32), "fc2": (4, 32), "fc3": (2, 32)},
    "lfc_1w1a": {"fc0": (4, 56), "fc1": (4, 64), "fc2": (4, 64), "fc3": (2, 64)},
    "cnv_1w1a": {"conv0": (4, 3), "conv1": (8, 16), "conv2": (8, 16), "conv3": (8, 32),
                 "conv4": (4, 32), "conv5": (2, 32), "fc0": (2, 8), "fc1": (2, 16), "fc2": (1, 16)},
}
# FINN's published CNV-W1A1 folding (32,768 cycles per frame), for builds: 2,300 lanes.
FINN_CNV_FOLD = {"conv0": (16, 3), "conv1": (32, 32), "conv2": (16, 32), "conv3": (16, 32),
                 "conv4": (4, 32), "conv5": (1, 32), "fc0": (1, 4), "fc1": (1, 8), "fc2": (5, 1)}
FOLDS["cnv_1w2a"] = FOLDS["cnv_1w1a"]
FOLDS["tfc_1w2a"] = FOLDS["tfc_1w1a"]


def zoo_input_shape(name):
    """``(C, H, W)`` of a zoo net's input: CIFAR-10 for CNV, MNIST for the MLPs."""
    return (3, 32, 32) if name.startswith("cnv") else (1, 28, 28)


def images_to_input(images):
    """Raw HWC bytes ``[N, H, W, C]`` → the float model input ``x = p / 255`` (``[N, C, H, W]``)."""
    import torch

    return torch.from_numpy(np.asarray(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255


def randomize_batch_norms(model, x, seed, *, negative_final=False):
    """Random running statistics and affine parameters for every batch norm of ``model``.

    Each one in turn (the earlier ones already randomized) sees its input on ``x``: its mean is
    the batch mean plus noise (0.3 standard deviations), its variance the batch variance times
    0.5..2; 30% of the scales are negative, biases are N(0, 0.5). A ``TensorNorm`` gets a random
    scale (negative with ``negative_final``), offset and statistics.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=generator)
    randn = lambda *shape: torch.randn(*shape, generator=generator)
    model.eval()
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            seen = {}
            hook = module.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0]))
            with torch.no_grad():
                model(x)
            hook.remove()
            c = module.num_features
            values = seen["x"].transpose(0, 1).reshape(c, -1).double()
            module.running_mean.copy_(values.mean(1) + randn(c) * values.std(1) * 0.3)
            module.running_var.copy_(values.var(1) * (0.5 + 1.5 * rand(c)) + 1e-3)
            module.weight.data.copy_(torch.where(rand(c) < 0.3, -1.0, 1.0) * (0.3 + rand(c)))
            module.bias.data.copy_(randn(c) * 0.5)
        elif type(module).__name__ == "TensorNorm":
            module.weight.data.fill_((-1 if negative_final else 1) * (0.5 + float(rand(1))))
            module.bias.data.fill_(float(randn(1)))
            module.running_mean.fill_(float(randn(1)))
            module.running_var.fill_(0.5 + float(rand(1)))
    return model


def export_zoo_net(name, path, *, seed=0, calibration_images=64, negative_final=False):
    """Build zoo net ``name`` (random weights, seeded), randomize its batch norms, export QONNX
    to ``path``; returns the (eval-mode) PyTorch model."""
    import torch
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, False)
    return export_model(model, path, zoo_input_shape(name), seed=seed,
                        calibration_images=calibration_images, negative_final=negative_final)


def export_model(model, path, input_shape, *, seed=0, calibration_images=64, negative_final=False,
                 torchscript=False):
    """Randomize ``model``'s batch norms on random images and export it as QONNX to ``path``
    (with PyTorch's TorchScript exporter, as older Brevitas releases did, if ``torchscript``;
    else with the default one, ``torch.export``)."""
    import torch
    from brevitas.export import export_qonnx

    c, h, w = input_shape
    images = np.random.default_rng(seed).integers(0, 256, (calibration_images, h, w, c))
    randomize_batch_norms(model, images_to_input(images), seed, negative_final=negative_final)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {"dynamo": False} if torchscript else {}
        export_qonnx(model, torch.rand((1,) + tuple(input_shape)), str(path), **options)
    return model


def small_ternary_cnv():
    """A toy net in cnv_1w2a's style (its quantizers and TensorNorm from ``brevitas_examples``),
    ``[N, 3, 12, 12]`` → 10 scores, that also covers what the zoo does not: a zero-padded first
    conv, ``ConstantPad2d(1, -1)`` before a conv on a ternary map, a binary (1-bit) layer between
    ternary ones, max-pools of ternary maps, a Linear after a 2x2 map (CHW vs HWC order) and a
    2-bit dense activation."""
    import torch
    from torch import nn
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    def act(bits):
        return QuantIdentity(act_quant=CommonActQuant, bit_width=bits)

    def conv(c_in, c_out, padding=0):
        return QuantConv2d(c_in, c_out, 3, padding=padding, bias=False,
                           weight_quant=CommonWeightQuant, weight_bit_width=1)

    class SmallTernaryCNV(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                QuantIdentity(act_quant=CommonActQuant, bit_width=8, min_val=-1.0,
                              max_val=1.0 - 2.0 ** -7, narrow_range=False,
                              restrict_scaling_type=RestrictValueType.POWER_OF_TWO),
                conv(3, 8, padding=1), nn.BatchNorm2d(8, eps=1e-4), act(2), nn.MaxPool2d(2),
                nn.ConstantPad2d(1, -1.0), conv(8, 8), nn.BatchNorm2d(8, eps=1e-4), act(1),
                conv(8, 12), nn.BatchNorm2d(12, eps=1e-4), act(2), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(
                QuantLinear(48, 16, bias=False, weight_quant=CommonWeightQuant,
                            weight_bit_width=1),
                nn.BatchNorm1d(16, eps=1e-4), act(2),
                QuantLinear(16, 10, bias=False, weight_quant=CommonWeightQuant,
                            weight_bit_width=1),
                TensorNorm())
            for module in self.modules():
                if isinstance(module, (QuantConv2d, QuantLinear)):
                    nn.init.uniform_(module.weight.data, -1, 1)

        def forward(self, x):
            x = self.features(2.0 * x - torch.tensor([1.0], device=x.device))
            return self.classifier(x.reshape(x.shape[0], -1))

    return SmallTernaryCNV()


def torch_scores(model, images):
    """The PyTorch model's outputs on raw HWC byte images (float64 numpy)."""
    import torch

    with torch.no_grad():
        return model(images_to_input(images)).double().numpy()


def qonnx_scores(path, images):
    """The QONNX model executed by ``qonnx.core.onnx_exec.execute_onnx``, one image at a time
    (after qonnx's shape inference, which TorchScript exports need).

    qonnx builds a one-node model per node with onnx's newest IR version, which onnxruntime may
    not read yet (onnx 1.23 writes IR 14, onnxruntime 1.31 reads up to 13): those are written
    with IR version 10 (opset 20's), the model itself is unchanged.
    """
    import qonnx.core.onnx_exec as onnx_exec
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    make_model = onnx_exec.qonnx_make_model

    def make_readable_model(graph, **kwargs):
        model = make_model(graph, **kwargs)
        model.ir_version = min(model.ir_version, 10)
        return model

    model = ModelWrapper(str(path)).transform(InferShapes())  # qonnx wants every shape known
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    x = images_to_input(images).numpy()
    onnx_exec.qonnx_make_model = make_readable_model
    try:
        with warnings.catch_warnings():
            # A TorchScript export's batch axis is symbolic: qonnx then warns that the executed
            # batch of 1 differs from the inferred size 0.
            warnings.filterwarnings("ignore", "Output shapes disagree")
            return np.concatenate([onnx_exec.execute_onnx(model, {name_in: x[i:i + 1]})[name_out]
                                   for i in range(len(x))]).astype(np.float64)
    finally:
        onnx_exec.qonnx_make_model = make_model


def compare(net, facts, images, reference):
    """``(classes agreeing, max |reference - (scale * scores + offset)| / max |reference|)``."""
    from gen import golden

    result = golden.execute(net, images)
    fitted = facts["score_scale"] * result.scores + facts["score_offset"]
    agree = int((result.labels[:, 0] == reference.argmax(axis=1)).sum())
    error = float(np.abs(fitted - reference).max() / max(1e-12, np.abs(reference).max()))
    return agree, error


def fold_of(name, net):
    from gen.fold import LayerFold, default_fold

    fold = default_fold(net)
    for layer, (pe, simd) in FOLDS.get(name, {}).items():
        fold[layer] = LayerFold(pe=pe, simd=simd, fifo_depth=fold[layer].fifo_depth)
    return fold


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.qonnx_zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"zoo nets (default: all of {', '.join(ZOO)})")
    parser.add_argument("--images", type=int, default=2, help="images through Verilator")
    parser.add_argument("--check-images", type=int, default=32,
                        help="images for golden vs PyTorch (and a quarter of them vs qonnx)")
    parser.add_argument("--dir", default="build/qonnx-zoo", help="where the .onnx files go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(ZOO))
    if unknown:
        parser.error(f"unknown zoo nets {unknown}; accepted: {', '.join(ZOO)}")

    from gen.qonnx import import_qonnx_with_facts
    from sim.network import simulate_network

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    ok = True
    for name in args.names or ZOO:
        path = directory / f"{name}.onnx"
        start = time.monotonic()
        model = export_zoo_net(name, path, seed=args.seed)
        exported = time.monotonic()
        net, facts = import_qonnx_with_facts(path)
        imported = time.monotonic()
        c, h, w = zoo_input_shape(name)
        rng = np.random.default_rng(args.seed + 1)
        images = rng.integers(0, 256, (args.check_images, h, w, c))
        torch_agree, torch_error = compare(net, facts, images, torch_scores(model, images))
        few = images[:max(1, args.check_images // 4)]
        qonnx_agree, qonnx_error = compare(net, facts, few, qonnx_scores(path, few))
        checked = time.monotonic()
        fold = fold_of(name, net)
        result = simulate_network(net, fold, images[:args.images])
        simulated = time.monotonic()
        print(f"{name}: export {exported - start:.1f} s, import {imported - exported:.1f} s "
              f"({facts['ties']} exact ties); golden vs PyTorch {torch_agree}/{len(images)} classes "
              f"(scores within {torch_error:.1e} relative), vs qonnx {qonnx_agree}/{len(few)} "
              f"(within {qonnx_error:.1e}) in {checked - imported:.1f} s; Verilator "
              f"{result.labels_matching}/{result.images} classes, {result.scores_matching}/"
              f"{result.images} scores match golden, interval {result.expected_interval} cycles, "
              f"{simulated - checked:.1f} s")
        ok &= (torch_agree == len(images) and qonnx_agree == len(few)
               and result.labels_matching == result.scores_matching == result.images)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
