"""Train a network from ``model.nets`` and export it as an xnorflow network file.

    python -m model.train --arch cnv --dataset cifar10 --epochs 200 --out runs/cnv [--method ste]

``--method`` picks the training method (``model.methods``: ste, xnor, ubq, dualpath; see
docs/methods.md). Adam with a per-step cosine learning-rate schedule (linear warm-up over the
first 5% of the first epoch's steps), cross-entropy (``--loss sqr-hinge``: Brevitas' squared
hinge; ``--teacher``: knowledge distillation from a trained checkpoint, ``model.distill``), latent
weights clamped to [-1, 1] after each step (binary models), random crop (4 pixels of zero padding)
+ horizontal flip for CIFAR-10. ``--bf16`` (bfloat16
autocast) and ``--compile`` (torch.compile) speed up the training forward pass only. Every epoch appends one JSON
line to ``OUT/log.jsonl`` and rewrites ``OUT/checkpoint.pt`` (tensors and plain values only: it
loads with ``torch.load(..., weights_only=True)``); ``--resume`` continues from it, and
``--init-from`` starts a new run from another run's weights. At the end a
binary model is exported to ``OUT/<arch>.json``/``.npz`` with the golden-vs-PyTorch check on the
test split, and ``OUT/summary.json`` records the figures.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from gen.files import output_directory, replace_text, replacing
from model.checkpoint import TrainError, read_checkpoint
from model.data import DEFAULT_PATHS, DatasetError

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
SUMMARY = "summary.json"
DEFAULT_LR = {"binary": 0.005, "fp32": 0.001}
LOSSES = ("ce", "sqr-hinge")


def squared_hinge(logits, labels):
    """Brevitas' (BNN-PYNQ's) ``SqrHingeLoss``: the mean over scores of max(0, 1 - s*t)^2, with
    targets t = +1 for the true class and -1 for the others."""
    import torch

    targets = 2 * torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype) - 1
    return torch.clamp(1 - logits * targets, min=0).square().mean()


def loss_function(name):
    """The training loss called ``name`` (one of ``LOSSES``)."""
    import torch

    return torch.nn.CrossEntropyLoss() if name == "ce" else squared_hinge


def parse_args(argv=None):
    from model.methods import METHODS, MethodError, get_method
    from model.nets import ARCHS, PRECISIONS

    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", required=True, choices=list(ARCHS), help="network topology")
    parser.add_argument("--dataset", required=True, choices=list(DEFAULT_PATHS))
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--data", help="dataset path (default: $XNORFLOW_<DATASET> or the shared copy)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, help="peak learning rate (default 0.005 binary, 0.001 fp32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="binary")
    parser.add_argument("--loss", choices=LOSSES, default="ce",
                        help="cross-entropy (default) or Brevitas' squared hinge loss")
    parser.add_argument("--method", choices=list(METHODS), default="ste",
                        help="training method of a binary model (default ste; docs/methods.md)")
    parser.add_argument("--ubq-phases", metavar="HARD,FREEZE_FROM,FREEZE_TO",
                        help="--method ubq: fractions of all steps where the sign becomes hard and where "
                             "freezing starts and ends (default 0.4,0.5,0.8; docs/methods.md)")
    parser.add_argument("--limit-train", type=int,
                        help="train on a fixed random subset of N training images (the same in every run)")
    parser.add_argument("--limit-test", type=int,
                        help="test (and check the export) on a fixed random subset of N test images")
    parser.add_argument("--test-every", type=int, default=1, metavar="N",
                        help="test accuracy every N epochs and after the last (default 1; "
                             "testing CIFAR-10 on a 2-core CPU costs 20-30 s)")
    parser.add_argument("--teacher", type=Path, metavar="CHECKPOINT|NET.json",
                        help="distil from this model.train checkpoint (e.g. the fp32 twin) or network file "
                             "(.json) on the same dataset")
    parser.add_argument("--distill-weight", type=float, metavar="W",
                        help="with --teacher: the distillation loss's share of the loss, in [0, 1] (default 0.9)")
    parser.add_argument("--distill-temp", type=float, metavar="T",
                        help="with --teacher: the softmax temperature of the distillation loss (default 4)")
    parser.add_argument("--init-from", type=Path, metavar="CHECKPOINT|NET.json",
                        help="start from another model.train run of the same architecture and dataset "
                             "(any method or precision): every weight and batch-norm tensor whose name and "
                             "shape match is copied; or from a network file (.json, e.g. a shipped model): "
                             "its function, batch norms calibrated on training images (model.from_network); "
                             "optimizer and schedule start fresh")
    parser.add_argument("--no-augment", action="store_true", help="no random crop/flip (CIFAR-10)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bf16", action="store_true",
                        help="training forward pass under bfloat16 autocast (fast on recent GPUs and on CPUs with "
                             "AMX or AVX-512 BF16; 12x slower than float32 on AVX2 alone); evaluation, checkpoints and export stay float32")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training forward pass (about 2 min to compile)")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "limit_train", "limit_test", "threads", "test_every"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "epochs" else 1):
            parser.error(f"--{name.replace('_', '-')} must be {'>= 0' if name == 'epochs' else 'positive'}, not {value}")
    for name, default in (("distill_weight", 0.9), ("distill_temp", 4.0)):
        if getattr(args, name) is None:
            setattr(args, name, default if args.teacher else None)
        elif not args.teacher:
            parser.error(f"--{name.replace('_', '-')} distils: it needs --teacher")
    if args.teacher and not 0 <= args.distill_weight <= 1:
        parser.error(f"--distill-weight must be in [0, 1], not {args.distill_weight}")
    if args.teacher and not args.distill_temp > 0:
        parser.error(f"--distill-temp must be positive, not {args.distill_temp}")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be positive, not {args.lr}")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        parser.error(f"--device must be cpu or cuda, not {args.device!r}")
    if args.precision == "fp32" and args.method != "ste":
        parser.error(f"--method {args.method} trains a binary model, not --precision fp32")
    if args.ubq_phases is not None:
        try:
            args.ubq_phases = get_method(args.method, ubq_phases=_fractions(args.ubq_phases)).phases
        except (MethodError, ValueError) as error:
            parser.error(f"--ubq-phases: {error}")
    if args.compile and not METHODS[args.method].compilable:
        parser.error(f"--compile: method {args.method} changes the model at every step (annealing, "
                     f"freezing), which recompiles it; train {args.method} without --compile")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.precision]
    return args


def _fractions(text):
    """``"0.4,0.5,0.8"`` → a tuple of floats (``ValueError`` quoting ``text`` if one is not a number)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated fractions such as 0.4,0.5,0.8, not {text!r}") from None


