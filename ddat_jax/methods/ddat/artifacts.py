"""Stage-1 → stage-2 hand-over: augmented feature arrays ``[x, d]`` plus a manifest.

Layout (one folder per difficulty variant, e.g. ``re_vector``, ``re_sum``, ``pu``)::

    workdir/stage1/<variant>/
        manifest.json              # written last; what stage 2 checks
        train/train_1.npy ...      # [T, F + D] float32, one file per recording
        dev/dev_1.npy ...
        test/test_1.npy ...

The folder is written under a temporary name and renamed into place only once every array
and the manifest are on disk, so a run killed mid-write leaves at most a ``*.tmp-*`` folder,
which no reader accepts (and the next writer removes). The manifest records shapes, dtypes,
feature names, the config hash of the run that wrote it and a SHA-256 per file; the reader
refuses a manifest whose config hash differs from the one it expects and any file whose
checksum or shape does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ddat_jax import atomic

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ManifestError(ValueError):
    """A stage-1 folder that stage 2 must not use (missing, incomplete, stale or corrupt)."""


def config_hash(*sections) -> str:
    """A stable hash of config sections (ConfigDicts or plain dicts), for manifests."""
    parts = []
    for s in sections:
        d = s.to_dict() if hasattr(s, "to_dict") else s
        parts.append(json.dumps(d, sort_keys=True, default=str))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_augmented(
    folder: str | Path,
    arrays: Mapping[str, Mapping[str, np.ndarray]],
    *,
    feature_names: Sequence[str],
    difficulty_names: Sequence[str],
    config_hash: str,
    extra: Mapping | None = None,
) -> Path:
    """Writes augmented features atomically with a manifest.

    Args:
      folder: destination, e.g. ``workdir/stage1/re_vector`` (replaced if it exists).
      arrays: partition → recording name → ``[T, F + D]`` array (``[x, d]``).
      feature_names: the F names of ``x``.
      difficulty_names: the D names of ``d``.
      config_hash: hash of the config that produced the arrays (see ``config_hash``).
      extra: more JSON-serialisable fields for the manifest (e.g. the stage-1 dev CCC).

    Returns:
      The final folder.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f"{folder.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder.parent / f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    width = len(feature_names) + len(difficulty_names)
    files = {}
    for partition, recs in arrays.items():
        (tmp / partition).mkdir(parents=True, exist_ok=True)
        for name, arr in recs.items():
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if arr.ndim != 2 or arr.shape[1] != width:
                raise ValueError(
                    f"{partition}/{name}: expected [T, {width}] (features + difficulty), "
                    f"got {arr.shape}"
                )
            rel = f"{partition}/{name}.npy"
            np.save(tmp / rel, arr, allow_pickle=False)
            files[rel] = {
                "shape": list(arr.shape),
                "dtype": str(arr.dtype),
                "sha256": _sha256(tmp / rel),
            }
    manifest = {
        "format_version": FORMAT_VERSION,
        "config_hash": config_hash,
        "feature_names": list(feature_names),
        "difficulty_names": list(difficulty_names),
        "partitions": {p: sorted(recs) for p, recs in arrays.items()},
        "files": files,
        **(dict(extra) if extra else {}),
    }
    with open(tmp / MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    atomic.swap_folder(tmp, folder)
    return folder


def read_manifest(folder: str | Path) -> dict:
    """Reads ``folder/manifest.json``; raises ManifestError if absent or unreadable."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ManifestError(
            f"{path}: no manifest — stage 1 did not finish writing {folder} (run stage 1 again)"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from err
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ManifestError(
            f"{path}: format_version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    return manifest


def read_augmented(
    folder: str | Path, *, expected_config_hash: str | None
) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Reads what ``write_augmented`` wrote, checking manifest, hash, shapes and checksums.

    Args:
      folder: a ``workdir/stage1/<variant>`` folder.
      expected_config_hash: the hash the reader's config gives; ``None`` skips that check
        (only for inspection tools, never for stage 2).

    Returns:
      ``(arrays, manifest)`` with arrays as partition → recording → ``[T, F + D]`` float32.

    Raises:
      ManifestError: missing or stale manifest, a missing file, or a shape/checksum mismatch.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if expected_config_hash is not None and manifest["config_hash"] != expected_config_hash:
        raise ManifestError(
            f"{folder / MANIFEST}: written by a run with config hash {manifest['config_hash']}, "
            f"but this config hashes to {expected_config_hash}; stage 1 must be re-run with "
            "the same data/stage-1 settings"
        )
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for rel, meta in manifest["files"].items():
        path = folder / rel
        if not path.is_file():
            raise ManifestError(f"{path}: listed in the manifest but missing")
        if _sha256(path) != meta["sha256"]:
            raise ManifestError(f"{path}: checksum differs from the manifest (file modified?)")
        arr = np.load(path, allow_pickle=False)
        if list(arr.shape) != meta["shape"] or str(arr.dtype) != meta["dtype"]:
            raise ManifestError(
                f"{path}: shape {arr.shape} {arr.dtype}, manifest says "
                f"{tuple(meta['shape'])} {meta['dtype']}"
            )
        partition, name = rel.split("/", 1)
        arrays.setdefault(partition, {})[name.removesuffix(".npy")] = arr
    return arrays, manifest
