"""The README's table of trained models stays true to the code: every network it lists is shipped,
and every training command in it is one ``model.train`` accepts, each run it starts from made by
a command above it."""
import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("brevitas")

from gen.networks import SHIPPED_DIR  # noqa: E402
from model.train import parse_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRAIN_COMMAND = re.compile(r"`(python -m model\.train [^`]*)`")


def _table_rows():
    """The rows of the README's "Trained models" table, as lists of cells."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Trained models", 1)[1]
    lines = [line for line in section.split("\n\n", 2)[1].splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_every_listed_network_is_shipped():
    names = [re.match(r"`([\w-]+)`", row[0]).group(1) for row in _table_rows()]
    assert "cnv-cifar10" in names and "vgg16-cifar10" in names
    for name in names:
        assert (SHIPPED_DIR / f"{name}.json").is_file(), name
        assert (SHIPPED_DIR / f"{name}.npz").is_file(), name


def test_training_commands_parse_and_chain():
    made = {}                           # run directory → architecture
    for row in _table_rows():
        commands = TRAIN_COMMAND.findall(row[-1])
        assert commands, f"no model.train command in the row of {row[0]}"
        for command in commands:
            args = parse_args(shlex.split(command)[3:])
            for start in (args.init_from, args.teacher):
                if start is not None:          # a run's checkpoint or its exported network file
                    assert start.parent in made, f"{command}: {start} is no run made above it"
                    assert start.name in ("checkpoint.pt", f"{made[start.parent]}.json"), \
                        f"{command}: {start} is neither the checkpoint nor the network of {start.parent}"
            made[args.out] = args.arch
