"""``run_grid``: expansion -> the one driver (:func:`ddat_jax.train.fit`) -> selection.

Continuous knobs (term weights, learning rate, L2, input noise) and seeds are
arguments of a training, so every member of one model shape is one program of
:func:`~ddat_jax.train.fit` (vmap / map / shard_map over the devices, per backend).
Architectures (``grid.arch``) change parameter shapes; each group of
:func:`~ddat_jax.train.grid.padding.group_shapes` is one program of the model's padded
version (:data:`ddat_jax.models.padded.PADDERS`; exact: a padded member computes what
its unpadded model computes). Workdir: ``results/`` (see
:mod:`ddat_jax.train.grid.select`) plus one fit folder per program (the workdir itself
for one program, ``group<g>/`` for several).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from ddat_jax.models.padded import padding_for
from ddat_jax.train import engine
from ddat_jax.train.config import objective_from_config
from ddat_jax.train.data import eval_arrays, prepare_data
from ddat_jax.train.grid import expand, select
from ddat_jax.train.grid.padding import group_shapes, padded_init_params
from ddat_jax.train.loop import FitResult, fit, run_options_from_config
from ddat_jax.train.objectives import Objective

PyTree = Any
_INT_COLUMNS = ("best_epoch", "stopped_epoch", "nonfinite_epoch")


@functools.partial(jax.jit, static_argnames=("spec",))
def _scores(params, part, *, spec):
    return jax.lax.map(lambda p: engine.evaluate(spec, p, part), params)


def score_members(spec: engine.TrainSpec, params: PyTree, data: Mapping[str, Any]) -> np.ndarray:
    """Each member's score (the objective's :class:`Score`) on ``data["test"]``; NaN if none."""
    k = jax.tree.leaves(params)[0].shape[0]
    name = spec.objective.score.target_name
    if "test" not in data or name not in data["test"]["targets"]:
        return np.full((k,), np.nan)
    return np.asarray(_scores(params, eval_arrays(data["test"], name), spec=spec), np.float64)


def _groups(grid: Any, table: pd.DataFrame) -> list[tuple[np.ndarray, list | None]]:
    """``[(member indices, shapes or None)]``, one entry per program."""
    if "layers" not in table:
        return [(np.arange(len(table)), None)]
    shapes = list(zip(table["layers"], table["units"], strict=True))
    out = []
    for group in group_shapes(shapes, str(grid.arch_grouping)):
        idx = np.array([i for i, s in enumerate(shapes) if tuple(s) in set(group)], np.int64)
        out.append((idx, group))
    return out


def _record(result: pd.DataFrame, idx, group: int, res: FitResult, test: np.ndarray) -> None:
    """Writes one program's members into the result table (in place)."""
    for c in ("best_dev_score", "test_score", *_INT_COLUMNS, "group"):
        if c not in result:
            result[c] = np.nan if c.endswith("score") else np.int64(-1)
    result.loc[idx, "best_dev_score"] = res.best_score
    result.loc[idx, "test_score"] = test
    for c in _INT_COLUMNS:
        result.loc[idx, c] = np.asarray(getattr(res, c), np.int64)
    result.loc[idx, "group"] = group


def _check_weights(objective: Objective, swept: list[str]) -> None:
    missing = [w for w in swept if w not in objective.weight_keys]
    if missing:
        raise ValueError(
            f"grid loss-weight heads {missing} are not weights of the objective's terms; "
            f"weights: {list(objective.weight_keys)}"
        )


