"""Export of trained models: exact thresholds, weight order, golden executor == PyTorch."""
import math
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from gen import golden                                            # noqa: E402
from gen.ir import load_network                                   # noqa: E402
from gen.networks import cifar_input_table                        # noqa: E402
from model.export import ExportError, export_network, fold_threshold  # noqa: E402
from model.nets import ArchError, DenseBlock, build_model         # noqa: E402
from model.quant import pixels_to_input                           # noqa: E402


def randomize_bn(model, seed, *, ties=False):
    """Random running stats and affine parameters: negative and zero gammas (with positive,
    negative and zero betas). ``ties``: some channels with beta = 0 and an integer mean, where
    the exact pre-activation is 0 for acc = mean."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 12)
            m.running_var.copy_(torch.rand(c, generator=g) * 40 + 0.05)
            gamma = torch.randn(c, generator=g)
            gamma[1::4] = -gamma[1::4].abs()
            gamma[::9] = 0.0
            beta = torch.randn(c, generator=g)
            beta[9::27] = 0.0
            beta[18::27] = -beta[18::27].abs()
            if ties:
                beta[2::5] = 0.0
                m.running_mean[2::5] = torch.round(m.running_mean[2::5])
            m.weight.data.copy_(gamma)
            m.bias.data.copy_(beta)


def random_images(model, n, seed=0):
    h, w, c = model.input_shape
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c)).astype(np.uint8)


def torch_outputs(model, images):
    """(last layer's float accumulation, logits) of the PyTorch model in eval mode."""
    last = model.blocks[-1]
    captured = {}
    hook = last.linear.register_forward_hook(lambda m, i, o: captured.__setitem__("acc", o))
    with torch.no_grad():
        logits = model(pixels_to_input(images))
    hook.remove()
    return captured["acc"].double().numpy(), logits.double().numpy()


# ---------------------------------------------------------------- exact thresholds

def _decimal_bit(gamma, beta, mean, var, eps, scale, acc):
    """sign(BN(scale*acc)) >= 0 evaluated with 60 significant digits."""
    getcontext().prec = 60
    d = lambda x: Decimal(Fraction(x).numerator) / Decimal(Fraction(x).denominator)
    y = d(gamma) * (d(scale) * acc - d(mean)) / (d(var) + d(eps)).sqrt() + d(beta)
    return y, y >= 0


def test_fold_threshold_matches_high_precision_on_every_acc():
    rng = np.random.default_rng(1)
    for trial in range(60):
        scale = 2.0 ** -7 if trial % 2 else 1.0
        bound = 40 if scale == 1.0 else 40 * 128
        gamma = float(np.float32(rng.normal() * (0 if trial % 11 == 0 else 1)))
        beta, mean = float(np.float32(rng.normal())), float(np.float32(rng.normal() * 10 * bound / 40))
        var = float(np.float32(rng.uniform(0.01, 30)))
        t, direction, tie = fold_threshold(gamma, beta, mean, var, 1e-4, scale, bound)
        for acc in range(-bound, bound + 1, 1 if scale == 1.0 else 37):
            y, bit = _decimal_bit(gamma, beta, mean, var, 1e-4, scale, acc)
            ours = acc >= t if direction > 0 else acc <= t
            assert ours == bit, (trial, acc, t, direction, y)


@pytest.mark.parametrize("gamma", [0.75, -0.75])
def test_fold_threshold_exact_tie_is_plus_one(gamma):
    # beta = 0 and an integer mean: the pre-activation is exactly 0 at acc = 5; sign(0) = +1.
    t, direction, tie = fold_threshold(gamma, 0.0, 5.0, 3.0, 1e-4, 1.0, 100)
    assert tie == 5 and t == 5 and direction == (1 if gamma > 0 else -1)
    # the 8-bit first layer: acc is in units of 2**-7
    t, direction, tie = fold_threshold(gamma, 0.0, 0.5, 3.0, 1e-4, 2.0 ** -7, 10_000)
    assert tie == 64 and t == 64


def test_fold_threshold_constant_channels():
    assert fold_threshold(0.0, 0.5, 3.0, 1.0, 1e-4, 1.0, 10)[:2] == (-11, 1)      # always +1
    assert fold_threshold(0.0, -0.5, 3.0, 1.0, 1e-4, 1.0, 10)[:2] == (11, 1)      # always -1
    assert fold_threshold(0.0, 0.0, 3.0, 1.0, 1e-4, 1.0, 10) == (-11, 1, "all")  # 0 → +1
    # a tiny gamma puts the threshold far out of range: clamped, still constant
    t, d, _ = fold_threshold(1e-30, 1.0, 0.0, 1.0, 1e-4, 1.0, 10)
    assert (t, d) == (-11, 1)


# ---------------------------------------------------------------- golden == PyTorch

def test_input_quantizer_is_the_table():
    model = build_model("tiny-cnv").eval()
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 256, 1)
    with torch.no_grad():
        values = model.input(pixels_to_input(pixels)).reshape(-1).double().numpy() * 128
    assert np.array_equal(values, cifar_input_table())
    exact = [min(127, max(-128, round(Fraction(2 * p, 255) * 128 - 128))) for p in range(256)]
    assert np.array_equal(cifar_input_table(), exact)     # Python's round is half-to-even too


