"""QONNX import (gen.qonnx): exact folding, refusals, the BNN-PYNQ zoo against PyTorch and qonnx,
and imported networks in Verilator."""
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from gen.qonnx_quant import Affine, fold_thresholds, round_mode, rounds_at_least, ROUNDING_MODES

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from gen import golden  # noqa: E402
from gen.ir import load_network, save_network  # noqa: E402
from gen.qonnx import QonnxImportError, import_qonnx, import_qonnx_with_facts  # noqa: E402


# ---------------------------------------------------------------- exact folding

@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_rounding_boundaries_match_numpy_on_halves_and_near_them(mode):
    grid = np.concatenate([np.arange(-16, 17) / 4, np.arange(-16, 17) / 4 + 1e-9,
                           np.arange(-16, 17) / 4 - 1e-9])
    rounded = round_mode(mode)(grid)
    for m in range(-3, 4):
        c, strict = rounds_at_least(mode, m)
        predicted = grid > float(c) if strict else grid >= float(c)
        assert (predicted == (rounded >= m)).all(), (mode, m)


def test_fold_thresholds_against_brute_force_with_batch_norm_and_ternary_levels():
    """Random per-channel chains (scale, shift, batch norm with negative and zero gammas, scale)
    and the ternary levels of every rounding mode, checked on every acc in range."""
    rng = np.random.default_rng(0)
    channels, bound = 40, 30
    f = lambda a: [Fraction(float(v)) for v in a]
    affine = Affine(f(rng.choice([0.5, 1, 2, 2 ** -7], channels)))
    affine.shift(f(rng.normal(0, 3, channels)))
    gamma = rng.normal(0, 1, channels)
    gamma[:3] = 0
    var = rng.uniform(0.5, 40, channels)
    var[3:6] = 4.0                       # sqrt(v) exact: ties at reachable accs
    affine.batch_norm(f(gamma), f(rng.normal(0, 0.5, channels)), f(rng.normal(0, 8, channels)),
                      f(var))
    affine.scale(f(rng.choice([1, -0.5, 3], channels)))
    for mode in ROUNDING_MODES:
        levels = [(Fraction(1, 2) * c, strict) for c, strict in
                  (rounds_at_least(mode, 0), rounds_at_least(mode, 1))]
        thresholds, direction, _ = fold_thresholds(affine, levels, bound)
        acc = np.arange(-bound, bound + 1)
        for c in range(channels):
            values = [(float(affine.k[c]) * a + float(affine.l[c])) / np.sqrt(float(affine.v[c]))
                      + float(affine.m[c]) for a in acc]
            counts = np.zeros(len(acc), int)
            for theta, strict in levels:
                counts += [(v > theta) if strict else (v >= theta) for v in values]
            t = thresholds[c][None, :]
            folded = ((acc[:, None] >= t) if direction[c] > 0 else (acc[:, None] <= t)).sum(1)
            near = np.array([min(abs(v - float(theta)) for theta, _ in levels) < 1e-9
                             for v in values])
            assert (folded == counts)[~near].all(), (mode, c)


# ---------------------------------------------------------------- hand-made QONNX graphs

QDOMAIN = "qonnx.custom_op.general"


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def quant(name, x, out, scale, bits, *, narrow=1, signed=1, zero=0.0):
    return ([helper.make_node("Quant", [x, f"{name}.s", f"{name}.z", f"{name}.b"], [out],
                              name=name, domain=QDOMAIN, signed=signed, narrow=narrow,
                              rounding_mode="ROUND")],
            [const(f"{name}.s", scale), const(f"{name}.z", zero), const(f"{name}.b", bits)])


def bipolar(name, x, out):
    return ([helper.make_node("BipolarQuant", [x, f"{name}.s"], [out], name=name,
                              domain=QDOMAIN)], [const(f"{name}.s", 1.0)])


