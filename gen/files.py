"""Input JSON files read with one-line errors; output files written whole or not at all, in
output directories checked before any work."""
import json
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path):
    """A temporary path beside ``path`` (the same suffix, for writers that go by it) to write
    in the block; renamed to ``path`` when the block ends, removed if it fails: a reader sees the
    old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_text(path, text):
    """Write ``text`` to ``path`` through ``replacing``."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def read_json(path, error, kind):
    """The JSON value in ``path``; else ``error`` (an exception class) with one line naming the
    file, saying it is missing or not JSON; ``kind`` names the file expected (``"fold file"``)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such {kind}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as reason:
        raise error(f"{path}: not a JSON {kind} ({reason})") from None


def output_directory(path, error):
    """``path`` as a ``Path``, its parent created; else ``error`` (an exception class) with one
    line naming it: a file stands at ``path`` or above it, or the parent cannot be made. Called
    before the work whose results go there."""
    path = Path(path)
    existing = next(place for place in [path, *path.parents] if place.exists())
    if not existing.is_dir():
        raise error(f"output directory {path}: {existing} is a file; accepted: a directory "
                    f"(created, or written into)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as reason:
        raise error(f"output directory {path}: cannot create {path.parent} "
                    f"({reason.strerror})") from None
    return path
