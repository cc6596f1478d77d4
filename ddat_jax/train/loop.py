"""The outer driver: jitted epoch chunks, checkpoints, metrics, progress, NaN report.

:func:`run_training` runs the same computation as ``make_train(...)(hparams,
key)`` but cut into chunks of ``config.train.log_every`` epochs, each one
jitted program (vmapped over the grid members when ``grid_size`` is given),
driven from a Python loop so that between chunks it can

* append one JSON object per epoch per member to ``workdir/metrics.jsonl``
  (``pandas.read_json(path, lines=True)``),
* print one progress line per chunk (epoch, train loss, dev CCC, best, ETA;
  for a grid: members still active, mean loss, best member) to stdout, since
  orbax logs every checkpoint step at ``absl`` INFO level,
* save the whole training state with an orbax ``CheckpointManager`` every
  ``config.train.checkpoint_every`` epochs (``workdir/checkpoints/<epoch>``),
* report members whose loss went NaN/Inf (they are frozen inside the jitted
  loop; the driver names them and warns, or raises if
  ``config.train.on_nonfinite == "raise"``),
* end early when every member has stopped.

Chunk ``k + 1`` is dispatched before the host handles chunk ``k``, so this host
work overlaps the device's (measured with :mod:`ddat_jax.train.bench`: about
3 ms per chunk boundary plus about 0.1–0.2 s per orbax checkpoint, against
0.5 s per epoch of a RECOLA-sized GRU grid on an H100).

A run started again with the same workdir, config, hparams and key resumes
from the latest checkpoint and ends with the same result as an uninterrupted
run: all randomness is ``fold_in(key, epoch)``-based and the chunks are the same
compiled programs.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from ddat_jax import atomic
from ddat_jax.train.config import NONFINITE_POLICIES, train_section
from ddat_jax.train.engine import make_train_fns

PyTree = Any

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def _as_typed_keys(key: jax.Array, grid_size: int | None) -> jax.Array:
    key = jnp.asarray(key) if not hasattr(key, "dtype") else key
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    if grid_size is None:
        if key.shape != ():
            raise ValueError(f"one run needs one key; got keys of shape {key.shape}")
        return key
    if key.shape == ():
        return jax.random.split(key, grid_size)
    if key.shape != (grid_size,):
        raise ValueError(f"grid of {grid_size} needs {grid_size} keys; got shape {key.shape}")
    return key


def broadcast_hparams(hparams: PyTree, grid_size: int) -> PyTree:
    """Gives every hparams leaf a leading grid axis of ``grid_size`` (scalars are repeated).

    Args:
        hparams: the pytree of :func:`ddat_jax.train.hparams_from_config`; leaves
            are scalars or ``[grid_size]`` arrays.
        grid_size: number of members.

    Returns:
        The same pytree with ``[grid_size]`` float32 leaves.
    """

    def leaf(v):
        v = jnp.asarray(v, jnp.float32)
        if v.ndim == 0:
            return jnp.broadcast_to(v, (grid_size,))
        if v.shape[0] != grid_size:
            raise ValueError(f"hparams leaf of shape {v.shape} does not match grid {grid_size}")
        return v

    return jax.tree.map(leaf, hparams)


def _json_value(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


def _flat_hparams(hparams: Mapping[str, Any], member: int | None) -> dict[str, Any]:
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(hparams)[0]:
        name = "/".join(str(getattr(p, "key", p)) for p in path)
        leaf = np.asarray(leaf)
        out[f"hp/{name}"] = _json_value(leaf if member is None else leaf[member])
    return out


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _read_metrics_before(path: Path, epoch: int) -> list[str]:
    """Lines of an existing metrics file for epochs before ``epoch`` (resume)."""
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            if json.loads(line)["epoch"] < epoch:
                kept.append(line)
        except (ValueError, KeyError):
            continue
    return kept


def make_run(
    config: Any,
    data: Mapping[str, Any],
    model: Any,
    *,
    grid_size: int | None = None,
) -> Callable[..., PyTree]:
    """Returns ``run(hparams, key, *, workdir, callback, on_nonfinite, init_params)``.

    The returned function is :func:`run_training` with the static part
    (config, data, model, grid size) bound and its jitted programs kept, so
    several runs (seeds one after another, a resumed run) compile once.
    Arguments are those of :func:`run_training`; ``on_nonfinite`` overrides
    ``config.train.on_nonfinite``.
    """
    train_cfg = train_section(config)
    fns = make_train_fns(config, data, model)
    grid = grid_size is not None
    init = jax.vmap(fns.init, in_axes=(0, 0, None)) if grid else fns.init
    init = jax.jit(init)
    summarize = jax.jit(jax.vmap(fns.summarize) if grid else fns.summarize)
    compiled: dict[int, Callable] = {}

    def chunk_fn(length: int) -> Callable:
        if length not in compiled:

            def fn(state, hp, k, first_epoch, arr):
                return fns.run_epochs(state, hp, k, first_epoch, arr, length=length)

            if grid:
                fn = jax.vmap(fn, in_axes=(0, 0, 0, None, None))
            compiled[length] = jax.jit(fn)
        return compiled[length]

    def run(hparams, key, *, workdir, callback=None, on_nonfinite=None, init_params=None):
        if on_nonfinite is not None and on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"Unknown on_nonfinite {on_nonfinite!r}; valid: {list(NONFINITE_POLICIES)}"
            )
        return _drive(
            config,
            train_cfg,
            fns,
            init,
            chunk_fn,
            summarize,
            hparams,
            key,
            workdir=workdir,
            grid_size=grid_size,
            callback=callback,
            on_nonfinite=on_nonfinite or str(train_cfg.on_nonfinite),
            init_params=init_params,
        )

    return run


def run_training(
    config: Any,
    data: Mapping[str, Any],
    model: Any,
    hparams: PyTree,
    key: jax.Array,
    *,
    workdir: str | Path,
    grid_size: int | None = None,
    callback: Callable[[int, PyTree], None] | None = None,
    init_params: PyTree | None = None,
) -> PyTree:
    """Runs a training (or a grid of them) in jitted epoch chunks with checkpoints.

    Args:
        config: a config with a ``train`` section (see :mod:`ddat_jax.train.config`);
            written to ``workdir/config.json``.
        data: the engine's data dict (see :func:`ddat_jax.train.make_train`).
        model: a linen module returning ``{head: [batch, time, size]}``.
        hparams: the hparams pytree; with ``grid_size``, leaves are scalars or
            ``[grid_size]`` arrays.
        key: a PRNG key; with ``grid_size``, one key (split into ``grid_size``
            member keys) or ``[grid_size]`` keys.
        workdir: output folder (``config.json``, ``metrics.jsonl``,
            ``checkpoints/``). A workdir holding checkpoints of the same run is
            resumed from the latest one.
        grid_size: number of members (vmapped); ``None`` for one training.
        callback: called as ``callback(epochs_done, state)`` after every chunk,
            once its metrics are written and its checkpoint (if any) saved.
        init_params: parameters to start from instead of the model's
            initialisation (shared by every member; the optimizer starts afresh).

    Returns:
        The pytree that ``train(hparams, key)`` returns (with a leading member
        axis when ``grid_size`` is given).

    Raises:
        ValueError: the workdir holds a checkpoint of a different run.
        FloatingPointError: a member went non-finite and
            ``config.train.on_nonfinite == "raise"``.
    """
    run = make_run(config, data, model, grid_size=grid_size)
    return run(hparams, key, workdir=workdir, callback=callback, init_params=init_params)


def _drive(
    config,
    train_cfg,
    fns,
    init,
    chunk_fn,
    summarize,
    hparams,
    key,
    *,
    workdir,
    grid_size,
    callback,
    on_nonfinite,
    init_params,
):
    num_epochs = fns.num_epochs
    chunk = int(train_cfg.log_every)
    checkpoint_every = int(train_cfg.checkpoint_every)
    grid = grid_size is not None
    members = grid_size if grid else 1
    keys = _as_typed_keys(key, grid_size)
    hparams = broadcast_hparams(hparams, grid_size) if grid else jax.tree.map(jnp.asarray, hparams)
    inputs = {"hparams": hparams, "key_data": jax.random.key_data(keys)}

    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    if hasattr(config, "to_json_best_effort"):
        text = config.to_json_best_effort(indent=2, sort_keys=True)
    else:
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
    atomic.write_text(workdir / CONFIG_FILE, text + "\n")

    manager = ocp.CheckpointManager(
        workdir / CHECKPOINT_DIR,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=int(train_cfg.keep_checkpoints), create=True
        ),
    )
    try:
        state = init(hparams, keys, init_params)
        start = 0
        latest = manager.latest_step()
        if latest is not None:
            state = _restore(manager, latest, state, inputs, num_epochs)
            start = int(latest)
            logging.info("resumed from %s at epoch %d", workdir / CHECKPOINT_DIR, start)

        metrics_path = workdir / METRICS_FILE
        kept = _read_metrics_before(metrics_path, start)
        metrics_path.write_text("".join(line + "\n" for line in kept))

        host_hp = jax.device_get(hparams)
        t_start = time.perf_counter()
        first_chunk_s = None
        stopped = np.asarray(jax.device_get(state["stopped_epoch"])).reshape(members)

        def process(first, last, chunk_state):
            """Host side of one finished chunk: metrics, progress, NaN report, checkpoint."""
            nonlocal first_chunk_s, stopped
            host = jax.device_get(
                {
                    "history": chunk_state["history"],
                    "best_dev_ccc": chunk_state["best_dev_ccc"],
                    "best_epoch": chunk_state["best_epoch"],
                    "stopped_epoch": chunk_state["stopped_epoch"],
                    "nonfinite_epoch": chunk_state["nonfinite_epoch"],
                }
            )
            if first_chunk_s is None:
                first_chunk_s = time.perf_counter() - t_start  # includes compilation
            stopped = np.asarray(host["stopped_epoch"]).reshape(members)
            _write_metrics(metrics_path, host, host_hp, first, last, grid, fns.heads)
            _log_progress(host, first, last, num_epochs, grid, t_start, first_chunk_s, start)
            _report_nonfinite(host, first, last, grid, host_hp, on_nonfinite)
            if last % checkpoint_every == 0 or last == num_epochs:
                _save(manager, last, chunk_state, inputs)
            if callback is not None:
                callback(last, chunk_state)

        # Chunk k+1 is dispatched before the host processes chunk k, so that logging and
        # checkpointing overlap with the device's work. Knowing that every member has
        # stopped one chunk late costs at most one chunk of no-op epochs (frozen members
        # do not change).
        epoch = start
        pending: list[tuple[int, int, PyTree]] = []
        while True:
            more = epoch < num_epochs and not np.all(stopped >= 0)
            if more:
                length = min(chunk, num_epochs - epoch)
                state = chunk_fn(length)(state, hparams, keys, jnp.int32(epoch), fns.arrays)
                pending.append((epoch, epoch + length, state))
                epoch += length
            if not pending:
                break
            if len(pending) > 1 or not more:
                process(*pending.pop(0))
        if epoch < num_epochs:
            logging.info("every member has stopped by epoch %d; ending early", epoch)
        if manager.latest_step() != epoch:
            _save(manager, epoch, state, inputs)
        manager.wait_until_finished()
    finally:
        manager.close()
    return summarize(state)


def _save(manager: ocp.CheckpointManager, epoch: int, state: PyTree, inputs: PyTree) -> None:
    manager.save(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), inputs=ocp.args.StandardSave(inputs)
        ),
        force=True,
    )


def _restore(manager, step, state, inputs, num_epochs):
    if step > num_epochs:
        raise ValueError(
            f"the workdir's latest checkpoint is at epoch {step} > config.train.epochs "
            f"({num_epochs}); use a fresh workdir"
        )
    abstract = lambda tree: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract(state)),
            inputs=ocp.args.StandardRestore(abstract(inputs)),
        ),
    )
    same = jax.tree.map(
        lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))),
        jax.device_get(restored["inputs"]),
        jax.device_get(inputs),
    )
    if not all(jax.tree.leaves(same)):
        raise ValueError(
            "the workdir holds a checkpoint of a different run (hparams or PRNG key "
            "differ); use a fresh workdir or the original hparams and key"
        )
    return jax.tree.map(
        lambda r, s: jnp.asarray(r, s.dtype).reshape(s.shape), restored["state"], state
    )


def _member_values(host: PyTree, grid: bool, member: int) -> PyTree:
    return jax.tree.map(lambda v: np.asarray(v)[member] if grid else np.asarray(v), host)


def _write_metrics(path, host, host_hp, first, last, grid, heads) -> None:
    members = np.asarray(host["stopped_epoch"]).size
    views = [_member_values(host["history"], grid, m) for m in range(members)]
    hps = [_flat_hparams(host_hp, m if grid else None) for m in range(members)]
    lines = []
    for epoch in range(first, last):
        for m, h in enumerate(views):
            row = {
                "epoch": epoch,
                "member": m,
                "active": bool(h["active"][epoch]),
                "train_loss": _json_value(h["train_loss"][epoch]),
                "dev_ccc": _json_value(h["dev_ccc"][epoch]),
                "best_dev_ccc": _json_value(h["best_dev_ccc"][epoch]),
            }
            for head in heads:
                row[f"loss/{head}"] = _json_value(h["head_loss"][head][epoch])
            row.update(hps[m])
            lines.append(json.dumps(row))
    with path.open("a") as f:
        f.write("".join(line + "\n" for line in lines))


def _progress(fmt: str, *args: Any) -> None:
    # Printed rather than logged: orbax logs every checkpoint step at INFO level, which
    # would bury the progress lines.
    print(fmt % args, flush=True)


def _log_progress(host, first, last, num_epochs, grid, t_start, first_chunk_s, start) -> None:
    elapsed = time.perf_counter() - t_start
    done = last - start
    # The first chunk includes compilation; estimate the rate from the others.
    if done > (last - first):
        eta = _format_eta((elapsed - first_chunk_s) / (done - (last - first)) * (num_epochs - last))
    else:
        eta = "?" if last < num_epochs else "0m00s"
    e = last - 1
    hist = host["history"]
    if not grid:
        _progress(
            "epoch %d/%d  train_loss %.4g  dev_ccc %.4f  best %.4f @ %d  %s  ETA %s",
            last,
            num_epochs,
            float(hist["train_loss"][e]),
            float(hist["dev_ccc"][e]),
            float(host["best_dev_ccc"]),
            int(host["best_epoch"]),
            "running" if host["stopped_epoch"] < 0 else f"stopped @ {int(host['stopped_epoch'])}",
            eta,
        )
        return
    active = np.asarray(hist["active"])[:, e]
    loss = np.asarray(hist["train_loss"])[:, e]
    ccc = np.asarray(hist["dev_ccc"])[:, e]
    best = np.asarray(host["best_dev_ccc"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        mean_loss = float(np.nanmean(loss)) if np.any(active) else float("nan")
        max_ccc = float(np.nanmax(ccc)) if np.any(np.isfinite(ccc)) else float("nan")
    best_m = int(np.argmax(np.where(np.isfinite(best), best, -np.inf)))
    _progress(
        "epoch %d/%d  active %d/%d  train_loss(mean) %.4g  dev_ccc(max) %.4f  "
        "best %.4f (member %d @ %d)  ETA %s",
        last,
        num_epochs,
        int(active.sum()),
        active.size,
        mean_loss,
        max_ccc,
        float(best[best_m]),
        best_m,
        int(np.asarray(host["best_epoch"])[best_m]),
        eta,
    )


def _report_nonfinite(host, first, last, grid, host_hp, policy) -> None:
    bad = np.asarray(host["nonfinite_epoch"]).reshape(-1)
    newly = [(m, int(e)) for m, e in enumerate(bad) if first <= e < last]
    if not newly:
        return
    messages = []
    for m, e in newly:
        who = f"member {m}" if grid else "the run"
        hp = _flat_hparams(host_hp, m if grid else None)
        messages.append(
            f"non-finite loss or parameters in {who} at epoch {e} (hparams {hp}); its "
            "parameters are frozen at the last finite step"
            + (", the other members go on" if grid else "")
        )
    message = "; ".join(messages)
    if policy == "raise":
        raise FloatingPointError(message)
    logging.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


__all__ = ["broadcast_hparams", "make_run", "run_training"]