def small_graph(tmp_path, *, edit=None, name="net"):
    """x [1,2,6,6] → 2x-1 → 8-bit Quant → Conv 3x3 (4) → BN → BipolarQuant → Conv 3x3 (6) → BN
    → 2-bit Quant → MaxPool 2 → Flatten → Gemm (5) → Mul 0.5 → y. ``edit(nodes, inits)``
    changes it; nodes are found by name. Returns the file's path."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Mul", ["x", "two"], ["x2"], name="mul"),
             helper.make_node("Sub", ["x2", "one"], ["x3"], name="sub")]
    inits = [const("two", 2.0), const("one", 1.0)]

    def add(pair):
        nodes.extend(pair[0])
        inits.extend(pair[1])

    add(quant("qin", "x3", "xq", 2.0 ** -7, 8, narrow=0))
    inits.append(const("w0", rng.uniform(-1, 1, (4, 2, 3, 3))))
    add(bipolar("wq0", "w0", "w0q"))
    nodes.append(helper.make_node("Conv", ["xq", "w0q"], ["c0"], name="conv0",
                                  kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[1, 1]))
    for i, c in ((0, 4), (1, 6)):
        inits += [const(f"bn{i}.g", rng.normal(0, 1, c)), const(f"bn{i}.b", rng.normal(0, 1, c)),
                  const(f"bn{i}.m", rng.normal(0, 2, c)), const(f"bn{i}.v", rng.uniform(1, 9, c))]
    nodes.append(helper.make_node("BatchNormalization", ["c0", "bn0.g", "bn0.b", "bn0.m", "bn0.v"],
                                  ["n0"], name="bn0", epsilon=1e-4))
    add(bipolar("act0", "n0", "a0"))
    inits.append(const("w1", rng.uniform(-1, 1, (6, 4, 3, 3))))
    add(bipolar("wq1", "w1", "w1q"))
    nodes.append(helper.make_node("Conv", ["a0", "w1q"], ["c1"], name="conv1",
                                  kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[1, 1]))
    nodes.append(helper.make_node("BatchNormalization", ["c1", "bn1.g", "bn1.b", "bn1.m", "bn1.v"],
                                  ["n1"], name="bn1", epsilon=1e-4))
    add(quant("act1", "n1", "a1", 1.0, 2))
    nodes.append(helper.make_node("MaxPool", ["a1"], ["p1"], name="pool", kernel_shape=[2, 2],
                                  strides=[2, 2]))
    nodes.append(helper.make_node("Flatten", ["p1"], ["f1"], name="flatten", axis=1))
    inits.append(const("w2", rng.uniform(-1, 1, (5, 6))))
    add(bipolar("wq2", "w2", "w2q"))
    nodes.append(helper.make_node("Gemm", ["f1", "w2q"], ["g2"], name="fc", transB=1))
    nodes.append(helper.make_node("Mul", ["g2", "half"], ["y"], name="scale"))
    inits.append(const("half", 0.5))
    if edit:
        edit(nodes, inits)
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(QDOMAIN, 1)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def node(nodes, name):
    return next(n for n in nodes if n.name == name)


def set_attr(n, **values):
    for key, value in values.items():
        for attribute in list(n.attribute):
            if attribute.name == key:
                n.attribute.remove(attribute)
        n.attribute.append(helper.make_attribute(key, value))


def insert_after(nodes, name, new):
    """Put node ``new`` (one input, one output) after node ``name``, rewiring its consumers."""
    old = node(nodes, name).output[0]
    for n in nodes:
        for i, x in enumerate(n.input):
            if x == old:
                n.input[i] = new.output[0]
    new.input[0] = old
    nodes.insert(nodes.index(node(nodes, name)) + 1, new)


def weight_quant_4_bits(nodes, inits):
    index = nodes.index(node(nodes, "wq1"))
    pair = quant("wq1", "w1", "w1q", 1 / 7, 4)
    nodes[index:index + 1] = pair[0]
    inits.extend(pair[1])


def residual(nodes, inits):
    nodes.append(helper.make_node("Add", ["g2", "x"], ["r"], name="skip"))


def zero_padded_binary_conv(nodes, inits):
    set_attr(node(nodes, "conv1"), pads=[1, 1, 1, 1])


def four_bit_activation(nodes, inits):
    index = nodes.index(node(nodes, "act1"))
    pair = quant("act1", "n1", "a1", 0.25, 4)
    nodes[index:index + 1] = pair[0]
    inits.extend(pair[1])


def per_class_scale(nodes, inits):
    inits[[i.name for i in inits].index("half")] = const("half", np.arange(1, 6))


REFUSALS = {
    "sigmoid": (lambda nodes, inits: insert_after(nodes, "scale", helper.make_node(
        "Sigmoid", ["?"], ["s"], name="sig")), "node 'sig' (Sigmoid)", "unsupported op here"),
    "4-bit weights": (weight_quant_4_bits, "node 'wq1' (Quant)",
                      "quantizes weights of 'conv1' to 4 bits ("),
    "strided conv": (lambda nodes, inits: set_attr(node(nodes, "conv1"), strides=[2, 2]),
                     "node 'conv1' (Conv)", "strides [2, 2] are not supported; supported: stride 1"),
    "zero padding of a binary map": (zero_padded_binary_conv, "node 'conv1' (Conv)",
                                     "pads a binary feature map with 0"),
    "4-bit activations": (four_bit_activation, "node 'act1' (Quant)",
                          "activations of 4 bits (signed, narrow range: levels -7..7)"),
    "residual": (residual, "node 'skip' (Add)", "only a chain of layers"),
    "per-class scale": (per_class_scale, "node 'scale' (Mul)", "per class"),
    "pool of the input": (lambda nodes, inits: insert_after(nodes, "qin", helper.make_node(
        "MaxPool", ["?"], ["mp"], name="inpool", kernel_shape=[2, 2], strides=[2, 2])),
        "node 'inpool' (MaxPool)", "pools the network input"),
    "pool stride": (lambda nodes, inits: set_attr(node(nodes, "pool"), strides=[1, 1]),
                    "node 'pool' (MaxPool)", "stride = kernel"),
    "grouped conv": (lambda nodes, inits: set_attr(node(nodes, "conv0"), group=2),
                     "node 'conv0' (Conv)", "supported: group 1"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unsupported_models_stop_with_one_line_naming_the_node(tmp_path, case):
    edit, where, what = REFUSALS[case]
    path = small_graph(tmp_path, edit=edit)
    with pytest.raises(QonnxImportError) as error:
        import_qonnx(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {where}: ") and what in message, message
    assert "supported" in message and "\n" not in message


def test_the_small_hand_made_graph_imports_exactly(tmp_path):
    net, facts = import_qonnx_with_facts(small_graph(tmp_path))
    assert [(layer.name, layer.kind, getattr(layer, "in_bits", None)) for layer in net.layers] == [
        ("conv0", "conv", 8), ("conv1", "conv", 1), ("pool0", "maxpool", 2), ("fc0", "dense", 2),
        ("label", "label", None)]
    assert net.layers[1].thresholds.shape == (6, 2) and facts["score_scale"] == 0.5
    # The Gemm's columns are the CHW-flattened 1x1x6 map: no permutation; conv columns (ky,kx,c).
    inits = onnx.load(str(tmp_path / "net.onnx")).graph.initializer
    w0 = numpy_helper.to_array(next(i for i in inits if i.name == "w0"))
    assert (net.layers[0].weights == (w0 >= 0).transpose(0, 2, 3, 1).reshape(4, -1)).all()


def test_command_line_refuses_with_exit_code_2_and_writes_nothing(tmp_path):
    path = small_graph(tmp_path, edit=REFUSALS["strided conv"][0])
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "gen", "build", "--model", str(path), "--out",
                          str(out)], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr
    assert "node 'conv1' (Conv): strides [2, 2]" in run.stderr and not out.exists()
    run = subprocess.run([sys.executable, "-m", "gen", "report", "--model",
                          str(tmp_path / "absent.onnx")], capture_output=True, text=True)
    assert run.returncode == 2 and "no such QONNX file" in run.stderr


# ---------------------------------------------------------------- the BNN-PYNQ zoo

zoo = pytest.importorskip("sim.qonnx_zoo")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Zoo net name → (QONNX path, PyTorch model), each exported once per test module."""
    pytest.importorskip("torch")
    pytest.importorskip("brevitas_examples")
    pytest.importorskip("qonnx")
    directory = tmp_path_factory.mktemp("zoo")
    cache = {}

    def get(name):
        if name not in cache:
            path = directory / f"{name}.onnx"
            if name.startswith("small"):
                model = zoo.export_model(zoo.small_ternary_cnv(), path, (3, 12, 12), seed=3,
                                         torchscript=name == "small-torchscript")
            else:
                # sfc's final TensorNorm gets a negative scale: the importer negates the weights.
                model = zoo.export_zoo_net(name, path, seed=1, negative_final=name == "sfc_1w1a")
            cache[name] = path, model
        return cache[name]

    return get


