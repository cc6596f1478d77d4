"""Grid searches as one compiled program, sharded over every device.

A config's ``grid`` section (:func:`default_grid_config`) names the swept values;
:func:`expand_grid` turns it into a table (one row per member: the Cartesian product of
the swept axes, seeds innermost); :func:`run_grid` trains every member and writes
``workdir/results/grid.csv`` (settings + per-member dev/test metrics) and
``workdir/results/grid_best.json`` (the selected setting), with the selected member's
best parameters in ``workdir/results/grid_best_params.msgpack``.

Continuous knobs (loss weights ``w_E``/``w_σ``, auxiliary weight ``α``, learning rate,
L2, input noise) and seeds are arguments of the engine's ``train(hparams, key)``
(:mod:`ddat_jax.train.engine`), so all members that share a model shape are **one
program**. Architectures (``grid.arch``) change parameter shapes; they are made one
program by padding to the largest shape (:class:`ddat_jax.models.padded.PaddedMultiTaskRNN`,
exact: padded units stay at zero, extra layers pass their input through), in groups
chosen by :func:`group_shapes`.

Execution strategies (``grid.strategy``), per device:

* ``"vmap"``: ``jax.vmap`` over members — batches the small recurrent matmuls; the win
  on GPU/TPU, where a scan step is latency-bound.
* ``"map"``: ``lax.map`` over members inside one jit — members one after another inside
  the program, memory of one member; the win on CPU, where one small recurrent matmul
  already runs near a core's peak and vmapping only adds ``[T, K, B, 3H]`` temporaries
  that miss cache.
* ``"chunked"``: ``lax.map(..., batch_size=grid.chunk_size)`` — vmap over chunks of
  members, map over chunks (bounds the memory of a vmap).
* ``"loop"``: a Python loop over members of one jitted ``train`` (the reference).
* ``"auto"`` (default): ``"map"`` on CPU, ``"vmap"`` on GPU/TPU (the README's
  section "Execution strategy per backend" has the measurements behind it).

Sharding: with more than one device (``grid.shard``), the member axis is split over a
1-D ``Mesh`` of all devices (``jax.shard_map``; members padded to a multiple of the
device count by repeating the last one) and each device runs the strategy on its share.
The same code runs on one CPU, on ``N`` host-platform CPU devices (see
:func:`configure_host_devices`), on 8 GPUs or on a TPU slice; on several hosts, call
``jax.distributed.initialize()`` first and run the same program on every host (inputs
are built with ``jax.make_array_from_callback`` and results gathered with
``multihost_utils.process_allgather``).

PRNG: ``root = jax.random.key(config.seed)``; ``seed_keys = jax.random.split(root,
grid.seeds)``; member ``i`` uses ``seed_keys[table.seed[i]]`` — all settings share the
same seeds (common random numbers: the same initialisation and minibatch order for the
same seed and shape).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
from flax import serialization
from jax._src import xla_bridge
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ddat_jax import atomic
from ddat_jax.models import MultiTaskRNN
from ddat_jax.models.padded import PaddedMultiTaskRNN, embed_params, extract_params
from ddat_jax.train import frame_ccc, make_train_fns, predict, prepare_data
from ddat_jax.train.config import train_section

PyTree = Any

STRATEGIES = ("auto", "vmap", "map", "chunked", "loop")
GROUPINGS = ("auto", "all", "none", "depth", "width")
SELECTIONS = ("mean_over_seeds", "best_member")
# Hyper-parameter axes in table order (outermost first); seeds are always innermost.
_HP_AXES = ("w_e", "alpha", "learning_rate", "l2", "noise_std")

RESULTS_DIR = "results"
GRID_CSV = "grid.csv"
GRID_BEST = "grid_best.json"
GRID_BEST_PARAMS = "grid_best_params.msgpack"


# ------------------------------------------------------------------------ host devices


def configure_host_devices(count: int | None = None) -> int:
    """Splits the host CPU into ``count`` XLA devices so that grids shard over its cores.

    Call it before the first JAX computation (importing jax is fine; creating an array
    or calling ``jax.devices()`` is too late). It sets ``jax_num_cpu_devices`` unless the
    user already chose a count (``--xla_force_host_platform_device_count`` in
    ``XLA_FLAGS`` or ``jax_num_cpu_devices``), in which case it does nothing. The setting
    only concerns the CPU platform: on a GPU/TPU machine the accelerators stay the
    default devices and the CPU devices go unused.

    Typical use, at the top of a script or ``main``::

        from ddat_jax.grid import configure_host_devices
        configure_host_devices()          # one CPU device per core
        import jax                        # ... then use jax as usual

    Args:
      count: devices to create; ``None`` means ``os.cpu_count()`` (or the CPUs this
        process may use, where the OS says).

    Returns:
      The host device count in effect (or requested), ``1`` if it could not be set
      because JAX's backends are already initialised.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    found = re.search(r"--xla_force_host_platform_device_count=(\d+)", flags)
    if found:
        return int(found.group(1))
    if count is None:
        try:
            count = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            count = os.cpu_count() or 1
    count = max(int(count), 1)
    current = int(jax.config.jax_num_cpu_devices)
    if current > 0:
        return current
    if xla_bridge.backends_are_initialized():
        return 1
    jax.config.update("jax_num_cpu_devices", count)
    return count


