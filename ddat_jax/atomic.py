"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

Every file that a later stage (or a user) reads is written this way, so a run killed
mid-write leaves either the previous file or none, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes(path: str | os.PathLike, payload: bytes) -> Path:
    """Writes ``payload`` to ``path`` atomically (creating the parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` as UTF-8 to ``path`` atomically, line endings as given."""
    return write_bytes(path, text.encode("utf-8"))
