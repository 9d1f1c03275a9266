"""Output files written whole or not at all."""
import os
from pathlib import Path


def replace_text(path, text):
    """Write ``text`` to ``path`` through a temporary file beside it, then rename it: a reader
    sees the old file or the new one, never half of one, and a failed write leaves nothing."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