def input_shape(name):
    return (3, 12, 12) if name.startswith("small") else zoo.zoo_input_shape(name)


# "small-torchscript": exported by PyTorch's older exporter (Shape/Gather/Concat computing the
# Reshape target, Pad sizes from ConstantOfShape/Slice, Transpose + MatMul for Linear).
@pytest.mark.parametrize("name", list(zoo.ZOO) + ["small", "small-torchscript"])
def test_zoo_nets_agree_with_pytorch_and_qonnx(exported, tmp_path, name):
    path, model = exported(name)
    net, facts = import_qonnx_with_facts(path)
    again = load_network(save_network(net, tmp_path / f"{name}.json"))  # a valid network file
    c, h, w = input_shape(name)
    count = 16 if name.startswith("cnv") else 64
    images = np.random.default_rng(2).integers(0, 256, (count, h, w, c))
    agree, error = zoo.compare(again, facts, images, zoo.torch_scores(model, images))
    assert agree == count and error < 1e-5
    few = images[:2 if name.startswith("cnv") else 6]
    agree, error = zoo.compare(again, facts, few, zoo.qonnx_scores(path, few))
    assert agree == len(few) and error < 1e-5
    # Every activation level occurs, so the comparison sees every threshold at work.
    result = golden.execute(again, images, keep_layers=True)
    for layer, out in zip(again.layers, result.layer_outputs):
        if getattr(layer, "output", None) == "threshold":
            levels = layer.thresholds.shape[1] + 1
            share = np.bincount(out.reshape(-1), minlength=levels) / out.size
            assert share.min() > 0.02, (layer.name, share)
    assert facts["score_sign"] == (-1 if name == "sfc_1w1a" else 1)
    kinds = {"1w1a": 1, "1w2a": 2}
    if name in ("cnv_1w1a", "cnv_1w2a"):
        assert all(layer.in_bits in (8, kinds[name[-4:]]) for layer in again.compute_layers)
        assert (again.input.table == np.clip(np.round((2 * np.arange(256) / 255 - 1) * 128),
                                             -128, 127)).all()
    if name.startswith(("tfc", "sfc", "lfc")):
        expected = {"1w1a": [-1] * 128 + [1] * 128, "1w2a": [-1] * 64 + [0] * 128 + [1] * 64}
        assert again.input.table.tolist() == expected[name[-4:]]  # p >= 128 <=> 2p/255 - 1 >= 0


