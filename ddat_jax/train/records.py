"""What the driver writes between chunks: metrics.jsonl, progress lines, NaN reports, checkpoints.

Workdir layout of one fit (a single training or a grid program)::

    config.json        the spec, objective, options and member count
    metrics.jsonl      one JSON object per epoch per member
                       (pandas.read_json(path, lines=True))
    checkpoints/<e>/   orbax checkpoints of the typed state after epoch e
    checkpoints_local/<e>.msgpack
                       the same, written by a process of a several-process job instead

Checkpoints of several-process jobs (``jax.process_count() > 1``, see
:mod:`ddat_jax.experiment.distributed`): each process trains its own systems, on its own
devices, into the shared workdir. orbax-checkpoint cannot save from one process alone in
such a job (it refuses host-local ``jax.Array`` s and writes NumPy arrays only on process
0, and its ``CheckpointManager`` synchronises every process at each save), so these
processes keep their checkpoints in ``checkpoints_local/`` instead
(:class:`LocalCheckpoints`): one file per step, ``<step>.msgpack``, holding
``{"state": ..., "inputs": ...}`` as host NumPy arrays
(:func:`flax.serialization.msgpack_serialize` of the trees' state dicts), written
atomically, the last ``keep`` steps kept. :func:`checkpoint_manager` picks the backend;
with one process it is orbax as before, byte for byte.

Resuming across process counts: a fit restores the latest step of either folder (the
other backend's through :func:`other_checkpoints`) and saves its later checkpoints in its
own backend's folder. So a workdir trained by several processes resumes, or is reloaded,
by one process (from ``checkpoints_local/``), and a workdir trained by one process by
several (each process reads ``checkpoints/`` through an orbax manager of its own, with
``active_processes={this process}``), without training again; a workdir may hold both
folders.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from ddat_jax import atomic

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LOCAL_CHECKPOINT_DIR = "checkpoints_local"
_LOCAL_SUFFIX = ".msgpack"


def json_value(v: Any) -> Any:
    """A JSON scalar (non-finite floats become ``None``)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