@pytest.mark.parametrize("arch,final_sign", [("tiny-cnv", 1), ("tiny-mlp", 1), ("tiny-cnv", -1)])
def test_export_matches_torch(tmp_path, arch, final_sign):
    torch.manual_seed(3)
    model = build_model(arch)
    randomize_bn(model, seed=4)
    norm = model.blocks[-1].norm
    norm.weight.data.fill_(0.37 * final_sign)
    norm.bias.data.fill_(-1.5)
    norm.running_mean.fill_(2.25)
    norm.running_var.fill_(7.0)
    model.eval()
    images = random_images(model, 200)
    net, report = export_network(model, tmp_path / f"{arch}.json", check_images=images)
    check = report["check"]
    assert check["agree"] == check["images"] == 200
    assert check["bit_mismatches"] == 0 and check["acc_mismatches"] == 0
    assert report["constant_channels"] > 0 and report["negative_directions"] > 0
    assert report["score_sign"] == final_sign

    loaded = load_network(tmp_path / f"{arch}.json")
    result = golden.execute(loaded, images)
    acc, logits = torch_outputs(model, images)
    # integer scores equal the model's last accumulation (up to the folded final sign) ...
    assert np.array_equal(result.scores, final_sign * acc)
    # ... and the logits are a positive affine map of them: same ranks, same argmax
    a, b = report["score_scale"], report["score_offset"]
    assert a > 0 and np.allclose(a * result.scores + b, logits, rtol=1e-5, atol=1e-4)
    assert np.array_equal(result.labels[:, 0], logits.argmax(1))
    ranks = golden.top_k(result.scores, result.scores.shape[1])
    for row, order in enumerate(ranks):
        assert np.all(np.diff(logits[row][order]) <= 0)


def test_export_counts_exact_ties(tmp_path):
    torch.manual_seed(5)
    model = build_model("tiny-mlp")
    randomize_bn(model, seed=6, ties=True)
    images = random_images(model, 100, seed=2)
    _, report = export_network(model, None, check_images=images)
    check = report["check"]
    assert report["tie_channels"] > 0 and check["exact_ties"] > 0
    # float32 batch norm may round an exact 0 either way; every difference must be at a tie
    for stats in check["per_layer"].values():
        if stats["acc_mismatches"] == 0:
            assert stats["bit_mismatches"] == stats["bit_mismatches_at_ties"]


def test_dense_after_conv_is_hwc_ordered():
    torch.manual_seed(7)
    model = build_model("tiny-cnv").eval()
    net, _ = export_network(model)
    fc = net.layer("fc0")
    h, w, c = fc.in_shape
    torch_bits = (model.blocks[-1].linear.quant_weight().value.detach().numpy() > 0).astype(np.uint8)
    o, y, x, ch = 3, 2, 4, 5
    assert fc.weights[o, (y * w + x) * c + ch] == torch_bits[o, ch * h * w + y * w + x]
    conv = net.layer("conv0")
    conv_bits = (model.blocks[0].conv.quant_weight().value.detach().numpy() > 0).astype(np.uint8)
    ky, kx, ci = 1, 2, 2
    assert conv.weights[o, (ky * 3 + kx) * 3 + ci] == conv_bits[o, ci, ky, kx]


@pytest.mark.parametrize("arch,shapes", [
    ("cnv", [(30, 30, 64), (28, 28, 64), (14, 14, 64), (12, 12, 128), (10, 10, 128), (5, 5, 128),
             (3, 3, 256), (1, 1, 256), (512,), (512,), (10,), (1,)]),
    ("vgg16", [(32, 32, 64), (32, 32, 64), (16, 16, 64), (16, 16, 128), (16, 16, 128), (8, 8, 128)]
     + [(8, 8, 256)] * 3 + [(4, 4, 256)] + [(4, 4, 512)] * 3 + [(2, 2, 512)] + [(2, 2, 512)] * 3
     + [(1, 1, 512), (1024,), (10,), (1,)]),
])
def test_full_size_export_shapes(tmp_path, arch, shapes):
    torch.manual_seed(8)
    model = build_model(arch)
    randomize_bn(model, seed=9)
    images = random_images(model, 2, seed=3)
    net, report = export_network(model, tmp_path / f"{arch}.json", check_images=images)
    assert [layer.out_shape for layer in net.layers] == shapes
    assert net.layers[0].in_bits == 8 and all(l.in_bits == 1 for l in net.compute_layers[1:])
    if arch == "vgg16":
        assert net.layers[0].pad == 1 and net.layers[0].pad_value == 0
        assert all(l.pad == 1 for l in net.compute_layers if l.kind == "conv")
    loaded = load_network(tmp_path / f"{arch}.json")
    assert [l.out_shape for l in loaded.layers] == shapes
    assert report["check"]["agree"] == 2 and report["check"]["acc_mismatches"] == 0


def test_fp32_and_unknown_arch_refused():
    with pytest.raises(ExportError, match="only binary"):
        export_network(build_model("tiny-mlp", precision="fp32"))
    with pytest.raises(ArchError, match="accepted: cnv, cnv-small, vgg16, sfc, lfc, tiny-cnv, tiny-mlp"):
        build_model("resnet")
    with pytest.raises(ArchError, match="too small"):
        build_model("vgg16", (28, 28, 1))
    assert isinstance(build_model("sfc").blocks[-1], DenseBlock)
    assert math.isclose(sum(p.numel() for p in build_model("cnv").parameters()), 1546690)
