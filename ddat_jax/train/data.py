"""The engine's data format, its validation, and the padded arrays the programs take.

One partition is ``{"inputs": array [N, T, ...] or {view: array [N, T, ...]}, "mask":
bool [N, T], "targets": {name: array [N, T, ...]}}``; a data dict has ``"train"`` and
``"dev"`` partitions (required) and optionally others (``"test"``). Floating arrays
become float32, integer arrays int32 (class labels), and a floating target of shape
``[N, T]`` gets a trailing axis ``[N, T, 1]`` (a one-output head).

The compiled programs take the arrays as an argument (never as constants), so two
trainings with equal shapes share one program. The train partition is padded with
fully masked sequences to a multiple of the batch size (and optionally to a fixed
capacity, see :func:`device_arrays`) and carries the traced number of real sequences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
REQUIRED = ("train", "dev")


def _as_array(value: Any, what: str) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype == bool:
        return a
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int32)
    raise ValueError(f"{what}: unsupported dtype {a.dtype}")


def make_partition(inputs: Any, mask: Any = None, targets: Mapping[str, Any] | None = None):
    """Validates and converts one partition (see the module docstring).

    Args:
      inputs: ``[N, T, ...]`` or ``{view: [N, T, ...]}``.
      mask: ``[N, T]`` bool, True on valid frames; ``None``: all valid.
      targets: ``{name: [N, T, ...]}``.

    Returns:
      ``{"inputs", "mask", "targets"}`` as NumPy arrays.
    """
    if isinstance(inputs, Mapping):
        if not inputs:
            raise ValueError("inputs: an empty dict of views")
        conv = {str(k): _as_array(v, f"inputs[{k!r}]") for k, v in inputs.items()}
    else:
        conv = _as_array(inputs, "inputs")
    leaves = jax.tree_util.tree_leaves_with_path(conv)
    for path, a in leaves:
        if a.ndim < 3:
            name = jax.tree_util.keystr(path) or ""
            raise ValueError(f"inputs{name} must be [N, T, ...]; got shape {a.shape}")
    nt = leaves[0][1].shape[:2]
    for path, a in leaves:
        if a.shape[:2] != nt:
            raise ValueError(f"inputs{jax.tree_util.keystr(path)}: [N, T] {a.shape[:2]} != {nt}")
    mask = np.ones(nt, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != nt:
        raise ValueError(f"mask shape {mask.shape} does not match inputs [N, T] = {nt}")
    out_targets = {}
    for name, value in dict(targets or {}).items():
        a = _as_array(value, f"target {name!r}")
        if a.ndim == 2 and np.issubdtype(a.dtype, np.floating):
            a = a[..., None]
        if a.ndim < 2 or a.shape[:2] != nt:
            raise ValueError(f"target {name!r} has shape {a.shape}; expected [N, T, ...] = {nt}")
        out_targets[str(name)] = a
    return {"inputs": conv, "mask": mask, "targets": out_targets}


def prepare_data(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validates a data dict and converts every partition with :func:`make_partition`.

    Raises:
      ValueError: naming the partition and field (missing ``train``/``dev``, bad
        shapes, views or trailing shapes that differ between partitions).
    """
    for part in REQUIRED:
        if part not in data:
            raise ValueError(f"data needs a {part!r} partition; got {sorted(data)}")
    out = {}
    for name, p in data.items():
        if "inputs" not in p:
            raise ValueError(f"partition {name!r} has no 'inputs'; keys: {sorted(p)}")
        try:
            out[name] = make_partition(p["inputs"], p.get("mask"), p.get("targets"))
        except ValueError as e:
            raise ValueError(f"partition {name!r}: {e}") from None
    ref = _frame_shapes(out["train"]["inputs"])
    for name, p in out.items():
        if _frame_shapes(p["inputs"]) != ref:
            raise ValueError(
                f"partition {name!r}: inputs per frame {_frame_shapes(p['inputs'])} differ "
                f"from train's {ref}"
            )
    return out


def _frame_shapes(inputs: PyTree) -> PyTree:
    return jax.tree.map(lambda a: (a.shape[2:], str(a.dtype)), inputs)


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    pad = rows - a.shape[0]
    return np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a


def train_rows(num: int, batch_size: int, capacity: int | None = None) -> int:
    """Rows of the padded train arrays: ``max(num, capacity)`` rounded up to a batch."""
    cap = max(int(num), int(capacity or 0))
    return math.ceil(cap / batch_size) * batch_size


def device_arrays(
    data: Mapping[str, Mapping[str, Any]],
    *,
    batch_size: int,
    train_targets: tuple[str, ...],
    score_target: str,
    capacity: int | None = None,
) -> dict[str, Any]:
    """The arrays a training program takes (NumPy; the caller places them).

    Args:
      data: the output of :func:`prepare_data`.
      batch_size: sequences per minibatch.
      train_targets: targets the objective's terms read.
      score_target: the dev score's target.
      capacity: pad the train partition to at least this many sequences, so that
        trainings on different numbers of sequences share one program (curriculum
        stages); the extra rows are fully masked and never sampled.

    Returns:
      ``{"train": {"inputs", "mask", "targets", "count"}, "dev": {"inputs", "mask",
      "targets"}}``; ``count`` (int32) is the number of real train sequences.
    """
    tr, dev = data["train"], data["dev"]
    n = tr["mask"].shape[0]
    rows = train_rows(n, batch_size, capacity)
    train = {
        "inputs": jax.tree.map(lambda a: _pad_rows(a, rows), tr["inputs"]),
        "mask": _pad_rows(tr["mask"], rows),
        "targets": {k: _pad_rows(tr["targets"][k], rows) for k in train_targets},
        "count": np.int32(n),
    }
    return {"train": train, "dev": eval_arrays(dev, score_target)}


def eval_arrays(part: Mapping[str, Any], score_target: str) -> dict[str, Any]:
    """``{"inputs", "mask", "targets": {score_target}}`` of one partition."""
    return {
        "inputs": part["inputs"],
        "mask": part["mask"],
        "targets": {score_target: part["targets"][score_target]},
    }


def example_inputs(inputs: PyTree) -> PyTree:
    """Zeros of one sequence (``[1, T, ...]``) with the dtypes of ``inputs``: for ``init``."""
    return jax.tree.map(lambda a: jnp.zeros((1, *a.shape[1:]), a.dtype), inputs)


__all__ = [
    "device_arrays",
    "eval_arrays",
    "example_inputs",
    "make_partition",
    "prepare_data",
    "train_rows",
]