def flat_hparams(hparams: Mapping[str, Any], member: int) -> dict[str, Any]:
    """``{"hp/<path>": value}`` of one member (leaves ``[K]``)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(hparams)[0]:
        name = "/".join(str(getattr(p, "key", p)) for p in path)
        out[f"hp/{name}"] = json_value(np.asarray(leaf)[member])
    return out


def read_metrics_before(path: Path, epoch: int) -> list[str]:
    """Lines of an existing metrics file for epochs before ``epoch`` (resume)."""
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            if line.strip() and json.loads(line)["epoch"] < epoch:
                kept.append(line.strip())
        except (ValueError, KeyError):
            continue
    return kept


def write_metrics(path: Path, history, hparams, first: int, last: int, members: int) -> None:
    """Appends the rows of epochs ``first … last − 1`` for members ``0 … members − 1``."""
    hps = [flat_hparams(hparams, m) for m in range(members)]
    lines = []
    for epoch in range(first, last):
        for m in range(members):
            row = {
                "epoch": epoch,
                "member": m,
                "active": bool(history.active[m, epoch]),
                "train_loss": json_value(history.train_loss[m, epoch]),
                "dev_score": json_value(history.dev_score[m, epoch]),
                "best_dev_score": json_value(history.best_score[m, epoch]),
            }
            for name, values in history.terms.items():
                row[f"loss/{name}"] = json_value(values[m, epoch])
            row.update(hps[m])
            lines.append(json.dumps(row))
    with path.open("a") as f:
        f.write("".join(line + "\n" for line in lines))


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    h, rem = divmod(int(round(seconds)), 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """A short progress line: epoch, loss, dev score, best, active members, ETA.

    Printed for the first chunk (after compilation), the last epoch, and otherwise at most
    once every ``min_interval_s`` seconds, so a long run's console stays readable; every
    epoch is in ``metrics.jsonl`` regardless.
    """

    def __init__(
        self,
        emit: Callable[[str], None],
        label: str,
        epochs: int,
        start: int,
        min_interval_s: float = 10.0,
    ):
        self.emit, self.label, self.epochs, self.start = emit, label, epochs, start
        self.t0 = time.perf_counter()
        self.first_chunk_s: float | None = None
        self.min_interval_s = float(min_interval_s)
        self.last_emit: float | None = None

    def eta(self, first: int, last: int) -> str:
        elapsed = time.perf_counter() - self.t0
        if self.first_chunk_s is None:
            self.first_chunk_s = elapsed  # includes compilation
        done = last - self.start
        if done > last - first:  # rate from the chunks after the first
            rate = (elapsed - self.first_chunk_s) / (done - (last - first))
            return format_eta(rate * (self.epochs - last))
        return "?" if last < self.epochs else "0m00s"

    def __call__(self, host, first: int, last: int, members: int) -> None:
        eta = self.eta(first, last)
        now = time.perf_counter()
        due = self.last_emit is None or now - self.last_emit >= self.min_interval_s
        if not (due or last >= self.epochs):
            return
        self.last_emit = now
        e = last - 1
        h = host.history
        active = np.asarray(h.active)[:members, e]
        best = np.asarray(host.best_score)[:members]
        best = np.where(np.isfinite(best), best, -np.inf)
        m = int(np.argmax(best))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
            loss = float(np.nanmean(np.asarray(h.train_loss)[:members, e]))
            dev = float(np.nanmax(np.asarray(h.dev_score)[:members, e]))
        who = f" (member {m})" if members > 1 else ""
        prefix = f"[{self.label}] " if self.label else ""
        self.emit(
            f"{prefix}epoch {last}/{self.epochs}  loss {loss:.4g}  dev {dev:.4f}  "
            f"best {best[m]:.4f}{who} @ {int(np.asarray(host.best_epoch)[m])}  "
            f"active {int(active.sum())}/{members}  ETA {eta}"
        )


def report_nonfinite(host, hparams, first: int, last: int, members: int, policy: str) -> None:
    """Names the members that went non-finite in this chunk; warns or raises."""
    bad = np.asarray(host.nonfinite_epoch)[:members]
    newly = [(m, int(e)) for m, e in enumerate(bad) if first <= e < last]
    if not newly:
        return
    message = "; ".join(
        f"non-finite loss or parameters in member {m} at epoch {e} (hparams "
        f"{flat_hparams(hparams, m)}); its parameters are frozen at the last finite step"
        for m, e in newly
    )
    if policy == "raise":
        raise FloatingPointError(message)
    logging.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


class LocalCheckpoints:
    """Process-local checkpoints: ``<workdir>/checkpoints_local/<step>.msgpack``.

    The methods :func:`ddat_jax.train.loop.fit` uses of an orbax ``CheckpointManager``
    (``latest_step``, ``all_steps``, ``wait_until_finished``, ``close``), plus
    :meth:`save` / :meth:`restore` used through :func:`save` / :func:`restore`. Nothing
    is shared with other processes: every call touches this process's files only, and
    saves are synchronous (each file is written under a temporary name, then renamed).
    """

    def __init__(self, workdir: str | Path, keep: int):
        self.directory = Path(workdir) / LOCAL_CHECKPOINT_DIR  # created by the first save
        self.keep = int(keep)
        if self.keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")

    def path(self, step: int) -> Path:
        return self.directory / f"{int(step)}{_LOCAL_SUFFIX}"

    def all_steps(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        stems = (p.name[: -len(_LOCAL_SUFFIX)] for p in self.directory.iterdir())
        return sorted(int(s) for s in stems if s.isdigit() and self.path(int(s)).is_file())

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(self, step: int, state, inputs) -> None:
        """Writes ``{"state", "inputs"}`` (host copies) as ``<step>.msgpack``; keeps the
        last ``keep`` steps."""
        tree = {"state": _local_host(state), "inputs": _local_host(inputs)}
        payload = flax.serialization.msgpack_serialize(flax.serialization.to_state_dict(tree))
        atomic.write_bytes(self.path(step), payload)
        for old in self.all_steps()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)

    def restore(self, step: int, state, inputs) -> dict:
        """``{"state", "inputs"}`` of ``step`` as host NumPy trees shaped like the given
        ones."""
        raw = flax.serialization.msgpack_restore(self.path(step).read_bytes())
        template = {"state": _local_host(state), "inputs": _local_host(inputs)}
        try:
            return flax.serialization.from_state_dict(template, raw)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"the workdir holds a checkpoint of a different run ({self.path(step)} does "
                f"not match this run's state: {err}); use a fresh workdir"
            ) from err

    def wait_until_finished(self) -> None:
        """Saves are synchronous: nothing to wait for."""

    def close(self) -> None:
        """Nothing is held open."""


def _local_host(tree):
    """Host NumPy copies of a tree of this process's arrays (the local backend)."""

    def leaf(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            raise ValueError(
                "process-local checkpoints hold arrays of this process only; this array is "
                f"sharded over several processes ({x.sharding})"
            )
        return np.asarray(jax.device_get(x))

    return jax.tree.map(leaf, tree)


def other_checkpoints(
    workdir: str | Path, manager: ocp.CheckpointManager | LocalCheckpoints
) -> ocp.CheckpointManager | LocalCheckpoints | None:
    """The checkpoints of ``workdir`` in the backend that ``manager`` is not (a workdir
    trained with another number of processes), to restore from; None: there are none.

    For a several-process fit (``manager`` local), a read-only orbax manager of
    ``checkpoints/`` whose barriers involve this process only (orbax's
    ``active_processes``), so that no other process takes part in the restore.
    """
    if not isinstance(manager, LocalCheckpoints):
        local = LocalCheckpoints(workdir, 1)
        return local if local.latest_step() is not None else None
    folder = Path(workdir) / CHECKPOINT_DIR
    if not folder.is_dir() or not any(p.name.isdigit() for p in folder.iterdir()):
        return None
    me = jax.process_index()
    return ocp.CheckpointManager(
        folder,
        options=ocp.CheckpointManagerOptions(
            read_only=True,
            create=False,
            enable_async_checkpointing=False,
            multiprocessing_options=ocp.options.MultiprocessingOptions(
                primary_host=me,
                active_processes={me},
                barrier_sync_key_prefix=f"ddat_jax-read-{me}-{folder}",
            ),
        ),
    )


def checkpoint_manager(workdir: Path, keep: int) -> ocp.CheckpointManager | LocalCheckpoints:
    """The checkpoints of a fit in ``workdir``: orbax (``checkpoints/``) in a one-process
    job; :class:`LocalCheckpoints` (``checkpoints_local/``) when ``jax.process_count() >
    1``."""
    if jax.process_count() > 1:
        return LocalCheckpoints(workdir, keep)
    # Synchronous saves: with systems trained side by side in threads, orbax's background
    # save threads and event loops raced ('...orbax-checkpoint-tmp already exists',
    # 'Event loop is closed'); a chunk's checkpoint is small, so waiting costs little.
    return ocp.CheckpointManager(
        workdir / CHECKPOINT_DIR,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=int(keep), create=True, enable_async_checkpointing=False
        ),
    )


