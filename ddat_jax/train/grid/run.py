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

Several processes (a ``jax.distributed`` job whose every process calls ``run_grid`` with
the same config, data and a workdir on a shared file system): the members of every
program are split over the processes
(:func:`ddat_jax.experiment.distributed.split_members`: process ``p`` of ``N`` takes
positions ``p, p+N, ...`` of the program's member list; a process with no member in a
program skips it). Each process fits its slice on its local devices
(``jax.local_devices()``) in ``<program folder>/p<i>of<N>/`` (the fit's files,
process-local checkpoints in ``checkpoints_local/``; named after the process count, so a
re-run with the same count resumes and one with another count trains afresh beside it)
and writes its part there:
``grid_part_params.msgpack`` (its members' best parameters, unpadded) then
``grid_part.json`` (the marker: members, scores, epochs, program info), both atomically,
and publishes it in the job's key-value store. Every process waits for every part
(failures of other processes raise :class:`~ddat_jax.experiment.distributed.DistributedError`
naming the process; every wait has the cluster's timeout), assembles the full table in
member order and selects the best (the same on every process); process 0 alone writes
``results/`` (the files of a one-process run), and the others wait until it has, then
return the same table.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from flax import serialization

from ddat_jax import atomic
from ddat_jax.experiment import distributed
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
PART_MARKER = "grid_part.json"
PART_PARAMS = "grid_part_params.msgpack"


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


def _columns(res: FitResult, test: np.ndarray) -> dict[str, np.ndarray]:
    """One program's per-member columns of the result table."""
    out = {"best_dev_score": np.asarray(res.best_score, np.float64), "test_score": test}
    out.update({c: np.asarray(getattr(res, c), np.int64) for c in _INT_COLUMNS})
    return out


def _record(result: pd.DataFrame, idx, group: int, columns: Mapping[str, Any]) -> None:
    """Writes one program's members (``columns`` in ``idx`` order) into the result table
    (in place)."""
    for c in ("best_dev_score", "test_score", *_INT_COLUMNS, "group"):
        if c not in result:
            result[c] = np.nan if c.endswith("score") else np.int64(-1)
    result.loc[idx, "best_dev_score"] = np.asarray(columns["best_dev_score"], np.float64)
    result.loc[idx, "test_score"] = np.asarray(columns["test_score"], np.float64)
    for c in _INT_COLUMNS:
        result.loc[idx, c] = np.asarray(columns[c], np.int64)
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
    cluster: distributed.Cluster | None = None,
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
        False), in a several-process job this process's local devices; a split grid
        uses the given devices that are local to this process.
      progress, label: progress lines (see :func:`~ddat_jax.train.fit`).
      cluster: the processes to split members over; default
        :func:`ddat_jax.experiment.distributed.job` (one process unless a
        several-process ``jax.distributed`` job is running and this call is not inside
        :func:`~ddat_jax.experiment.distributed.local`). Every process of a split grid
        must call ``run_grid`` with the same arguments (and in the same order as its
        other split grids); its ``timeout_s`` limits every wait for another process.

    Returns:
      The :func:`expand_grid` table with ``best_dev_score``, ``best_epoch``,
      ``stopped_epoch``, ``nonfinite_epoch``, ``test_score``, ``group`` and ``selected``
      per member; ``attrs["best"]`` (as in ``grid_best.json``), ``attrs["programs"]``
      (per program: members, shapes, padded, seconds, compile seconds; split grids:
      devices summed, the slowest process's seconds, ``processes`` per process) and
      ``attrs["best_params"]`` (the selected member's best parameters, unpadded). With
      several processes every process returns the same table.

    Raises:
      DistributedError: (several processes) another process failed, or a wait for
        another process outlived the cluster's timeout.
    """
    grid = expand.grid_section(config)
    table = expand.expand_grid(config)
    hparams = expand.member_hparams(config, table)
    key = jax.random.key(int(config.get("seed", 0))) if key is None else key
    keys = expand.table_keys(key, table)
    cluster = distributed.job() if cluster is None else cluster
    devices = _devices(devices, bool(grid.shard), cluster.distributed)
    data = prepare_data(data)
    if cluster.distributed:
        run = functools.partial(
            _run_split,
            config,
            data,
            build_model_fn,
            objective,
            hparams,
            keys,
            table,
            cluster=cluster,
            workdir=Path(workdir),
            devices=devices,
            progress=progress,
            label=label,
        )
        return distributed.reporting(cluster, f"grid {label!r} in {workdir}", run)
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
        _record(result, idx, g, _columns(res, score_members(spec, res.best_params, data)))
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


def _devices(devices: Sequence | None, shard: bool, split: bool) -> tuple:
    """The devices of this process's programs: ``devices`` (of a split grid: those local
    to this process) or else all (one if not ``shard``), in a several-process job only
    this process's local devices."""
    several = jax.process_count() > 1
    if devices is not None and not (several and split):
        return tuple(devices)
    if devices is not None:
        me = jax.process_index()
        devices = tuple(d for d in devices if d.process_index == me)
        if devices:
            return devices
    found = tuple(jax.local_devices() if several else jax.devices())
    return found if shard else found[:1]


# -- several processes -----------------------------------------------------------------
_calls: dict[tuple[int, str], int] = {}  # split run_grid calls so far per (process, grid)
_calls_lock = threading.Lock()


def _part_folder(process: int, num_processes: int) -> str:
    """Process ``process``'s folder in a program folder: ``p<i>of<N>``."""
    return f"p{process}of{num_processes}"


def _next_scope(
    cluster: distributed.Cluster, label: str, workdir: Path, table: pd.DataFrame
) -> str:
    """The key-value scope of this split grid: a digest of the grid (its label, the
    workdir's last name, its member table) and how many times this process has run that
    grid in this job. The same on every process even where the shared workdir is mounted
    at different paths; a grid run twice in one job gets two scopes."""
    text = f"{label}\n{workdir.name}\n{table.to_csv(index=False)}"
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    with _calls_lock:
        key = (cluster.process_id, digest)
        n = _calls[key] = _calls.get(key, 0) + 1
    return f"grid:{digest}:{n}"


def _flat(tree: Mapping, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


def _nest(flat: Mapping[str, Any]) -> dict:
    out: dict = {}
    for name, value in flat.items():
        node = out
        *path, leaf = name.split("/")
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = np.asarray(value)
    return out


def write_part(
    folder: Path,
    *,
    process: int,
    program: int,
    members: Sequence[int],
    columns: Mapping[str, Any],
    params: Mapping[int, PyTree],
    info: Mapping[str, Any],
) -> None:
    """Writes one process's part of one program: ``grid_part_params.msgpack`` (each
    member's best parameters) then the marker ``grid_part.json`` (members in order, their
    columns, the program info), each atomically."""
    folder = Path(folder)
    flat = {str(int(m)): _flat(params[int(m)]) for m in members}
    atomic.write_bytes(folder / PART_PARAMS, serialization.msgpack_serialize(flat))
    marker = {
        "process": int(process),
        "program": int(program),
        "members": [int(m) for m in members],
        "columns": {c: np.asarray(v).tolist() for c, v in columns.items()},
        "info": dict(info),
    }
    atomic.write_text(folder / PART_MARKER, json.dumps(marker, indent=1) + "\n")


def read_part(folder: Path) -> dict[str, Any]:
    """A part's marker (``write_part``), columns as NumPy arrays."""
    marker = json.loads((Path(folder) / PART_MARKER).read_text())
    marker["columns"] = {
        c: np.asarray(v, np.int64 if c in _INT_COLUMNS else np.float64)
        for c, v in marker["columns"].items()
    }
    return marker


def read_part_params(folder: Path, member: int) -> dict:
    """One member's best parameters from a part (host NumPy arrays, nested dicts)."""
    flat = serialization.msgpack_restore((Path(folder) / PART_PARAMS).read_bytes())
    return _nest(flat[str(int(member))])


def assemble(
    table: pd.DataFrame,
    programs: Sequence[Sequence[int]],
    parts: Sequence[Mapping[str, Any]],
    num_processes: int,
) -> pd.DataFrame:
    """The full result table from the processes' parts (pure).

    Args:
      table: the :func:`expand_grid` table.
      programs: each program's member indices (``_groups`` order).
      parts: markers (``read_part``), any order: ``process``, ``program``, ``members``,
        ``columns``.
      num_processes: the job's processes.

    Returns:
      ``table`` with the columns of a one-process run, rows in member order.

    Raises:
      ValueError: a part is not the slice :func:`split_members` gives its process, or a
        member has no part.
    """
    result = table.copy()
    by_key = {(int(p["program"]), int(p["process"])): p for p in parts}
    for g, idx in enumerate(programs):
        for proc in range(num_processes):
            mine = distributed.split_members([int(i) for i in idx], num_processes, proc)
            if not mine:
                continue
            part = by_key.get((g, proc))
            if part is None:
                raise ValueError(f"program {g}: no part of process {proc}")
            if [int(m) for m in part["members"]] != mine:
                raise ValueError(
                    f"program {g}, process {proc}: part holds members {part['members']}, "
                    f"expected {mine} (another grid's part?)"
                )
            _record(result, np.asarray(mine, np.int64), g, part["columns"])
    return result


def _merge_info(infos: Sequence[Mapping[str, Any]], members: int) -> dict[str, Any]:
    """One program's info from its parts' infos."""
    first = infos[0]
    return {
        "members": members,
        "shapes": first["shapes"],
        "padded": first["padded"],
        "devices": sum(int(i["devices"]) for i in infos),
        "seconds": max(float(i["seconds"]) for i in infos),
        "compile_s": max(float(i["compile_s"]) for i in infos),
        "processes": [dict(i) for i in infos],
    }


def _run_split(
    config,
    data,
    build_model_fn,
    objective,
    hparams,
    keys,
    table,
    *,
    cluster: distributed.Cluster,
    workdir: Path,
    devices: tuple,
    progress,
    label: str,
) -> pd.DataFrame:
    """``run_grid`` of one process of a several-process job (see the module docstring)."""
    grid = expand.grid_section(config)
    me, n = cluster.process_id, cluster.num_processes
    scope = _next_scope(cluster, label, workdir, table)
    groups = _groups(grid, table)
    folders = [workdir if len(groups) == 1 else workdir / f"group{g}" for g in range(len(groups))]
    for g, (idx, shapes) in enumerate(groups):
        mine = distributed.split_members([int(i) for i in idx], n, me)
        if not mine:
            continue
        folder = folders[g] / _part_folder(me, n)
        res, spec, extract, info = _run_group(
            config,
            data,
            build_model_fn,
            objective,
            hparams,
            keys,
            table,
            np.asarray(mine, np.int64),
            shapes,
            workdir=folder,
            devices=devices,
            progress=progress,
            label=f"{label} {g + 1}/{len(groups)} p{me}/{n}",
        )
        params = {}
        for j, m in enumerate(mine):
            p = jax.tree.map(lambda a, j=j: np.asarray(a[j]), res.best_params)
            params[m] = jax.tree.map(np.asarray, extract(p) if extract else p)
        columns = _columns(res, score_members(spec, res.best_params, data))
        info = {**info, "process": me, "members": len(mine)}
        write_part(
            folder, process=me, program=g, members=mine, columns=columns, params=params, info=info
        )
    cluster.publish(scope, f"parts/p{me}", str(workdir))
    others = {
        f"parts/p{p}": p
        for p in range(n)
        if p != me and any(distributed.split_members(list(idx), n, p) for idx, _ in groups)
    }
    cluster.wait(scope, others, f"the grid parts of {label!r} in {workdir}")
    parts, owner = [], {}
    for g, (idx, _) in enumerate(groups):
        for p in range(n):
            mine = distributed.split_members([int(i) for i in idx], n, p)
            if mine:
                parts.append(read_part(folders[g] / _part_folder(p, n)))
                owner.update({m: folders[g] / _part_folder(p, n) for m in mine})
    result = assemble(table, [idx for idx, _ in groups], parts, n)
    best = select.select_best(result, str(grid.select))
    result["selected"] = result["member"] == best["member"]
    params = read_part_params(owner[int(best["member"])], int(best["member"]))
    programs = []
    for g, (idx, _) in enumerate(groups):
        infos = [p["info"] for p in parts if int(p["program"]) == g]
        programs.append(_merge_info(sorted(infos, key=lambda i: i["process"]), len(idx)))
    result.attrs.update(best=best, programs=programs, best_params=params)
    if cluster.is_coordinator:
        select.write_results(result, best, params, workdir)
        cluster.publish(scope, "results", str(workdir))
    else:
        cluster.wait(scope, {"results": 0}, f"the coordinator's results of grid {label!r}")
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


__all__ = [
    "PART_MARKER",
    "PART_PARAMS",
    "assemble",
    "read_part",
    "read_part_params",
    "run_grid",
    "score_members",
    "write_part",
]
