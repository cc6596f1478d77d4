"""Workdirs that never mix runs.

Before anything is written, a run compares its resolved config with the one recorded in
``workdir/config.json``: identical → the run resumes (finished trainings are reused,
interrupted ones continue from their last checkpoint); different → it refuses at once
with the differing fields, unless ``overwrite`` is set, which empties the workdir first.
Each training additionally records a hash of everything that shapes it (``job.json``,
:func:`ddat_jax.experiment.training.check_job_hash`), so checkpoints are never resumed
into another model or data set even when files were copied by hand.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ddat_jax import atomic

CONFIG_FILE = "config.json"
# Fields that do not change what a run computes (they may differ on resume).
IGNORED = ("run.parallel",)


class WorkdirError(ValueError):
    """The workdir holds a run that this config must not resume."""


def config_dict(config) -> dict[str, Any]:
    """The resolved config as plain JSON data (what ``config.json`` records)."""
    return json.loads(config.to_json_best_effort(sort_keys=True))


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}."))
    return out


def differences(old: dict, new: dict) -> list[str]:
    """``"field: old → new"`` for every field that differs (ignoring :data:`IGNORED`)."""
    a, b = _flatten(old), _flatten(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if key in IGNORED:
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            out.append(f"{key}: {a.get(key, '<absent>')!r} → {b.get(key, '<absent>')!r}")
    return out


def prepare(config, workdir: str | Path, *, overwrite: bool = False) -> str:
    """Checks ``workdir`` against ``config`` and records the config; returns the state.

    Returns:
      ``"new"`` (nothing there), ``"resume"`` (same config) or ``"overwritten"``.

    Raises:
      WorkdirError: the workdir holds a run with another config (and not ``overwrite``),
        or an unreadable ``config.json``.
    """
    workdir = Path(workdir)
    path = workdir / CONFIG_FILE
    new = config_dict(config)
    state = "new"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise WorkdirError(f"{path} is not readable JSON ({err})") from err
        diff = differences(old, new)
        if diff and not overwrite:
            shown = "\n  ".join(diff[:12]) + ("\n  ..." if len(diff) > 12 else "")
            raise WorkdirError(
                f"{workdir} holds a run with a different config:\n  {shown}\n"
                "Nothing was changed. Use another --workdir, or --overwrite to replace it."
            )
        if diff:
            shutil.rmtree(workdir)
            state = "overwritten"
        else:
            state = "resume"
    atomic.write_text(path, json.dumps(new, indent=2, sort_keys=True) + "\n")
    return state


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_completion(config, folder: Path, name: str, files, **extra) -> dict:
    """Writes the completion marker ``folder/name`` (atomically; write it last): the
    resolved config, the SHA-256 of ``files`` (paths relative to ``folder``) and ``extra``."""
    folder = Path(folder)
    marker = {
        "config": config_dict(config),
        "files": {rel: sha256(folder / rel) for rel in files},
        **extra,
    }
    atomic.write_text(folder / name, json.dumps(marker, indent=1) + "\n")
    return marker


def read_completion(folder: Path, name: str) -> dict | None:
    """The marker ``folder/name`` as written by :func:`write_completion`, or None."""
    try:
        return json.loads((Path(folder) / name).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def completion_verified(config, folder: Path, name: str) -> bool:
    """Whether ``folder`` holds a finished run of ``config``: its marker records the same
    config (:func:`differences`) and every recorded file is unchanged."""
    folder = Path(folder)
    marker = read_completion(folder, name)
    if not marker or differences(marker.get("config", {}), config_dict(config)):
        return False
    files = marker.get("files") or {}
    return all((folder / rel).is_file() and sha256(folder / rel) == h for rel, h in files.items())