def run_grid(
    config: Any,
    data: Mapping[str, Any],
    *,
    workdir: str | Path,
    build_model_fn: Callable[..., Any],
    key: jax.Array | None = None,
    objective: Objective | None = None,
    devices: tuple | None = None,
    progress: Callable[[str], None] | None = None,
    label: str = "grid",
) -> pd.DataFrame:
    """Trains every member of ``config.grid`` and writes the results.

    Args:
      config: ``train``, ``hparams`` and ``grid`` sections (``seed`` if ``key`` is None).
      data: the engine's data dict (``train``, ``dev``, optional ``test``).
      workdir: the grid's folder (fit folders and ``results/``).
      build_model_fn: ``build_model_fn()`` for a grid without ``arch``;
        ``build_model_fn(num_layers=L, hidden_size=H)`` for one architecture.
      key: the system's key (:func:`ddat_jax.train.system_key`); members get
        ``member_keys(key, seeds)[seed]``. Default ``jax.random.key(config.seed)``.
      objective: default :func:`~ddat_jax.train.objective_from_config` over the heads.
      devices: devices to shard members over; default all (one if ``grid.shard`` is
        False).
      progress, label: progress lines (see :func:`~ddat_jax.train.fit`).

    Returns:
      The :func:`expand_grid` table with ``best_dev_score``, ``best_epoch``,
      ``stopped_epoch``, ``nonfinite_epoch``, ``test_score``, ``group`` and ``selected``
      per member; ``attrs["best"]`` (as in ``grid_best.json``), ``attrs["programs"]``
      (per program: members, shapes, padded, seconds, compile seconds) and
      ``attrs["best_params"]`` (the selected member's best parameters, unpadded).
    """
    grid = expand.grid_section(config)
    table = expand.expand_grid(config)
    hparams = expand.member_hparams(config, table)
    key = jax.random.key(int(config.get("seed", 0))) if key is None else key
    keys = expand.table_keys(key, table)
    if devices is None:
        devices = tuple(jax.devices()) if bool(grid.shard) else tuple(jax.devices()[:1])
    data = prepare_data(data)
    result = table.copy()
    best_params, programs = {}, []
    groups = _groups(grid, table)
    for g, (idx, shapes) in enumerate(groups):
        res, spec, extract, info = _run_group(
            config,
            data,
            build_model_fn,
            objective,
            hparams,
            keys,
            table,
            idx,
            shapes,
            workdir=Path(workdir) if len(groups) == 1 else Path(workdir) / f"group{g}",
            devices=devices,
            progress=progress,
            label=f"{label} {g + 1}/{len(groups)}",
        )
        _record(result, idx, g, res, score_members(spec, res.best_params, data))
        for j, i in enumerate(idx):
            best_params[int(i)] = (jax.tree.map(lambda a, j=j: a[j], res.best_params), extract)
        programs.append(info)
    best = select.select_best(result, str(grid.select))
    result["selected"] = result["member"] == best["member"]
    params, extract = best_params[int(best["member"])]
    params = jax.tree.map(np.asarray, extract(params) if extract else params)
    result.attrs.update(best=best, programs=programs, best_params=params)
    select.write_results(result, best, params, Path(workdir))
    return result


def _run_group(
    config,
    data,
    build_model_fn,
    objective,
    hparams,
    keys,
    table,
    idx,
    shapes,
    *,
    workdir,
    devices,
    progress,
    label,
) -> tuple[FitResult, Any, Any, dict]:
    """One program: the group's (padded) model, spec, initial params and fit."""
    grid = expand.grid_section(config)
    extract, init = None, None
    if shapes is None:
        model = build_model_fn()
    else:
        model = build_model_fn(num_layers=shapes[0][0], hidden_size=shapes[0][1])
    if objective is None:
        heads = engine.output_shapes(model, data["train"]["inputs"])
        objective = objective_from_config(config.train, sorted(heads))
    _check_weights(objective, expand.swept_weight_keys(config, table))
    if shapes is not None and len(shapes) > 1:
        padding = padding_for(model, shapes)
        model, extract = padding.model, padding.extract
        member_shapes = list(zip(table["layers"][idx], table["units"][idx], strict=True))
        init = padded_init_params(
            build_model_fn, padding, member_shapes, keys[idx], data["train"]["inputs"]
        )
    spec = engine.train_spec_from_config(config.train, model, objective)
    options = run_options_from_config(
        config.train,
        strategy=str(grid.strategy),
        chunk_size=int(grid.chunk_size),
        devices=devices,
        label=label,
    )
    hp = jax.tree.map(lambda a: a[idx], hparams)
    res = fit(
        spec,
        data,
        hp,
        keys[idx],
        workdir=workdir,
        options=options,
        member_params=init,
        progress=progress,
    )
    info = {
        "members": len(idx),
        "shapes": None if shapes is None else [list(s) for s in shapes],
        "padded": extract is not None,
        "devices": len(devices),
        "seconds": res.seconds,
        "compile_s": res.compile_seconds,
    }
    return res, spec, extract, info


__all__ = ["run_grid", "score_members"]
