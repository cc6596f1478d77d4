"""The one multi-member driver: :func:`fit`.

``fit(spec, data, hparams, keys, ...)`` trains ``K`` members (``K = 1`` for a single
training; a grid's settings and seeds otherwise) with the same computation as
``make_train(spec, data)`` per member, cut into chunks of ``options.log_every`` epochs.
Each chunk is one compiled program over all members (:mod:`ddat_jax.train.members`:
vmap / map / chunked / loop, sharded over ``options.devices``); between chunks the host

* appends one JSON object per epoch per member to ``workdir/metrics.jsonl``,
* hands one short progress line to ``progress`` (default ``print``),
* saves the typed state every ``options.checkpoint_every`` epochs (orbax; process-local
  msgpack files in a several-process job: :mod:`ddat_jax.train.records`),
* names members whose loss went NaN/Inf (frozen inside the program; warns, or raises
  with ``on_nonfinite="raise"``),
* ends early once every member has stopped.

Chunk ``k + 1`` is dispatched before the host handles chunk ``k``, so the host work
overlaps the device's. A fit started again with the same workdir, data, hparams and keys
resumes from the latest checkpoint and ends with the same result as an uninterrupted
one: all randomness is ``fold_in(key, epoch)``-based and the chunks are the same
programs. The data arrays are arguments of the programs, so fits with equal shapes (the
seeds of a system, curriculum stages padded to one ``train_size``) compile once.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ddat_jax import atomic
from ddat_jax.train import members as M
from ddat_jax.train import records
from ddat_jax.train.engine import History, TrainSpec, spec_arrays
from ddat_jax.train.keys import as_typed_key

PyTree = Any
NONFINITE_POLICIES = ("warn", "raise")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How :func:`fit` runs (nothing here changes the numbers).

    Attributes:
      log_every: epochs per compiled chunk (metrics and progress at chunk ends).
      checkpoint_every: epochs between checkpoints (a multiple of ``log_every``); the
        last epoch is always saved.
      keep_checkpoints: checkpoints kept on disk.
      on_nonfinite: ``"warn"`` or ``"raise"`` (``FloatingPointError`` after the chunk).
      strategy: ``"auto" | "vmap" | "map" | "chunked" | "loop"`` over members.
      chunk_size: members per vmapped chunk of ``"chunked"``.
      devices: ``None`` (default device), one device (everything committed to it) or
        several (members sharded over a mesh).
      label: prefix of the progress lines.
    """

    log_every: int = 1
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    on_nonfinite: str = "warn"
    strategy: str = "auto"
    chunk_size: int = 4
    devices: tuple | None = None
    label: str = ""

    def __post_init__(self):
        if self.on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"Unknown on_nonfinite {self.on_nonfinite!r}; valid: {list(NONFINITE_POLICIES)}"
            )
        M.choose_strategy(self.strategy, "cpu")  # validates the name
        for name in ("log_every", "checkpoint_every", "keep_checkpoints", "chunk_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every % self.log_every:
            raise ValueError(
                f"checkpoint_every ({self.checkpoint_every}) must be a multiple of log_every "
                f"({self.log_every})"
            )
        if self.devices is not None:
            object.__setattr__(self, "devices", tuple(self.devices))


def run_options_from_config(train: Any, **overrides) -> RunOptions:
    """:class:`RunOptions` from a ``config.train`` section; ``overrides`` win."""
    fields = {
        "log_every": int(train.log_every),
        "checkpoint_every": int(train.checkpoint_every),
        "keep_checkpoints": int(train.keep_checkpoints),
        "on_nonfinite": str(train.on_nonfinite),
    }
    fields.update(overrides)
    return RunOptions(**fields)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns (host NumPy arrays, leading member axis ``[K]``).

    Attributes:
      best_params: parameters of each member's best dev score.
      final_params: parameters at the end (frozen since ``stopped_epoch``).
      best_score: best dev score (``-inf`` if none was finite).
      best_epoch: its epoch (−1 if none).
      stopped_epoch: early stop or non-finite epoch (−1: ran to the end).
      nonfinite_epoch: epoch in which the member went NaN/Inf (−1: never).
      history: :class:`~ddat_jax.train.engine.History` with ``[K, epochs]`` leaves.
      seconds: wall time of the fit.
      compile_seconds: time spent tracing and compiling (≈ 0 when the programs were
        compiled by an earlier fit).
    """

    best_params: PyTree
    final_params: PyTree
    best_score: np.ndarray
    best_epoch: np.ndarray
    stopped_epoch: np.ndarray
    nonfinite_epoch: np.ndarray
    history: History
    seconds: float
    compile_seconds: float

    def member(self, i: int) -> dict[str, Any]:
        """Member ``i``'s values (no member axis) as a dict."""
        take = lambda t: jax.tree.map(lambda a: a[i], t)
        return {
            "best_params": take(self.best_params),
            "final_params": take(self.final_params),
            "best_score": float(self.best_score[i]),
            "best_epoch": int(self.best_epoch[i]),
            "stopped_epoch": int(self.stopped_epoch[i]),
            "nonfinite_epoch": int(self.nonfinite_epoch[i]),
            "history": take(self.history),
        }


def broadcast_hparams(hparams: PyTree, members: int) -> PyTree:
    """Gives every hparams leaf a leading member axis ``[members]`` (float32 NumPy)."""

    def leaf(v):
        v = np.asarray(v, np.float32)
        if v.ndim == 0:
            return np.full((members,), v, np.float32)
        if v.shape != (members,):
            raise ValueError(f"hparams leaf of shape {v.shape} does not match {members} members")
        return v

    return jax.tree.map(leaf, hparams)


def _host(tree: PyTree) -> PyTree:
    """Device -> host. Arrays sharded over several processes (one training spread over
    every process's devices) are gathered from every process, a collective that every
    process must call; this process's own arrays (a fit on its local devices, as each
    process of a several-process experiment runs its own systems) are only copied."""
    leaves = jax.tree.leaves(tree)
    if jax.process_count() > 1 and not all(
        getattr(x, "is_fully_addressable", True) for x in leaves
    ):
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _key_data(keys: Any) -> np.ndarray:
    keys = as_typed_key(keys)
    if keys.ndim != 1:
        raise ValueError(f"keys must be [K] PRNG keys; got shape {keys.shape}")
    return np.asarray(jax.random.key_data(keys))


def _describe(spec: TrainSpec, options: RunOptions, members: int) -> str:
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    fields["model"] = repr(spec.model)
    fields["objective"] = repr(spec.objective)
    opts = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    opts["devices"] = None if options.devices is None else [str(d) for d in options.devices]
    return json.dumps({"spec": fields, "options": opts, "members": members}, indent=2, default=str)


@dataclasses.dataclass
class _Run:
    """The mutable bookkeeping of one fit (local to the call: fits are thread-safe)."""

    spec: TrainSpec
    options: RunOptions
    placement: M.Placement
    strategy: str
    members: int
    arrays: PyTree
    hparams: PyTree
    key_data: Any
    compile_s: float = 0.0
    seen_lengths: set = dataclasses.field(default_factory=set)

    def dispatch(self, state, epoch: int, length: int):
        t0 = time.perf_counter()
        first = self.placement.put(np.int32(epoch), per_member=False)
        state = M.run_chunk(
            state,
            self.hparams,
            self.key_data,
            first,
            self.arrays,
            spec=self.spec,
            length=length,
            strategy=self.strategy,
            chunk_size=self.options.chunk_size,
            placement=self.placement,
        )
        if length not in self.seen_lengths:  # the call returns once compiled (async run)
            self.seen_lengths.add(length)
            self.compile_s += time.perf_counter() - t0
        return state


def fit(
    spec: TrainSpec,
    data: Mapping[str, Any],
    hparams: PyTree,
    keys: Any,
    *,
    workdir: str | Path,
    options: RunOptions = RunOptions(),
    init_params: PyTree = None,
    member_params: PyTree = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Trains ``K`` members in compiled chunks with checkpoints, metrics and resume.

    Args:
      spec: the static training (model, objective, epochs, ...).
      data: the engine's data dict (:func:`ddat_jax.train.data.prepare_data`).
      hparams: the hparams pytree with ``[K]`` leaves (see :func:`broadcast_hparams`).
      keys: ``[K]`` PRNG keys (typed, or raw key data).
      workdir: the fit's folder (``config.json``, ``metrics.jsonl``, ``checkpoints/``, or
        ``checkpoints_local/`` in a several-process job); a workdir holding checkpoints
        of the same run is resumed from the latest one (in either folder: a workdir
        trained with another number of processes, :mod:`ddat_jax.train.records`).
      options: :class:`RunOptions`.
      init_params: warm-start parameters shared by every member (the optimizer starts
        afresh); ``None`` initialises from each member's key.
      member_params: warm-start parameters per member (leading ``[K]`` axis), e.g. the
        embedded initialisations of padded architectures; exclusive with ``init_params``.
      progress: receives one short line per chunk; default ``print``.

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError: bad data/objective/hparams, or the workdir holds another run.
      FloatingPointError: a member went non-finite and ``on_nonfinite == "raise"``.
    """
    t_start = time.perf_counter()
    key_data = _key_data(keys)
    k = key_data.shape[0]
    hparams = broadcast_hparams(hparams, k)
    # More devices than members would only run copies of the last member.
    placement = M.Placement.of(None if options.devices is None else options.devices[:k])
    platform = options.devices[0].platform if options.devices else jax.default_backend()
    run = _Run(
        spec=spec,
        options=options,
        placement=placement,
        strategy=M.choose_strategy(options.strategy, platform),
        members=k,
        arrays=placement.put(spec_arrays(spec, data), per_member=False),
        hparams=placement.put(M.pad_members(hparams, placement.multiple), per_member=True),
        key_data=placement.put(M.pad_members(key_data, placement.multiple), per_member=True),
    )
    if init_params is not None:
        if member_params is not None:
            raise ValueError("give init_params (shared) or member_params ([K]), not both")
        member_params = jax.tree.map(lambda a: np.broadcast_to(a, (k, *np.shape(a))), init_params)
    if member_params is not None:
        member_params = placement.put(M.pad_members(member_params, placement.multiple), True)
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(workdir / records.CONFIG_FILE, _describe(spec, options, k) + "\n")
    t0 = time.perf_counter()
    state = M.init_program(
        run.hparams, run.key_data, member_params, run.arrays, spec=spec, placement=placement
    )
    run.compile_s += time.perf_counter() - t0
    emit = progress or (lambda line: print(line, flush=True))
    state = _drive(run, state, workdir, emit, throttle_s=10.0 if progress is None else 0.0)
    return _result(state, k, time.perf_counter() - t_start, run.compile_s)


def _drive(run: _Run, state, workdir: Path, emit: Callable[[str], None], throttle_s: float):
    """The chunk loop: resume, dispatch ahead, host work per finished chunk, final save."""
    spec, options, k = run.spec, run.options, run.members
    inputs = {"hparams": run.hparams, "key_data": run.key_data}
    manager = records.checkpoint_manager(workdir, options.keep_checkpoints)
    source = manager
    try:
        start = 0
        latest = manager.latest_step()
        # The other backend's checkpoints (a workdir trained with another number of
        # processes): restored from when they are further on.
        other = records.other_checkpoints(workdir, manager)
        if other is not None:
            found = other.latest_step()
            if found is not None and (latest is None or found > latest):
                source, latest = other, found
            else:
                other.close()
        if latest is not None:
            state = records.restore(source, latest, state, inputs, spec.epochs)
            start = int(latest)
            emit(
                f"[{options.label}] resumed at epoch {start}"
                if options.label
                else f"resumed at epoch {start}"
            )
        metrics_path = workdir / records.METRICS_FILE
        kept = records.read_metrics_before(metrics_path, start)
        metrics_path.write_text("".join(line + "\n" for line in kept))
        host_hp = _host(run.hparams)
        # The default console printer is throttled (a line at most every 10 s); a caller's
        # own ``progress`` callable gets every chunk.
        show = records.Progress(
            emit,
            options.label,
            spec.epochs,
            start,
            min_interval_s=throttle_s,
        )
        stopped = np.asarray(_host(state.stopped_epoch))[:k]

        def process(first, last, chunk_state):
            nonlocal stopped
            host = _host(chunk_state.replace(params=None, opt_state=None, best_params=None))
            stopped = np.asarray(host.stopped_epoch)[:k]
            records.write_metrics(metrics_path, host.history, host_hp, first, last, k)
            show(host, first, last, k)
            records.report_nonfinite(host, host_hp, first, last, k, options.on_nonfinite)
            if last % options.checkpoint_every == 0 or last == spec.epochs:
                records.save(manager, last, chunk_state, inputs)

        # Chunk k+1 is dispatched before the host processes chunk k; knowing that every
        # member has stopped one chunk late costs at most one chunk of no-op epochs.
        epoch, pending = start, []
        while True:
            more = epoch < spec.epochs and not np.all(stopped >= 0)
            if more:
                length = min(options.log_every, spec.epochs - epoch)
                state = run.dispatch(state, epoch, length)
                pending.append((epoch, epoch + length, state))
                epoch += length
            if not pending:
                break
            if len(pending) > 1 or not more:
                process(*pending.pop(0))
        # Saves are asynchronous: wait for the one in flight before asking which step is
        # the latest, or the final save could start a second write of that same step.
        manager.wait_until_finished()
        # (A state restored and not trained further is saved already, perhaps in the
        # other backend's folder: not saved again.)
        if manager.latest_step() != epoch and not (latest is not None and epoch == start):
            records.save(manager, epoch, state, inputs)
        manager.wait_until_finished()
    finally:
        if source is not None and source is not manager:
            source.close()
        manager.close()
    return state


def _result(state, k: int, seconds: float, compile_s: float) -> FitResult:
    host = jax.tree.map(lambda a: np.asarray(a)[:k], _host(state.replace(opt_state=None)))
    return FitResult(
        best_params=host.best_params,
        final_params=host.params,
        best_score=host.best_score,
        best_epoch=host.best_epoch,
        stopped_epoch=host.stopped_epoch,
        nonfinite_epoch=host.nonfinite_epoch,
        history=host.history,
        seconds=seconds,
        compile_seconds=compile_s,
    )


__all__ = [
    "NONFINITE_POLICIES",
    "FitResult",
    "RunOptions",
    "broadcast_hparams",
    "fit",
    "run_options_from_config",
]