# ----------------------------------------------------------------------------- config


def default_grid_config() -> ml_collections.ConfigDict:
    """Returns the ``grid`` section; an empty tuple means "not swept".

    Fields:

    * ``w_e`` (tuple of float, ``()``): emotion loss weight ``w_E``; the uncertainty
      head gets ``w_σ = w_total - w_E`` (METHODS.md §2: ``0, 0.1, …, 2`` with total 2).
    * ``w_e_head`` (str, ``"emotion"``) and ``w_sigma_head`` (str, ``"uncertainty"``):
      the heads the two weights apply to.
    * ``w_total`` (float, 2.0).
    * ``alpha`` (tuple of float, ``()``): weight ``α`` of the auxiliary head
      ``alpha_head`` (METHODS.md §3: ``0, 0.1, …, 1``).
    * ``alpha_head`` (str, ``"aux"``).
    * ``learning_rate``, ``l2``, ``noise_std`` (tuples of float, ``()``): swept values
      of the ``hparams`` fields of the same names.
    * ``seeds`` (int, 1): seeds per setting (the innermost grid axis).
    * ``arch`` (tuple of ``(layers, units)``, ``()``): architectures (METHODS.md §1:
      ``{1,3,5,7,9} × {40,80,120}``); members get ``num_layers``/``hidden_size`` from it.
    * ``arch_grouping`` (str, ``"auto"``): how shapes are grouped into padded programs,
      see :func:`group_shapes`.
    * ``strategy`` (str, ``"auto"``): ``"auto" | "vmap" | "map" | "chunked" | "loop"``.
    * ``chunk_size`` (int, 4): members per vmapped chunk of ``"chunked"``.
    * ``shard`` (bool, True): split members over all devices when there are several.
    * ``select`` (str, ``"mean_over_seeds"``): the best setting maximises the mean
      best-dev CCC over its seeds (then its best seed is the best member), or
      ``"best_member"``: the single member with the highest best-dev CCC.
    """
    g = ml_collections.ConfigDict()
    g.w_e = ()
    g.w_e_head = "emotion"
    g.w_sigma_head = "uncertainty"
    g.w_total = 2.0
    g.alpha = ()
    g.alpha_head = "aux"
    g.learning_rate = ()
    g.l2 = ()
    g.noise_std = ()
    g.seeds = 1
    g.arch = ()
    g.arch_grouping = "auto"
    g.strategy = "auto"
    g.chunk_size = 4
    g.shard = True
    g.select = "mean_over_seeds"
    return g


def _grid_section(config: Any) -> Any:
    return config.grid if "grid" in config else config


def validate_grid_config(grid: Any) -> None:
    """Raises ``ValueError`` for an invalid ``grid`` section."""
    for name, valid in (
        ("strategy", STRATEGIES),
        ("arch_grouping", GROUPINGS),
        ("select", SELECTIONS),
    ):
        if grid[name] not in valid:
            raise ValueError(f"Unknown grid.{name} {grid[name]!r}; valid: {list(valid)}")
    if int(grid.seeds) < 1:
        raise ValueError(f"grid.seeds must be >= 1, got {grid.seeds}")
    if int(grid.chunk_size) < 1:
        raise ValueError(f"grid.chunk_size must be >= 1, got {grid.chunk_size}")
    for shape in grid.arch:
        if len(shape) != 2 or int(shape[0]) < 1 or int(shape[1]) < 1:
            raise ValueError(f"grid.arch entries must be (layers >= 1, units >= 1), got {shape}")