def save(manager: ocp.CheckpointManager | LocalCheckpoints, epoch: int, state, inputs) -> None:
    """Saves the typed state and the run's identity (hparams, key data)."""
    if isinstance(manager, LocalCheckpoints):
        manager.save(epoch, state, inputs)
        return
    manager.save(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), inputs=ocp.args.StandardSave(inputs)
        ),
        force=True,
    )


def _abstract(tree):
    def leaf(x):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None))

    return jax.tree.map(leaf, tree)


def restore(
    manager: ocp.CheckpointManager | LocalCheckpoints, step: int, state, inputs, epochs: int
):
    """The state saved at ``step``, placed like ``state``; refuses another run's checkpoint."""
    if step > epochs:
        raise ValueError(
            f"the workdir's latest checkpoint is at epoch {step} > epochs ({epochs}); "
            "use a fresh workdir"
        )
    if isinstance(manager, LocalCheckpoints):
        restored = manager.restore(step, state, inputs)
        _check_inputs(restored["inputs"], inputs)
        return jax.tree.map(_place_like, restored["state"], state)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_abstract(state)),
            inputs=ocp.args.StandardRestore(_abstract(inputs)),
        ),
    )
    _check_inputs(restored["inputs"], inputs)
    return jax.tree.map(
        lambda r, s: jnp.asarray(r, s.dtype).reshape(s.shape), restored["state"], state
    )


def _check_inputs(saved, inputs) -> None:
    """Refuses a checkpoint whose hparams or PRNG keys differ from this run's."""
    same = jax.tree.map(
        lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))),
        jax.device_get(saved),
        jax.device_get(inputs),
    )
    if not all(jax.tree.leaves(same)):
        raise ValueError(
            "the workdir holds a checkpoint of a different run (hparams or PRNG keys "
            "differ); use a fresh workdir or the original hparams and keys"
        )


def _place_like(saved: np.ndarray, like):
    """A restored host array with ``like``'s dtype and shape, on ``like``'s devices."""
    if np.size(saved) != np.size(like):
        raise ValueError(
            f"the workdir holds a checkpoint of a different run (an array of shape "
            f"{np.shape(saved)} where this run has {np.shape(like)}); use a fresh workdir"
        )
    value = np.asarray(saved, like.dtype).reshape(like.shape)
    if isinstance(like, jax.Array):
        return jax.device_put(value, like.sharding)
    return jnp.asarray(value)


__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "LOCAL_CHECKPOINT_DIR",
    "METRICS_FILE",
    "LocalCheckpoints",
    "Progress",
    "checkpoint_manager",
    "flat_hparams",
    "json_value",
    "other_checkpoints",
    "read_metrics_before",
    "report_nonfinite",
    "restore",
    "save",
    "write_metrics",
]
