"""Training methods (model.methods): each trains a few steps, exports, and the golden executor
gives PyTorch's predictions; the UBQ annealing and freezing, XNOR's α on ties, dual-path ternary
thresholds, resume, and the one-line refusal of an unknown method."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from gen import golden                                                   # noqa: E402
from gen.ir import load_network                                          # noqa: E402
from model import train                                                  # noqa: E402
from model.export import export_network, fold_threshold                  # noqa: E402
from model.layers import FrozenThresholds, TernaryAct, UncertainSign     # noqa: E402
from model.methods import (METHODS, MethodError, Ubq, freeze, get_method,  # noqa: E402
                           thresholded_blocks)
from model.nets import build_model                                       # noqa: E402
from model.quant import pixels_to_input                                  # noqa: E402
from tests.test_model_export import random_images, randomize_bn          # noqa: E402
from tests.test_model_train import ROOT, _mnist_idx                      # noqa: E402


def trained(arch, method, steps=12, seed=0):
    """A model of ``arch`` prepared by ``method`` and trained ``steps`` Adam steps on random data."""
    torch.manual_seed(seed)
    model = build_model(arch)
    method = get_method(method)
    method.prepare(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    images = random_images(model, 32, seed=seed)
    labels = torch.from_numpy(np.random.default_rng(seed).integers(0, 10, 32))
    model.train()
    for step in range(steps):
        method.on_step(model, step, steps)
        loss = torch.nn.functional.cross_entropy(model(pixels_to_input(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.clip_weights()
    return model.eval()


def assert_golden_equals_torch(model, tmp_path, n=120):
    images = random_images(model, n, seed=9)
    net, report = export_network(model, tmp_path / "net.json", check_images=images)
    check = report["check"]
    assert check["agree"] == n and check["acc_mismatches"] == 0
    assert check["bit_mismatches"] == check["bit_mismatches_at_ties"]
    with torch.no_grad():
        logits = model(pixels_to_input(images)).numpy()
    result = golden.execute(load_network(tmp_path / "net.json"), images)
    assert np.array_equal(result.labels[:, 0], logits.argmax(1))
    return net, report


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", ["tiny-mlp", "tiny-cnv"])
def test_each_method_trains_exports_and_matches_golden(tmp_path, arch, method):
    model = trained(arch, method)
    net, _ = assert_golden_equals_torch(model, tmp_path)
    thresholded = [layer for layer in net.compute_layers if layer.output == "threshold"]
    levels = 2 if method == "dualpath" else 1
    assert all(layer.thresholds.shape[1] == levels for layer in thresholded)
    assert [layer.in_bits for layer in net.compute_layers][1:] == [levels] * len(thresholded)
    if method == "ubq":                       # the whole schedule ran: every layer is frozen
        assert all(isinstance(b.bn, FrozenThresholds) for b in thresholded_blocks(model))


@pytest.mark.parametrize("method", ["xnor", "dualpath"])
def test_scaled_methods_match_golden_with_random_batch_norm(tmp_path, method):
    model = trained("tiny-mlp", method, steps=2)
    randomize_bn(model, seed=4)               # negative and zero gammas, zero betas
    _, report = assert_golden_equals_torch(model, tmp_path, n=200)
    assert report["check"]["bit_mismatches"] == 0
    assert report["constant_channels"] > 0 and report["negative_directions"] > 0


def test_ubq_annealing_reaches_a_hard_sign():
    ubq = Ubq()
    total = 100
    taus = [ubq.tau(step, total) for step in range(total)]
    assert taus[0] == ubq.tau0 and all(a >= b for a, b in zip(taus, taus[1:]))
    assert taus[int(ubq.hard_at * total)] == 0.0 and taus[-1] == 0.0
    assert int(ubq.hard_at * total) <= ubq.freeze_step(0, 3, total)      # hard before frozen
    assert ubq.freeze_step(0, 3, total) < ubq.freeze_step(2, 3, total) == int(ubq.freeze_to * total)

    x = torch.tensor([-2.0, -0.5, -0.0, 0.0, 0.25, 0.5, 3.0], requires_grad=True)
    act = UncertainSign(0.5).train()
    assert act(x).tolist() == [-1.0, -1.0, 0.0, 0.0, 0.5, 1.0, 1.0]      # soft in the band
    act.tau = 0.0
    hard = act(x)
    assert hard.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]       # sign(0) = +1
    hard.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]       # hardtanh STE
    assert UncertainSign(1.0).eval()(x).tolist() == hard.tolist()     # eval: always hard


def test_ubq_phases_move_the_hard_sign_and_the_freezing():
    ubq, total = get_method("ubq", ubq_phases=(0.2, 0.6, 0.9)), 1000
    assert ubq.tau(199, total) > 0 == ubq.tau(200, total)
    assert [ubq.freeze_step(i, 4, total) for i in range(4)] == [600, 700, 800, 900]
    assert get_method("ubq").phases == (0.4, 0.5, 0.8)                 # the defaults are untouched
    assert get_method("ubq", ubq_phases=(1, 1, 1)).phases == (1.0, 1.0, 1.0)
    with pytest.raises(MethodError, match="apply to --method ubq, not ste"):
        get_method("ste", ubq_phases=(0.4, 0.5, 0.8))
    for phases in [(0, 0.5, 0.8), (0.6, 0.5, 0.8), (0.4, 0.9, 0.8), (0.4, 0.5, 1.1), (0.4, 0.5)]:
        with pytest.raises(MethodError, match="0 < HARD <= FREEZE_FROM <= FREEZE_TO <= 1"):
            get_method("ubq", ubq_phases=phases)


def test_ubq_phases_are_recorded_and_a_resume_with_others_is_refused(tmp_path, capsys):
    data = _mnist_idx(tmp_path / "mnist")
    common = ["--arch", "tiny-mlp", "--dataset", "mnist", "--data", str(data), "--batch-size", "50",
              "--method", "ubq", "--out", str(tmp_path / "run")]
    assert train.main(common + ["--epochs", "1", "--ubq-phases", "0.25,0.5,0.75"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["ubq_phases"] == [0.25, 0.5, 0.75]
    assert train.main(common + ["--epochs", "2", "--resume"]) == 2
    assert "was trained with ubq_phases=[0.25, 0.5, 0.75], not [0.4, 0.5, 0.8]" in capsys.readouterr().err


def test_freezing_keeps_the_eval_function_and_trains_on():
    model = trained("tiny-mlp", "ste", steps=3)
    images = pixels_to_input(random_images(model, 64, seed=1))
    block = thresholded_blocks(model)[0]
    block.act = UncertainSign(0.0)
    with torch.no_grad():
        before = model(images)
    freeze(block, first=True)
    assert isinstance(block.bn, FrozenThresholds) and not block.core.weight.requires_grad
    assert set(block.core.weight.unique().tolist()) <= {-1.0, 1.0}
    with torch.no_grad():
        after = model(images)
    assert torch.equal(before, after)
    model.train()
    model.zero_grad(set_to_none=True)
    model(images).sum().backward()
    assert block.core.weight.grad is None and model.blocks[-1].linear.weight.grad is not None


def test_xnor_alpha_folds_into_thresholds_with_exact_ties(tmp_path):
    torch.manual_seed(2)
    model = build_model("tiny-mlp")
    get_method("xnor").prepare(model)
    block = thresholded_blocks(model)[1]       # binary input: acc = sum of ±1
    with torch.no_grad():
        block.core.weight.copy_(torch.where(torch.rand_like(block.core.weight) < 0.5, -0.5, 0.5))
        assert torch.equal(block.scale.factors(), torch.full((32,), 0.5))
        block.bn.weight.fill_(1.3)
        block.bn.bias.zero_()
        block.bn.running_mean.copy_(0.5 * torch.arange(-16, 16, 1.0))  # α·acc = μ at acc = 2k
    model.eval()
    t, direction, tie = fold_threshold(1.3, 0.0, 0.5 * 4, 1.0, 1e-4, 0.5, 64)
    assert (t, direction, tie) == (4, 1, 4)
    _, report = export_network(model, None, check_images=random_images(model, 300, seed=5))
    check = report["check"]
    fc1 = check["per_layer"]["fc1"]
    assert report["tie_channels"] >= 32 and fc1["exact_ties"] > 0 and fc1["acc_mismatches"] == 0
    # float32 batch norm rounds some exact zeros below 0: every differing bit is at a tie
    # (later layers then see other inputs than the hardware's, so their accumulations differ)
    assert check["bit_mismatches"] == check["bit_mismatches_at_ties"]


def test_dualpath_levels_are_minus_and_plus_half_scale():
    act = TernaryAct()
    with torch.no_grad():
        act.log_scale.fill_(np.log(2.0))
    a = float(act.scale().detach())
    y = torch.tensor([-5.0, -a / 2 - 1e-3, -a / 2, 0.0, a / 2 - 1e-3, a / 2, 5.0], requires_grad=True)
    q = act(y)
    assert q.tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    (q * torch.arange(7.0)).sum().backward()
    assert y.grad[0] == 0 and y.grad[-1] == 0 and y.grad[3] == pytest.approx(3 / a)
    assert act.log_scale.grad is not None


def test_ubq_resume_continues_exactly(tmp_path, monkeypatch):
    # 200 training images, 4 steps per epoch, 12 in all: layer 0 freezes at step 6, layer 1 at 9
    data = _mnist_idx(tmp_path / "mnist")
    common = ["--arch", "tiny-mlp", "--dataset", "mnist", "--data", str(data), "--batch-size", "50",
              "--method", "ubq", "--epochs", "3"]
    assert train.main(common + ["--out", str(tmp_path / "once")]) == 0
    evaluate, calls = train.evaluate, []

    def interrupted_in_epoch_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", interrupted_in_epoch_3)
    assert train.main(common + ["--out", str(tmp_path / "twice")]) == 130
    monkeypatch.setattr(train, "evaluate", evaluate)
    assert train.main(common + ["--out", str(tmp_path / "twice"), "--resume"]) == 0
    once, twice = (np.load(tmp_path / run / "tiny-mlp.npz") for run in ("once", "twice"))
    assert all(np.array_equal(once[key], twice[key]) for key in once.files)
    summary = json.loads((tmp_path / "once" / "summary.json").read_text())
    assert summary["method"] == "ubq" and summary["export"]["check"]["disagree"] == 0


@pytest.mark.parametrize("args,message", [
    (["--method", "bogus"], "invalid choice: 'bogus'"),
    (["--method", "xnor", "--precision", "fp32"], "--method xnor trains a binary model"),
    (["--ubq-phases", "0.4,0.5,0.8"], "--ubq-phases: ubq phases apply to --method ubq, not ste"),
    (["--method", "ubq", "--ubq-phases", "0.5,0.4,0.8"], "--ubq-phases: ubq phases must be three"),
    (["--method", "ubq", "--ubq-phases", "0.4,half,0.8"], "expected comma-separated fractions"),
])
def test_method_errors_are_one_line(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "model.train", "--arch", "tiny-mlp", "--dataset",
                             "mnist", "--epochs", "1", "--out", str(tmp_path / "o"), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0]