def frange(start: float, stop: float, step: float) -> tuple[float, ...]:
    """``(start, start + step, …, stop)`` rounded to 10 decimals (``stop`` included)."""
    n = int(round((stop - start) / step))
    return tuple(round(start + i * step, 10) for i in range(n + 1))


def expand_grid(config: Any) -> pd.DataFrame:
    """The grid's members as a table.

    Args:
      config: a config with a ``grid`` section (or the section itself).

    Returns:
      One row per member, the Cartesian product in the order ``arch × w_e × alpha ×
      learning_rate × l2 × noise_std × seed`` (seed innermost) over the swept axes.
      Columns: ``member`` (0…K−1), ``setting`` (index of the setting without the seed),
      ``seed`` (0…seeds−1), then ``layers``, ``units`` (if ``arch`` is swept), ``w_e``
      and ``w_sigma`` (if ``w_e`` is swept), and one column per other swept axis.
    """
    grid = _grid_section(config)
    validate_grid_config(grid)
    axes: list[tuple[str, list]] = []
    if len(grid.arch):
        axes.append(("arch", [(int(a), int(b)) for a, b in grid.arch]))
    for name in _HP_AXES:
        values = tuple(grid[name])
        if values:
            axes.append((name, [float(v) for v in values]))
    settings = list(itertools.product(*[values for _, values in axes]))
    rows = []
    for s_index, setting in enumerate(settings):
        for seed in range(int(grid.seeds)):
            row: dict[str, Any] = {"setting": s_index, "seed": seed}
            for (name, _), value in zip(axes, setting, strict=True):
                if name == "arch":
                    row["layers"], row["units"] = value
                elif name == "w_e":
                    row["w_e"] = value
                    row["w_sigma"] = round(float(grid.w_total) - value, 10)
                else:
                    row[name] = value
            rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(0, "member", np.arange(len(table)))
    return table


def member_hparams(config: Any, table: pd.DataFrame) -> dict[str, Any]:
    """The ``hparams`` pytree of every member (leaves ``[K]`` float32 NumPy arrays).

    Args:
      config: a config with ``hparams`` and ``grid`` sections.
      table: from :func:`expand_grid`.

    Returns:
      ``{"learning_rate", "noise_std", "l2": [K], "loss_weights": {head: [K]}}``:
      ``config.hparams`` overridden by the swept columns.
    """
    grid = _grid_section(config)
    base = config.hparams
    k = len(table)

    def column(name, default):
        if name in table:
            return table[name].to_numpy(np.float32)
        return np.full((k,), default, np.float32)

    weights = {str(h): np.full((k,), float(v), np.float32) for h, v in base.loss_weights.items()}
    if "w_e" in table:
        weights[str(grid.w_e_head)] = table["w_e"].to_numpy(np.float32)
        weights[str(grid.w_sigma_head)] = table["w_sigma"].to_numpy(np.float32)
    if "alpha" in table:
        weights[str(grid.alpha_head)] = table["alpha"].to_numpy(np.float32)
    return {
        "learning_rate": column("learning_rate", base.learning_rate),
        "noise_std": column("noise_std", base.noise_std),
        "l2": column("l2", base.l2),
        "loss_weights": weights,
    }


def member_key_data(seed: int, table: pd.DataFrame) -> np.ndarray:
    """Raw PRNG key data ``[K, ...]`` (uint32): member ``i`` gets ``split(key(seed))[seed_i]``."""
    n = int(table["seed"].max()) + 1 if len(table) else 1
    keys = jax.random.split(jax.random.key(int(seed)), n)
    return np.asarray(jax.random.key_data(keys))[table["seed"].to_numpy()]


# ------------------------------------------------------------------------- strategies