def lr_at(step, total, peak, warmup):
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine down to 0 at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class Progress:
    """tqdm when installed, else a progress line (rewritten in place on a terminal)."""

    def __init__(self, total, desc):
        self.total, self.desc, self.start = total, desc, time.time()
        self.every = max(1, total // 20)
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, leave=False, file=sys.stderr)
        except ImportError:
            self.bar = None
            self.tty = sys.stderr.isatty()

    def due(self, done):
        """Whether the line is redrawn at ``done``: about 20 times in all, and at the end."""
        return done == self.total or done % self.every == 0

    def update(self, done, **info):
        text = "  ".join(f"{k} {v}" for k, v in info.items())
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(text, refresh=False)
        elif self.due(done):
            line = f"{self.desc} {done}/{self.total}  {text}  {time.time() - self.start:.0f}s"
            print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
                  file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.tty:
            print(file=sys.stderr)


def evaluate(model, images, labels, device, batch=500, ks=(1,)):
    """Top-k accuracy of the PyTorch model (eval mode) on uint8 HWC images, one per k in ``ks``,
    from a single pass."""
    import torch
    from gen.golden import top_k
    from model.quant import pixels_to_input

    model.eval()
    correct = [0] * len(ks)
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            x = pixels_to_input(images[start:start + batch]).to(device)
            ranked = top_k(model(x).cpu().numpy(), max(ks))   # ties go to the lower class, as in hardware
            hits = ranked == labels[start:start + batch, None]
            for i, k in enumerate(ks):
                correct[i] += int(hits[:, :k].any(axis=1).sum())
    return tuple(c / max(1, images.shape[0]) for c in correct)


