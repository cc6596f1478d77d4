"""What the driver writes between chunks: metrics.jsonl, progress lines, NaN reports, checkpoints.

Workdir layout of one fit (a single training or a grid program)::

    config.json        the spec, objective, options and member count
    metrics.jsonl      one JSON object per epoch per member
                       (pandas.read_json(path, lines=True))
    checkpoints/<e>/   orbax checkpoints of the typed state after epoch e
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

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


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


def checkpoint_manager(workdir: Path, keep: int) -> ocp.CheckpointManager:
    # Synchronous saves: with systems trained side by side in threads, orbax's background
    # save threads and event loops raced ('...orbax-checkpoint-tmp already exists',
    # 'Event loop is closed'); a chunk's checkpoint is small, so waiting costs little.
    return ocp.CheckpointManager(
        workdir / CHECKPOINT_DIR,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=int(keep), create=True, enable_async_checkpointing=False
        ),
    )


def save(manager: ocp.CheckpointManager, epoch: int, state, inputs) -> None:
    """Saves the typed state and the run's identity (hparams, key data)."""
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


def restore(manager: ocp.CheckpointManager, step: int, state, inputs, epochs: int):
    """The state saved at ``step``, placed like ``state``; refuses another run's checkpoint."""
    if step > epochs:
        raise ValueError(
            f"the workdir's latest checkpoint is at epoch {step} > epochs ({epochs}); "
            "use a fresh workdir"
        )
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_abstract(state)),
            inputs=ocp.args.StandardRestore(_abstract(inputs)),
        ),
    )
    same = jax.tree.map(
        lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))),
        jax.device_get(restored["inputs"]),
        jax.device_get(inputs),
    )
    if not all(jax.tree.leaves(same)):
        raise ValueError(
            "the workdir holds a checkpoint of a different run (hparams or PRNG keys "
            "differ); use a fresh workdir or the original hparams and keys"
        )
    return jax.tree.map(
        lambda r, s: jnp.asarray(r, s.dtype).reshape(s.shape), restored["state"], state
    )


__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "METRICS_FILE",
    "Progress",
    "checkpoint_manager",
    "flat_hparams",
    "json_value",
    "read_metrics_before",
    "report_nonfinite",
    "restore",
    "save",
    "write_metrics",
]
