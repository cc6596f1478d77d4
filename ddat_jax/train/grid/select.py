"""Selecting a grid's best setting and member; writing and reading the grid's results.

Files under ``workdir/results/``: ``grid.csv`` (one row per member: settings, scores,
epochs), ``grid_best.json`` (the selected member and its setting's mean ± std over
seeds), ``grid_best_params.msgpack`` (the selected member's best parameters).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flax import serialization

from ddat_jax import atomic

SELECTIONS = ("mean_over_seeds", "best_member")
RESULTS_DIR = "results"
GRID_CSV = "grid.csv"
GRID_BEST = "grid_best.json"
GRID_BEST_PARAMS = "grid_best_params.msgpack"


def json_scalar(v: Any) -> Any:
    """A JSON scalar from a NumPy/pandas value (non-finite floats become ``None``)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    return v


def _mean_std(values: pd.Series) -> tuple[Any, Any]:
    v = values.to_numpy(np.float64)
    return json_scalar(np.mean(v)), json_scalar(np.std(v))


def select_best(result: pd.DataFrame, select: str = "mean_over_seeds") -> dict[str, Any]:
    """The selected member by best dev score (a non-finite score never wins).

    Args:
      result: one row per member with ``member``, ``setting``, ``seed``,
        ``best_dev_score`` (and optionally ``test_score``).
      select: ``"mean_over_seeds"`` (the setting with the best mean over its seeds, then
        its best seed) or ``"best_member"``.

    Returns:
      A JSON-able dict: the member's row, ``select``, ``seeds`` and, over the selected
      setting's seeds, ``setting_mean_dev_score`` / ``setting_std_dev_score`` and
      ``setting_mean_test_score`` / ``setting_std_test_score`` (population std).
    """
    if select not in SELECTIONS:
        raise ValueError(f"Unknown grid.select {select!r}; valid: {list(SELECTIONS)}")
    score = result["best_dev_score"].where(np.isfinite(result["best_dev_score"]), -np.inf)
    if select == "best_member":
        pos = int(np.argmax(score.to_numpy()))
    else:
        means = score.groupby(result["setting"]).mean()
        setting = int(means.index[int(np.argmax(means.to_numpy()))])
        rows = np.flatnonzero(result["setting"].to_numpy() == setting)
        pos = int(rows[int(np.argmax(score.to_numpy()[rows]))])
    # Column by column, so integer columns stay integers.
    best = {c: json_scalar(result[c].iloc[pos]) for c in result.columns if c != "selected"}
    same = result[result["setting"] == best["setting"]]
    best["select"] = select
    best["seeds"] = len(same)
    best["setting_mean_dev_score"], best["setting_std_dev_score"] = _mean_std(
        same["best_dev_score"]
    )
    if "test_score" in same:
        best["setting_mean_test_score"], best["setting_std_test_score"] = _mean_std(
            same["test_score"]
        )
    return best


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def write_results(result: pd.DataFrame, best: Mapping[str, Any], params: Any, workdir) -> None:
    """Writes ``results/grid.csv``, ``results/grid_best.json`` and the best parameters."""
    out = Path(workdir) / RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    table = result.copy()
    table.attrs = {}
    atomic.write_bytes(out / GRID_CSV, table.to_csv(index=False).encode())
    atomic.write_bytes(out / GRID_BEST, (json.dumps(dict(best), indent=2) + "\n").encode())
    host = {k: np.asarray(v) for k, v in _flatten(params).items()}
    atomic.write_bytes(out / GRID_BEST_PARAMS, serialization.msgpack_serialize(host))


def load_best_params(workdir) -> dict:
    """Reads ``results/grid_best_params.msgpack`` back as a nested parameter dict."""
    path = Path(workdir) / RESULTS_DIR / GRID_BEST_PARAMS
    flat = serialization.msgpack_restore(path.read_bytes())
    nested: dict = {}
    for name, value in flat.items():
        node = nested
        parts = name.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return nested


__all__ = [
    "GRID_BEST",
    "GRID_BEST_PARAMS",
    "GRID_CSV",
    "RESULTS_DIR",
    "SELECTIONS",
    "json_scalar",
    "load_best_params",
    "select_best",
    "write_results",
]
