"""Atomic writes of files and folders (``ddat_jax.atomic``), as the data layer uses them."""

from __future__ import annotations

import os

import pytest

from ddat_jax import atomic


def _tree(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_swap_folder_creates_and_replaces(tmp_path):
    dest = tmp_path / "corpus"
    new = tmp_path / ".corpus.partial"
    (new / "a").mkdir(parents=True)
    (new / "a" / "x.txt").write_text("1")
    assert atomic.swap_folder(new, dest) == dest
    assert _tree(dest) == ["a", "a/x.txt"] and not new.exists()

    newer = tmp_path / ".corpus.partial2"
    newer.mkdir()
    (newer / "y.txt").write_text("2")
    atomic.swap_folder(newer, dest)
    assert _tree(dest) == ["y.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # nothing left behind


def test_swap_folder_replaces_an_empty_folder(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    new = tmp_path / "tmp"
    new.mkdir()
    (new / "f").write_text("x")
    atomic.swap_folder(new, dest)
    assert _tree(dest) == ["f"]


def test_swap_folder_puts_the_old_folder_back_on_failure(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    new = tmp_path / "tmp"
    new.mkdir()
    real_rename = os.rename
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the rename of the new folder into place
            raise OSError("disk on fire")
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", flaky)
    with pytest.raises(OSError, match="disk on fire"):
        atomic.swap_folder(new, dest)
    assert _tree(dest) == ["old.txt"] and new.is_dir()


def test_write_bytes_leaves_no_temporary_file(tmp_path):
    path = atomic.write_bytes(tmp_path / "sub" / "f.bin", b"abc")
    assert path.read_bytes() == b"abc"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]