def choose_strategy(strategy: str = "auto", backend: str | None = None) -> str:
    """Resolves ``"auto"``: ``"map"`` on CPU, ``"vmap"`` on GPU/TPU.

    Args:
      strategy: one of ``STRATEGIES``.
      backend: ``jax.default_backend()`` if None.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown grid strategy {strategy!r}; valid: {list(STRATEGIES)}")
    if strategy != "auto":
        return strategy
    backend = backend or jax.default_backend()
    return "map" if backend == "cpu" else "vmap"


def group_shapes(
    shapes: Sequence[tuple[int, int]], grouping: str = "auto", backend: str | None = None
) -> list[list[tuple[int, int]]]:
    """Groups architectures ``(layers, units)`` into padded programs.

    Cost model (measured by ``tools/bench_grid.py --arch``): on GPU/TPU a scan step is
    latency-bound, so a padded group costs about its deepest member's time and the
    whole grid in one program (``"all"``) wins (9 layers of time steps instead of the
    75 of running the 15 DDAT shapes one after another). On CPU a step is
    compute-bound: a padded member costs ``max_layers × max_units²`` whatever its real
    shape (3.5× the unpadded work for the DDAT grid), so ``"auto"`` runs each shape
    unpadded (``"none"``) there.

    Args:
      shapes: distinct ``(layers, units)``.
      grouping: ``"all"`` (one padded program), ``"none"`` (one per shape, no
        padding), ``"depth"`` (one per depth, widths padded), ``"width"`` (one per
        width, depths padded) or ``"auto"`` (``"none"`` on CPU, ``"all"`` elsewhere).
      backend: ``jax.default_backend()`` if None.

    Returns:
      Groups of shapes (sorted), each run as one program padded to its largest shape.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"Unknown grid.arch_grouping {grouping!r}; valid: {list(GROUPINGS)}")
    shapes = sorted({(int(a), int(b)) for a, b in shapes})
    if grouping == "auto":
        backend = backend or jax.default_backend()
        grouping = "none" if backend == "cpu" else "all"
    if grouping == "all":
        return [shapes] if shapes else []
    if grouping == "none":
        return [[s] for s in shapes]
    key = (lambda s: s[0]) if grouping == "depth" else (lambda s: s[1])
    return [list(g) for _, g in itertools.groupby(sorted(shapes, key=key), key=key)]


def _pad_members(tree: PyTree, multiple: int) -> tuple[PyTree, int]:
    k = jax.tree.leaves(tree)[0].shape[0]
    pad = (-k) % multiple
    if pad == 0:
        return tree, k
    return jax.tree.map(lambda a: np.concatenate([a, np.repeat(a[-1:], pad, 0)], 0), tree), k


def _local_runner(member_fn: Callable, strategy: str, chunk_size: int) -> Callable:
    if strategy == "vmap":
        return jax.vmap(member_fn, in_axes=(0, None))
    if strategy == "map":
        return lambda per, shared: jax.lax.map(lambda a: member_fn(a, shared), per)
    if strategy == "chunked":
        return lambda per, shared: jax.lax.map(
            lambda a: member_fn(a, shared), per, batch_size=chunk_size
        )
    raise ValueError(f"no local runner for strategy {strategy!r}")


def compile_members(
    member_fn: Callable,
    per_member: PyTree,
    shared: PyTree,
    *,
    strategy: str = "auto",
    chunk_size: int = 4,
    devices: Sequence[Any] | None = None,
) -> tuple[Callable[[], PyTree], dict[str, Any]]:
    """Compiles ``member_fn`` over all members as one program (sharded over devices).

    Args:
      member_fn: ``(member_inputs, shared) -> outputs`` for one member (pure, jittable).
      per_member: pytree of NumPy arrays with a leading member axis ``[K, ...]``.
      shared: pytree of arrays every member reads (the data), replicated.
      strategy: see :func:`choose_strategy`; ``"loop"`` compiles one member and runs
        a Python loop.
      chunk_size: members per vmapped chunk of ``"chunked"``.
      devices: devices of the 1-D mesh; ``None`` → ``jax.devices()`` (all devices of all
        hosts); one device → no sharding.

    Returns:
      ``(run, info)``: ``run()`` executes the program and returns the outputs as NumPy
      arrays with the leading member axis ``[K, ...]``; ``info`` holds ``strategy``,
      ``devices``, ``compile_s``.
    """
    strategy = choose_strategy(strategy)
    devices = list(jax.devices() if devices is None else devices)
    info: dict[str, Any] = {"strategy": strategy, "devices": len(devices)}
    t0 = time.perf_counter()
    if strategy == "loop":
        info["devices"] = 1
        fn = jax.jit(member_fn)
        k = jax.tree.leaves(per_member)[0].shape[0]
        shared_dev = jax.device_put(shared)
        first = jax.tree.map(lambda a: a[0], per_member)
        compiled = fn.lower(first, shared_dev).compile()
        info["compile_s"] = time.perf_counter() - t0

        def run_loop():
            outs = [
                compiled(jax.tree.map(lambda a, i=i: a[i], per_member), shared_dev)
                for i in range(k)
            ]
            outs = jax.device_get(outs)
            return jax.tree.map(lambda *xs: np.stack(xs), *outs)

        return run_loop, info

    local = _local_runner(member_fn, strategy, int(chunk_size))
    if len(devices) == 1:
        fn = jax.jit(local)
        per_dev = jax.device_put(per_member, devices[0])
        shared_dev = jax.device_put(shared, devices[0])
        k = jax.tree.leaves(per_member)[0].shape[0]
    else:
        mesh = Mesh(np.asarray(devices), ("grid",))
        per_member, k = _pad_members(per_member, len(devices))
        fn = jax.jit(
            jax.shard_map(
                local, mesh=mesh, in_specs=(P("grid"), P()), out_specs=P("grid"), check_vma=False
            )
        )
        per_dev = _global_arrays(per_member, NamedSharding(mesh, P("grid")))
        shared_dev = _global_arrays(shared, NamedSharding(mesh, P()))
    compiled = fn.lower(per_dev, shared_dev).compile()
    info["compile_s"] = time.perf_counter() - t0

    def run():
        out = compiled(per_dev, shared_dev)
        out = _gather(out)
        return jax.tree.map(lambda a: np.asarray(a)[:k], out)

    return run, info