def require_same_config(state, wanted, option, path, defaults=None):
    """Raise ``TrainError`` naming ``option`` unless checkpoint ``state``'s config has the value in
    ``wanted`` for every key (``defaults``: values for keys older checkpoints lack)."""
    for key, value in wanted.items():
        if state["config"].get(key, (defaults or {}).get(key)) != value:
            raise TrainError(f"{option}: {path} was trained with {key}={state['config'].get(key)!r}, "
                             f"not {value!r}")


def load_initial_weights(model, path, arch, dataset, classes):
    """Copy into ``model`` every tensor of checkpoint ``path`` whose name and shape match (latent
    weights, batch norms; a method's own parameters only where both runs have them) and clip the
    weights as training does. ``path`` must be a run of the same ``arch``, ``dataset`` and class
    count. Returns the names copied and the names of ``model``'s tensors left as initialized."""
    state = read_checkpoint(path, "--init-from", "cpu")
    require_same_config(state, {"arch": arch, "dataset": dataset, "classes": classes}, "--init-from", path)
    own = model.state_dict()
    copied = {name: tensor for name, tensor in state["model"].items()
              if name in own and own[name].shape == tensor.shape}
    model.load_state_dict(copied, strict=False)
    model.clip_weights()
    return sorted(copied), sorted(set(own) - set(copied))


def _save_checkpoint(path, state):
    import torch
    with replacing(path) as tmp:
        torch.save(state, tmp)


def _rng_state(device):
    """torch's global random state (what dropout draws from), for the checkpoint."""
    import torch
    state = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state, device):
    """Put back the random state of ``_rng_state``, so that a resumed run draws what an unbroken
    one would; checkpoints written before it was kept have none."""
    import torch
    if "rng" in state:
        torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def _steps_per_epoch(n, batch_size):
    """Batches per epoch; a last batch of one image breaks batch norm, so it is skipped."""
    return math.ceil(n / batch_size) - (1 if n % batch_size == 1 else 0)


def slow_bf16_warning(cpu_capability):
    """The one-line warning for ``--bf16`` on a CPU whose PyTorch capability (``AVX2``,
    ``AVX512``, ...) has no fast bfloat16 kernels, else ``None``: without AVX-512, autocast's
    convolutions fall back to kernels far slower than float32."""
    if cpu_capability.startswith("AVX512"):
        return None
    return (f"warning: --bf16 on a CPU without AVX-512 (PyTorch capability {cpu_capability}) runs "
            f"on slow fallback kernels: a CNV step took 8.1 s against 0.68 s in float32 on a "
            f"2-core AVX2 EPYC (python -m benchmarks.train_step); drop --bf16 on this machine")