def test_thresholds_equal_the_exporters_exact_fold(exported):
    """Binary layers of tfc_1w1a: the same thresholds as model.export.fold_threshold computes from
    the PyTorch batch norms (same exact arithmetic, reached through ONNX)."""
    from model.export import fold_threshold

    path, model = exported("tfc_1w1a")
    net = import_qonnx(path)
    norms = [m for m in model.modules() if type(m).__name__ == "BatchNorm1d"]
    for layer, bn in zip(net.compute_layers, norms):
        bound = layer.mw
        for c in range(layer.mh):
            t, d, _ = fold_threshold(*(float(p.detach()[c]) for p in (bn.weight, bn.bias,
                                                                    bn.running_mean, bn.running_var)),
                                     float(np.float32(bn.eps)), 1.0, bound)
            assert d == layer.direction[c]
            if abs(t) <= bound:
                assert t == layer.thresholds[c, 0], (layer.name, c)


def test_pixel_divisor_sets_what_raw_bytes_mean(exported):
    path, _ = exported("tfc_1w1a")
    assert import_qonnx(path, pixel_divisor=1).input.table.tolist() == [-1] + [1] * 255


# ---------------------------------------------------------------- imported networks in Verilator

def test_tfc_1w1a_through_the_command_line_simulation(exported, tmp_path):
    path, _ = exported("tfc_1w1a")
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"layers": {name: {"pe": pe, "simd": simd} for name, (pe, simd)
                                           in zoo.FOLDS["tfc_1w1a"].items()}}))
    run = subprocess.run([sys.executable, "-m", "gen", "sim", "--model", str(path), "--fold",
                          str(fold), "--images", "5", "--stall", "0.2"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "classes: 5/5 match" in run.stdout and "scores:  5/5 match" in run.stdout


def test_model_eval_scores_an_imported_qonnx_model(exported, tmp_path, capsys):
    """``model.eval --model net.onnx``: the golden executor's accuracy of the imported model,
    the figure the hardware would reach."""
    from model import eval as model_eval
    from tests.test_model_train import _mnist_idx

    path, _ = exported("tfc_1w1a")
    data = _mnist_idx(tmp_path / "mnist")
    assert model_eval.main(["--model", str(path), "--dataset", "mnist", "--data", str(data)]) == 0
    line = capsys.readouterr().out.strip()
    assert "golden executor on" in line and "mnist test images" in line and "top-1" in line


def test_small_ternary_cnv_is_bit_exact_in_verilator(exported, tmp_path):
    from gen.fold import LayerFold
    from tests.test_network_sim import check

    path, _ = exported("small")
    net = import_qonnx(path)
    fold = {"conv0": LayerFold(pe=4, simd=3), "conv1": LayerFold(pe=4, simd=8),
            "conv2": LayerFold(pe=6, simd=4), "fc0": LayerFold(pe=4, simd=12),
            "fc1": LayerFold(pe=5, simd=16)}
    images = np.random.default_rng(4).integers(0, 256, (6, 12, 12, 3))
    check(net, fold, images, tmp_path, valid_probability=0.7, ready_probability=0.6)