def _global_arrays(tree: PyTree, sharding: Any) -> PyTree:
    def put(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

    return jax.tree.map(put, tree)


def _gather(tree: PyTree) -> PyTree:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def run_members(
    member_fn: Callable,
    per_member: PyTree,
    shared: PyTree,
    *,
    strategy: str = "auto",
    chunk_size: int = 4,
    devices: Sequence[Any] | None = None,
) -> tuple[PyTree, dict[str, Any]]:
    """:func:`compile_members` then run once; returns ``(outputs [K, ...], info)``.

    ``info`` gains ``run_s`` (wall time of the run, after compilation).
    """
    run, info = compile_members(
        member_fn, per_member, shared, strategy=strategy, chunk_size=chunk_size, devices=devices
    )
    t0 = time.perf_counter()
    out = run()
    info["run_s"] = time.perf_counter() - t0
    return out, info


# ------------------------------------------------------------------ member trainings


def make_member_train(
    config: Any, data: Mapping[str, Any], model: Any
) -> tuple[Callable, PyTree, Any]:
    """One member's training as ``member_fn(inputs, arrays)`` for :func:`run_members`.

    Built on :func:`ddat_jax.train.make_train_fns`, so a member computes exactly what
    ``make_train(config, data, model)(hparams, key)`` computes, with the data passed as
    an argument (``arrays``) instead of being baked into the program as constants.

    Args:
      config: config with a ``train`` section.
      data: the engine's data dict; an optional ``"test"`` partition with a target
        for the primary head is scored too.
      model: a linen module (unpadded or :class:`~ddat_jax.models.padded.PaddedMultiTaskRNN`).

    Returns:
      ``(member_fn, arrays, fns)``. ``member_fn({"hparams", "key_data", ["params0"]},
      arrays)`` returns ``{"best_params", "best_dev_ccc", "best_epoch", "stopped_epoch",
      "nonfinite_epoch", "test_ccc", "train_loss" [E], "dev_ccc" [E]}``; ``params0``
      (optional) replaces the engine's initial parameters (padded members).
      ``test_ccc`` is the primary head's CCC of the best parameters on the test
      partition (NaN without test targets).
    """

    fns = make_train_fns(config, data, model)
    train_cfg = train_section(config)
    primary = str(train_cfg.primary)
    eval_bs = int(train_cfg.eval_batch_size)
    arrays = {"engine": fns.arrays}
    if "test" in data:
        test = prepare_data({"train": data["train"], "dev": data["dev"], "test": data["test"]})
        test = test["test"]
        if primary in test["targets"]:
            arrays["test"] = {
                "x": jnp.asarray(test["x"]),
                "mask": jnp.asarray(test["mask"]),
                "target": jnp.asarray(test["targets"][primary][..., :1]),
            }

    def member_fn(inputs, arr):
        hparams = inputs["hparams"]
        key = jax.random.wrap_key_data(inputs["key_data"])
        state = fns.init(hparams, key)
        if "params0" in inputs:
            state = {**state, "params": inputs["params0"], "best_params": inputs["params0"]}
        state = fns.run_epochs(state, hparams, key, 0, arr["engine"], length=fns.num_epochs)
        res = fns.summarize(state)
        if "test" in arr:
            t = arr["test"]
            out = predict(model, res["best_params"], t["x"], t["mask"], eval_bs)
            test_ccc = frame_ccc(out[primary][..., :1], t["target"], t["mask"])[0]
        else:
            test_ccc = jnp.array(jnp.nan, jnp.float32)
        return {
            "best_params": res["best_params"],
            "best_dev_ccc": res["best_dev_ccc"],
            "best_epoch": res["best_epoch"],
            "stopped_epoch": res["stopped_epoch"],
            "nonfinite_epoch": res["nonfinite_epoch"],
            "test_ccc": test_ccc,
            "train_loss": res["history"]["train_loss"],
            "dev_ccc": res["history"]["dev_ccc"],
        }

    return member_fn, arrays, fns


def padded_version(model: Any, shapes: Sequence[tuple[int, int]]) -> Any:
    """The :class:`PaddedMultiTaskRNN` holding every ``(layers, units)`` of ``shapes``.

    Args:
      model: a unidirectional ``MultiTaskRNN`` whose cell, heads, backward, init and
        unroll the padded model copies.
      shapes: the group's shapes.
    """

    if not isinstance(model, MultiTaskRNN) or model.bidirectional:
        raise ValueError(
            "architecture padding needs a unidirectional MultiTaskRNN from build_model_fn; "
            f"got {type(model).__name__}"
        )
    return PaddedMultiTaskRNN(
        cell=model.cell,
        max_layers=max(s[0] for s in shapes),
        max_hidden=max(s[1] for s in shapes),
        heads=dict(model.heads),
        backward=model.backward,
        init_scale=model.init_scale,
        unroll=model.unroll,
    )


# --------------------------------------------------------------------------- run_grid


def run_grid(
    config: Any,
    data: Mapping[str, Any],
    *,
    workdir: str | Path | None,
    build_model_fn: Callable[..., Any],
    devices: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Trains every member of ``config.grid`` and writes the results.

    Members sharing a model shape run as one compiled program (``grid.strategy``,
    sharded over ``devices``); architecture grids run one program per group of
    :func:`group_shapes`, padded to the group's largest shape (a group of one shape is
    not padded). Every member computes what ``make_train(config, data,
    build_model_fn(...))(hparams_i, key_i)`` computes, up to float summation order.

    Args:
      config: config with ``seed`` (default 0), ``train``, ``hparams`` and ``grid``
        sections.
      data: the engine's data dict (``train``, ``dev``, optional ``test``).
      workdir: where ``results/grid.csv``, ``results/grid_best.json`` and
        ``results/grid_best_params.msgpack`` go (``None``: write nothing).
      build_model_fn: ``build_model_fn()`` returns the model for a grid without
        ``arch``; ``build_model_fn(num_layers=L, hidden_size=H)`` the model of one
        architecture (a unidirectional ``MultiTaskRNN`` when shapes are padded).
      devices: devices to shard over; default all (``jax.devices()``); ``grid.shard =
        False`` uses the first only.

    Returns:
      The :func:`expand_grid` table with, per member, ``best_dev_ccc``, ``best_epoch``,
      ``stopped_epoch``, ``nonfinite_epoch``, ``test_ccc``, ``group`` (program index),
      and ``selected`` (True for the selected member). ``table.attrs`` holds ``best``
      (the selected setting, as in ``grid_best.json``), ``programs`` (per program:
      strategy, devices, members, shape, compile and run seconds) and ``best_params``
      (the selected member's best parameters, unpadded).
    """
    grid = _grid_section(config)
    table = expand_grid(config)
    hparams = member_hparams(config, table)
    key_data = member_key_data(int(config.get("seed", 0)), table)
    devices = list(jax.devices() if devices is None else devices)
    if not bool(grid.shard):
        devices = devices[:1]

    if "layers" in table:
        groups = group_shapes(
            list(zip(table["layers"], table["units"], strict=True)), str(grid.arch_grouping)
        )
    else:
        groups = [[None]]

    k = len(table)
    group_of = np.zeros((k,), np.int64)
    metrics = {
        name: np.full((k,), np.nan, np.float64)
        for name in ("best_dev_ccc", "best_epoch", "stopped_epoch", "nonfinite_epoch", "test_ccc")
    }
    best_params: dict[int, PyTree] = {}
    programs = []
    take = lambda tree, idx: jax.tree.map(lambda a: np.asarray(a)[idx], tree)

    for g_index, shapes in enumerate(groups):
        if shapes == [None]:
            idx = np.arange(k)
            model = build_model_fn()
            padded = False
        else:
            in_group = {tuple(s) for s in shapes}
            idx = np.array(
                [i for i in range(k) if (table.layers[i], table.units[i]) in in_group], np.int64
            )
            padded = len(shapes) > 1
            if padded:
                model = padded_version(
                    build_model_fn(num_layers=shapes[0][0], hidden_size=shapes[0][1]), shapes
                )
            else:
                model = build_model_fn(num_layers=shapes[0][0], hidden_size=shapes[0][1])
        member_fn, arrays, fns = make_member_train(config, data, model)
        _check_weight_heads(grid, table, fns.heads)
        per_member = {"hparams": take(hparams, idx), "key_data": key_data[idx]}
        if padded:
            per_member["params0"] = padded_init_params(
                config, data, build_model_fn, model, table, idx, per_member
            )
        out, info = run_members(
            member_fn,
            per_member,
            arrays,
            strategy=str(grid.strategy),
            chunk_size=int(grid.chunk_size),
            devices=devices,
        )
        info.update(
            group=g_index,
            members=len(idx),
            padded=padded,
            shape=None if shapes == [None] else [list(s) for s in shapes],
        )
        programs.append(info)
        group_of[idx] = g_index
        for name in metrics:
            metrics[name][idx] = np.asarray(out[name], np.float64)
        for j, i in enumerate(idx):
            best_params[int(i)] = (take(out["best_params"], j), model.cell if padded else None)

    result = table.copy()
    for name, values in metrics.items():
        if name in ("best_epoch", "stopped_epoch", "nonfinite_epoch"):
            result[name] = values.astype(np.int64)
        else:
            result[name] = values
    result["group"] = group_of
    best = select_best(result, str(grid.select))
    result["selected"] = result["member"] == best["member"]
    params, padded_cell = best_params[int(best["member"])]
    if padded_cell is not None:
        params = extract_params(params, cell=padded_cell)
    params = jax.tree.map(np.asarray, params)
    result.attrs["best"] = best
    result.attrs["programs"] = programs
    result.attrs["best_params"] = params
    if workdir is not None:
        write_results(result, best, params, Path(workdir))
    return result


def _check_weight_heads(grid: Any, table: pd.DataFrame, heads: Sequence[str]) -> None:
    needed = []
    if "w_e" in table:
        needed += [str(grid.w_e_head), str(grid.w_sigma_head)]
    if "alpha" in table:
        needed.append(str(grid.alpha_head))
    missing = [h for h in needed if h not in heads]
    if missing:
        raise ValueError(
            f"grid loss-weight heads {missing} are not heads of the model; heads: {list(heads)}"
        )


def padded_init_params(
    config: Any,
    data: Mapping[str, Any],
    build_model_fn: Callable[..., Any],
    padded_model: Any,
    table: pd.DataFrame,
    idx: np.ndarray,
    per_member: Mapping[str, Any],
) -> PyTree:
    """Initial parameters of padded members: each member's unpadded init, embedded.

    Member ``j`` (table row ``idx[j]``) is initialised exactly as the engine initialises
    ``build_model_fn(num_layers=L, hidden_size=H)`` with its hparams and key, then
    embedded with :func:`~ddat_jax.models.padded.embed_params`, so a padded member
    starts (and ends) where its unpadded training would.

    Args:
      config: the config (``train`` section).
      data: the engine's data dict.
      build_model_fn: see :func:`run_grid`.
      padded_model: the group's :class:`PaddedMultiTaskRNN`.
      table: from :func:`expand_grid` (``layers``, ``units``).
      idx: table rows of the group's members.
      per_member: ``{"hparams": pytree of [len(idx)], "key_data": [len(idx), ...]}``.

    Returns:
      Padded parameters with a leading member axis (NumPy).
    """

    out = []
    cache: dict[tuple[int, int], Callable] = {}
    for j, i in enumerate(idx):
        shape = (int(table.layers[i]), int(table.units[i]))
        if shape not in cache:
            fns = make_train_fns(
                config, data, build_model_fn(num_layers=shape[0], hidden_size=shape[1])
            )
            cache[shape] = jax.jit(
                lambda hp, kd, f=fns: f.init(hp, jax.random.wrap_key_data(kd))["params"]
            )
        hp = jax.tree.map(lambda a, j=j: a[j], per_member["hparams"])
        params = cache[shape](hp, per_member["key_data"][j])
        out.append(
            embed_params(
                jax.device_get(params),
                max_layers=padded_model.max_layers,
                max_hidden=padded_model.max_hidden,
                cell=padded_model.cell,
            )
        )
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *out)


def select_best(result: pd.DataFrame, select: str = "mean_over_seeds") -> dict[str, Any]:
    """The selected setting and member (by best-dev CCC; non-finite CCC never wins).

    Args:
      result: the table of :func:`run_grid` (needs ``setting``, ``seed``,
        ``best_dev_ccc``).
      select: ``"mean_over_seeds"`` or ``"best_member"`` (see :func:`default_grid_config`).

    Returns:
      A JSON-able dict: the member's row (settings and metrics), plus
      ``setting_mean_dev_ccc``, ``setting_std_dev_ccc``, ``setting_mean_test_ccc`` over
      the setting's seeds and ``select``.
    """
    if select not in SELECTIONS:
        raise ValueError(f"Unknown grid.select {select!r}; valid: {list(SELECTIONS)}")
    score = result["best_dev_ccc"].where(np.isfinite(result["best_dev_ccc"]), -np.inf)
    if select == "best_member":
        member = int(result["member"].iloc[int(np.argmax(score.to_numpy()))])
    else:
        means = score.groupby(result["setting"]).mean()
        setting = int(means.index[int(np.argmax(means.to_numpy()))])
        rows = result["setting"] == setting
        member = int(result["member"][rows].iloc[int(np.argmax(score[rows].to_numpy()))])
    pos = int(np.flatnonzero(result["member"].to_numpy() == member)[0])
    # Column by column, so integer columns stay integers.
    best = {c: _json_scalar(result[c].iloc[pos]) for c in result.columns if c != "selected"}
    same = result[result["setting"] == best["setting"]]
    best.update(
        select=select,
        setting_mean_dev_ccc=_json_scalar(same["best_dev_ccc"].mean()),
        setting_std_dev_ccc=_json_scalar(same["best_dev_ccc"].std(ddof=0)),
        setting_mean_test_ccc=_json_scalar(same["test_ccc"].mean()),
        seeds=len(same),
    )
    return best


def _json_scalar(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    return v


def write_results(result: pd.DataFrame, best: Mapping[str, Any], params: PyTree, workdir: Path):
    """Writes ``results/grid.csv``, ``results/grid_best.json`` and the best parameters."""
    out = Path(workdir) / RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    table = result.copy()
    table.attrs = {}
    atomic.write_bytes(out / GRID_CSV, table.to_csv(index=False).encode())
    atomic.write_bytes(out / GRID_BEST, (json.dumps(dict(best), indent=2) + "\n").encode())
    host = {k: np.asarray(v) for k, v in _flatten(params).items()}
    atomic.write_bytes(out / GRID_BEST_PARAMS, serialization.msgpack_serialize(host))


def load_best_params(workdir: str | Path) -> dict:
    """Reads ``results/grid_best_params.msgpack`` back as a nested parameter dict."""
    flat = serialization.msgpack_restore(
        (Path(workdir) / RESULTS_DIR / GRID_BEST_PARAMS).read_bytes()
    )
    nested: dict = {}
    for path, value in flat.items():
        node = nested
        parts = path.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return nested


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "/"))
        else:
            out[name] = v
    return out


__all__ = [
    "GROUPINGS",
    "SELECTIONS",
    "STRATEGIES",
    "choose_strategy",
    "compile_members",
    "configure_host_devices",
    "default_grid_config",
    "expand_grid",
    "frange",
    "group_shapes",
    "load_best_params",
    "make_member_train",
    "member_hparams",
    "member_key_data",
    "padded_init_params",
    "padded_version",
    "run_grid",
    "run_members",
    "select_best",
    "validate_grid_config",
    "write_results",
]