def train(args):
    import torch
    from model.augment import check_images, load_splits, random_crop_flip, subset
    from model.from_network import CALIBRATION_IMAGES, is_network_file, load_network_into, read_network_file
    from model.methods import UBQ_PHASES, get_method
    from model.nets import build_model, DATASET_SHAPES

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"--device {args.device}: CUDA is not available on this machine")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.bf16 and device.type == "cpu":
        warning = slow_bf16_warning(torch.backends.cpu.get_cpu_capability())
        if warning:
            print(warning, file=sys.stderr)
    out = output_directory(args.out, TrainError)
    started = time.time()

    train_x, train_y, test_x, test_y, split_note = load_splits(args.dataset, args.data)
    shape = DATASET_SHAPES[args.dataset]
    check_images(train_x, shape, f"{args.dataset} train")
    check_images(test_x, shape, f"{args.dataset} test")
    if args.limit_train:
        train_x, train_y = subset(train_x, train_y, args.limit_train)
        split_note += f"; training limited to a fixed random subset of {train_x.shape[0]} images"
    if args.limit_test:
        test_x, test_y = subset(test_x, test_y, args.limit_test)
        split_note += f"; testing limited to a fixed random subset of {test_x.shape[0]} images"
    classes = int(max(train_y.max(), test_y.max())) + 1 if train_y.size else 10
    classes = max(classes, 10)

    torch.manual_seed(args.seed)
    model = build_model(args.arch, shape, classes, args.precision)
    method = get_method(args.method, ubq_phases=args.ubq_phases)
    if args.precision == "binary":
        method.prepare(model)
    calibration = subset(train_x, train_y, CALIBRATION_IMAGES)[0]    # for network files
    if args.init_from and not args.resume and is_network_file(args.init_from):
        net = read_network_file(args.init_from, "--init-from")
        load_network_into(model, net, calibration, where=f"--init-from: {args.init_from}")
        print(f"--init-from: the function of network file {args.init_from}, batch norms calibrated on "
              f"{calibration.shape[0]} training images", file=sys.stderr)
    elif args.init_from and not args.resume:
        copied, skipped = load_initial_weights(model, args.init_from, args.arch, args.dataset, classes)
        print(f"--init-from: {len(copied)} tensors copied from {args.init_from}"
              + (f"; kept initial: {', '.join(skipped)}" if skipped else ""), file=sys.stderr)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    augment = args.dataset == "cifar10" and not args.no_augment
    config = {"arch": args.arch, "dataset": args.dataset, "precision": args.precision,
              "method": args.method, "loss": args.loss,
              "ubq_phases": list(method.phases) if args.method == "ubq" else None,
              "classes": classes, "seed": args.seed, "batch_size": args.batch_size,
              "lr": args.lr, "limit_train": args.limit_train, "augment": augment,
              "bf16": args.bf16, "compile": args.compile,
              "teacher": str(args.teacher) if args.teacher else None,
              "init_from": str(args.init_from) if args.init_from else None,
              "distill_weight": args.distill_weight, "distill_temp": args.distill_temp}
    start_epoch, history = 0, []
    ckpt_path = out / CHECKPOINT
    if args.resume:
        state = read_checkpoint(ckpt_path, "--resume", device)
        # checkpoints from before --method, --loss and --ubq-phases trained with ste, cross-entropy
        # and ubq's default phases, and those from before --teacher without one (None)
        before_options = {"method": "ste", "loss": "ce", "ubq_phases": list(UBQ_PHASES)
                          if state["config"].get("method") == "ubq" else None}
        require_same_config(state, {key: config[key] for key in (
            "arch", "dataset", "precision", "method", "loss", "ubq_phases", "classes",
            "distill_weight", "distill_temp")}, "--resume", ckpt_path, before_options)
        start_epoch, history = int(state["epoch"]), list(state["history"])
        method.restore(model, start_epoch * _steps_per_epoch(train_x.shape[0], args.batch_size),
                       _steps_per_epoch(train_x.shape[0], args.batch_size) * args.epochs)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _restore_rng(state, device)
        print(f"resuming {ckpt_path} after epoch {start_epoch}", file=sys.stderr)
    else:
        out.mkdir(exist_ok=True)
        (out / LOG).write_text("")

    # the whole training set as uint8 NCHW on the device (CIFAR-10: 150 MB); batches are cut,
    # augmented and converted to float there
    x_all = torch.from_numpy(train_x).permute(0, 3, 1, 2).contiguous().to(device)
    y_all = torch.from_numpy(train_y.astype(np.int64)).to(device)
    n = x_all.shape[0]
    if n < 2:
        raise TrainError(f"{n} training image(s): batch norm needs at least 2")
    steps = _steps_per_epoch(n, args.batch_size)
    total = steps * args.epochs
    warmup = max(1, int(0.05 * steps)) if args.epochs else 1
    loss_fn = loss_function(args.loss)
    forward = torch.compile(model) if args.compile else model
    teacher = None
    if args.teacher:
        from model.distill import distillation_loss, load_teacher
        teacher = load_teacher(args.teacher, args.dataset, shape, classes, device, calibration)
        teacher = torch.compile(teacher) if args.compile else teacher

    top_ks = (1, min(5, classes))
    test_top1 = test_top5 = None    # after the last epoch, which is always tested
    for epoch in range(start_epoch, args.epochs):
        tick = time.time()
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=generator).to(device)
        model.train()
        # running sums stay on the device: reading them back waits for the GPU, so that happens
        # only when the progress line is redrawn
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        bar = Progress(steps, f"epoch {epoch + 1}/{args.epochs}")
        for i in range(steps):
            lr = lr_at(epoch * steps + i, total, args.lr, warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            method.on_step(model, epoch * steps + i, total)
            index = order[i * args.batch_size:(i + 1) * args.batch_size]
            xb = x_all[index]
            if augment:
                xb = random_crop_flip(xb, generator)
            xb = xb.float().div_(255.0)
            yb = y_all[index]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                logits = forward(xb)
                if teacher is not None:
                    with torch.no_grad():
                        taught = teacher(xb)
            loss = loss_fn(logits.float(), yb)
            if teacher is not None:
                loss = ((1 - args.distill_weight) * loss
                        + args.distill_weight * distillation_loss(logits.float(), taught.float(), args.distill_temp))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.clip_weights()
            loss_sum += loss.detach() * yb.shape[0]
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += yb.shape[0]
            if bar.due(i + 1):
                bar.update(i + 1, loss=f"{float(loss_sum) / seen:.4f}",
                           acc=f"{100 * int(correct) / seen:.1f}%")
        bar.close()
        loss_sum, correct = float(loss_sum), int(correct)
        train_seconds = time.time() - tick
        tested = (epoch + 1) % args.test_every == 0 or epoch + 1 == args.epochs
        test_top1, test_top5 = evaluate(model, test_x, test_y, device, ks=top_ks) if tested else (None, None)
        record = {"epoch": epoch + 1, "loss": loss_sum / max(1, seen), "train_acc": correct / max(1, seen),
                  "test_acc": test_top1, "seconds": time.time() - tick, "train_seconds": train_seconds,
                  "lr": lr}
        history.append(record)
        with open(out / LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
        _save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "epoch": epoch + 1, "config": config, "history": history,
                                     **_rng_state(device)})
        print(f"epoch {epoch + 1}/{args.epochs}: loss {record['loss']:.4f}  train {100 * record['train_acc']:.2f}%  "
              + (f"test {100 * test_top1:.2f}%  " if tested else "")
              + f"{record['seconds']:.1f}s  lr {lr:.2e}", file=sys.stderr)

    if test_top5 is None:           # no epoch left to train (--resume of a finished run, --epochs 0)
        test_top1, test_top5 = evaluate(model, test_x, test_y, device, ks=top_ks)
    summary = {"arch": args.arch, "dataset": args.dataset, "precision": args.precision,
               "method": args.method,
               "split": split_note, "train_images": int(n), "test_images": int(test_x.shape[0]),
               "epochs": args.epochs, "config": config,
               "torch_test_top1": test_top1, "torch_test_top5": test_top5}
    if args.precision == "binary":
        from model.export import export_network

        model.to("cpu")
        bar = Progress(test_x.shape[0], "golden check")
        net_path = out / f"{args.arch}.json"
        _, report = export_network(
            model, net_path, check_images=test_x, check_labels=test_y,
            description=f"{args.arch} trained on {args.dataset} with method {args.method} "
                        f"({args.epochs} epochs); {split_note}",
            progress=lambda done, all_: bar.update(done))
        bar.close()
        summary["export"] = report
        check = report["check"]
        print(f"exported {net_path}: golden top-1 {100 * check['golden_top1']:.2f}% "
              f"top-5 {100 * check['golden_top5']:.2f}%, PyTorch top-1 {100 * check['torch_top1']:.2f}%; "
              f"golden == PyTorch on {check['agree']}/{check['images']} test images, "
              f"{check['exact_ties']} exact ties", file=sys.stderr)
    summary["seconds"] = time.time() - started
    replace_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None):
    args = parse_args(argv)
    from model.nets import ArchError
    from model.export import ExportError
    from model.from_network import NetworkImportError
    from model.methods import MethodError

    try:
        train(args)
    except (DatasetError, ArchError, TrainError, ExportError, MethodError, NetworkImportError) as error:
        print(f"python -m model.train: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last finished epoch is in the checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
