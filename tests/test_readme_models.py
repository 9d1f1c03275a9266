"""The README's table of trained models stays true to the code: every network it lists is shipped
and has its section in docs/models.md, and every training command there is one ``model.train``
accepts, each run it starts from made by a command above it."""
import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("brevitas")

from gen.networks import SHIPPED_DIR  # noqa: E402
from model.train import parse_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS_DOC = ROOT / "docs" / "models.md"
TRAIN_COMMAND = re.compile(r"^python -m model\.train .*$", re.MULTILINE)


def _table_rows():
    """The rows of the README's "Trained models" table, as lists of cells."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Trained models", 1)[1]
    lines = [line for line in section.split("\n\n", 2)[1].splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def _model_sections():
    """docs/models.md's sections, by heading."""
    parts = re.split(r"^## (\S+)$", MODELS_DOC.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_listed_network_is_shipped_and_has_its_commands():
    rows = {re.match(r"`([\w-]+)`", row[0]).group(1): row for row in _table_rows()}
    assert "cnv-cifar10" in rows and "vgg16-cifar10" in rows
    sections = _model_sections()
    for name, row in rows.items():
        assert (SHIPPED_DIR / f"{name}.json").is_file(), name
        assert (SHIPPED_DIR / f"{name}.npz").is_file(), name
        assert f"(docs/models.md#{name})" in row[-1], f"the row of {name} links no section"
        assert TRAIN_COMMAND.search(sections.get(name, "")), f"no model.train command for {name}"


def test_training_commands_parse_and_chain():
    made = {}                           # run directory → architecture
    for section in _model_sections().values():
        for command in TRAIN_COMMAND.findall(section):
            args = parse_args(shlex.split(command)[3:])
            for start in (args.init_from, args.teacher):
                if start is not None:          # a run's checkpoint or its exported network file
                    assert start.parent in made, f"{command}: {start} is no run made above it"
                    assert start.name in ("checkpoint.pt", f"{made[start.parent]}.json"), \
                        f"{command}: {start} is neither the checkpoint nor the network of {start.parent}"
            made[args.out] = args.arch
