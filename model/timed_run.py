"""Train a full-precision teacher, then a binary student distilled from it, within a time budget.

    python -m model.timed_run --arch cnv --dataset cifar10 --seconds 540 --out runs/timed \\
        -- --data .gpu/data/cifar10-jpeg.npz --device cuda --bf16 --compile

For a machine lent for a few minutes, whose speed is not known beforehand. The teacher
(``--precision fp32``) trains ``--teacher-epochs`` epochs into ``OUT/teacher``; its log gives the
seconds per epoch (the median after the first, which includes compilation). The student, with
``--teacher`` and the method ``--student-method`` (default ste), trains into ``OUT/student`` for as
many epochs as fit in what is left of ``--seconds`` at that pace times ``--student-cost`` (a student
epoch, the teacher's forward pass included, against a teacher epoch: 1.0 for CNV on a 2-core CPU),
less ``--reserve`` seconds for its export check and the teacher's first-epoch overhead
(compilation) once more, for the student's own. Both are plain ``model.train`` runs with the
options after ``--``; the student's whole command is printed and written to
``OUT/student-command.txt``, so that the run can be repeated without a budget. A finished teacher
(``OUT/teacher/summary.json``) is reused.
"""
import argparse
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

from gen.files import replace_text
from model import train


class BudgetError(ValueError):
    """The budget leaves no epoch for the student (one-line message)."""


def parse_args(argv=None):
    from model.methods import METHODS

    parser = argparse.ArgumentParser(prog="python -m model.timed_run", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", required=True, help="topology of teacher and student (model.train --arch)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--seconds", type=float, required=True, help="wall-clock budget of the whole run")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--teacher-epochs", type=int, default=20)
    parser.add_argument("--student-cost", type=float, default=1.0,
                        help="seconds of a student epoch per second of a teacher epoch (default 1.0)")
    parser.add_argument("--student-method", default="ste", choices=list(METHODS),
                        help="the student's model.train --method (default ste; docs/methods.md)")
    parser.add_argument("--reserve", type=float, default=180.0,
                        help="seconds kept for the student's export check (default 180)")
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="after --: model.train options for both runs (--data, --device, --bf16, ...)")
    args = parser.parse_args(argv)
    if args.options[:1] == ["--"]:
        args.options = args.options[1:]
    for name in ("seconds", "teacher_epochs", "student_cost"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, not {getattr(args, name)}")
    return args


def epoch_seconds(log_path):
    """A ``model.train`` log's pace and first-epoch overhead: the median ``seconds`` of the epochs
    after the first (the first alone if there is no other), and how much longer the first took."""
    seconds = [json.loads(line)["seconds"] for line in Path(log_path).read_text().splitlines()]
    pace = statistics.median(seconds[1:] or seconds)
    return pace, max(0.0, seconds[0] - pace)


def student_epochs(budget_left, pace, student_cost, reserve):
    """Epochs of ``pace * student_cost`` seconds that fit in ``budget_left - reserve`` seconds."""
    epochs = math.floor((budget_left - reserve) / (pace * student_cost))
    if epochs < 1:
        raise BudgetError(f"--seconds: {budget_left:.0f} s left after the teacher, less the "
                          f"{reserve:.0f} s reserved, is not one student epoch ({pace * student_cost:.0f} s)")
    return epochs


def run(args):
    started = time.time()
    common = ["--arch", args.arch, "--dataset", args.dataset, *args.options]
    teacher_dir = args.out / "teacher"
    if not (teacher_dir / train.SUMMARY).exists():
        code = train.main(common + ["--precision", "fp32", "--epochs", str(args.teacher_epochs),
                                    "--test-every", str(args.teacher_epochs), "--out", str(teacher_dir)])
        if code:
            return code
    pace, overhead = epoch_seconds(teacher_dir / train.LOG)
    epochs = student_epochs(args.seconds - (time.time() - started), pace, args.student_cost,
                            args.reserve + overhead)
    student = common + ["--method", args.student_method, "--epochs", str(epochs),
                        "--teacher", str(teacher_dir / train.CHECKPOINT), "--out", str(args.out / "student")]
    command = shlex.join(["python", "-m", "model.train", *student])
    replace_text(args.out / "student-command.txt", command + "\n")
    print(f"teacher: {pace:.1f} s per epoch; student: {epochs} epochs: {command}", file=sys.stderr)
    return train.main(student)


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except BudgetError as error:
        print(f"python -m model.timed_run: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
