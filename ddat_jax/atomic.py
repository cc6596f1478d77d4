"""Atomic writes: a file or folder is written under a temporary name, then renamed into place.

Every file that a later stage (or a user) reads is written this way, so a run killed
mid-write leaves either the previous file or none, never a truncated one
(:func:`write_bytes`, :func:`write_text`); a folder of files is written under a temporary
sibling name and swapped in whole (:func:`swap_folder`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
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


def swap_folder(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Puts the complete folder ``tmp`` in place of ``dest``, replacing what ``dest`` held.

    Write a folder under a temporary sibling name, then call this: ``dest`` is never seen
    half-written. An existing ``dest`` (an empty folder, or a previous version) is renamed
    aside to ``.<name>.old-<pid>-<random>``, ``tmp`` is renamed to ``dest``, then the old
    folder is deleted. POSIX cannot rename over a non-empty folder, so between the two
    renames ``dest`` is briefly absent, but it is at no moment a mix of old and new. If the
    second rename fails, the old folder is put back.

    Args:
        tmp: the new folder, on the same file system as ``dest`` (a sibling).
        dest: the folder to replace or create.

    Returns:
        ``dest`` as a path.
    """
    tmp, dest = Path(tmp), Path(dest)
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        if old is not None:
            os.rename(old, dest)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    return dest
