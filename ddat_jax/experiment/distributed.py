"""Several hosts: the processes of one ``jax.distributed`` job share one experiment.

``python -m ddat_jax.main --config=... --workdir=<shared> --coordinator_address=host:port
--num_processes=N --process_id=i`` (or ``--distributed`` for JAX's auto-detection on SLURM,
Open MPI and TPU pods) starts process ``i`` of ``N``. Every process gets the same config
and the same workdir on a shared file system; the config and the workdir layout are those
of a one-process run (nothing about the processes is recorded in the config, so a workdir
can be resumed with any number of processes). What is split, and who writes what:

* **Systems** (:func:`ddat_jax.experiment.run`): the plan's dependency *components*
  (systems linked by ``depends``, e.g. DDAT's stage 1 and its stage-2 systems) are dealt
  to the processes, largest first, each to the least-loaded process (:func:`assign`;
  deterministic: the same on every process). A process trains its components' systems
  (``train/<system>/``, stage-1 files) exactly as one process would: a system's PRNG key
  is a function of its name, its data and programs do not depend on the device or the
  process. No process ever waits for another's system *during* training. The
  coordinator (process 0) then waits until every other process has finished its
  components and loads them: the standard resume of a finished training (``train_job``
  finds the checkpoints of the last epoch in the shared workdir, trains nothing, predicts
  again; the report's wall time of such a system is its owner's training time), so its
  predictions, tables, figures and report are those of one process. Only
  the coordinator writes ``data_summary.txt``, ``predictions/``, ``results/``,
  ``figures/`` and ``report.md``.
* **DDAT-paper cells** (:func:`ddat_jax.methods.ddat.paper.run_paper`): cells are dealt
  round-robin (process ``k`` runs cells ``k, k+N, ...`` of the paper's order), each as a
  complete one-process DDAT run in ``cells/<cell>/`` ending with its
  ``cell_complete.json``; the coordinator waits for every cell and writes the paper's
  tables, figures and report.
* **Grids** (:func:`ddat_jax.train.grid.run_grid`) called by every process of the job
  (a user's script after ``jax.distributed.initialize``) split the members of each of
  their programs (:func:`split_members`: process ``p`` takes positions ``p, p+N, ...``);
  each process fits its slice on its local devices in ``<program>/p<i>of<N>/`` and writes
  its part, the coordinator assembles the table and alone writes ``results/``. A grid
  that one process runs alone (e.g. inside its share of a split experiment) must run
  inside :func:`local` or get ``cluster=LOCAL``; there :func:`job` is :data:`LOCAL`
  and the grid is not split.
* **Checkpoints**: orbax cannot checkpoint from one process of a several-process job, so
  every fit of such a job keeps its checkpoints in ``<fit>/checkpoints_local/<epoch>.msgpack``
  (:class:`ddat_jax.train.records.LocalCheckpoints`) instead of ``checkpoints/``. A fit
  resumes from the latest step of either folder, so a workdir trained with N processes
  resumes with any number, one included, without training again.

Coordination (:class:`Cluster`) uses the key-value store of JAX's distributed runtime (the
coordination service that ``jax.distributed.initialize`` starts on process 0), not XLA
collectives: "done" and "failed" keys, and waits that poll them. Collectives
(``multihost_utils.sync_global_devices``) would need every process to run the same
program at the same time, and have no timeout; the key-value store needs neither, and
works the same on CPU (no gloo needed), GPU and TPU. A process that fails publishes its
failure (``process i/N: system 'x' (X): <error>``); every process waiting on the job
raises it at its next poll, and a wait that outlives ``timeout_s`` raises
:class:`DistributedError` naming what it waited for and which process owes it. The
runtime's own heartbeats end the job when a process dies without a word.

With one process (the default) nothing here is used: :data:`LOCAL` makes every call a
one-process run, with today's files and console output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

DEFAULT_TIMEOUT_S = 24 * 3600.0
_ROOT = "ddat_jax"


class DistributedError(RuntimeError):
    """Another process failed, or a wait for another process timed out."""


class _Store:
    """The distributed runtime's key-value store (``jax.distributed``'s client)."""

    def __init__(self, client):
        self._client = client

    def set(self, key: str, value: str) -> None:
        self._client.key_value_set(key, value, allow_overwrite=True)

    def dir(self, prefix: str) -> dict[str, str]:
        return dict(self._client.key_value_dir_get(prefix))


class MemoryStore:
    """An in-process stand-in for the key-value store (tests, one process)."""

    def __init__(self):
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._data[key] = value

    def dir(self, prefix: str) -> dict[str, str]:
        with self._lock:
            return {k: v for k, v in self._data.items() if k.startswith(prefix)}


def _scope(name: str) -> str:
    return str(name).replace("/", ":")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in the job and the job's key-value store.

    Attributes:
      process_id: this process (0 = the coordinator); num_processes: the job's processes.
      store: ``set(key, value)`` / ``dir(prefix) -> {key: value}``; None for one process.
      timeout_s: the longest any wait for another process may take.
      poll_s: seconds between two looks at the store while waiting.
    """

    process_id: int = 0
    num_processes: int = 1
    store: Any = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    poll_s: float = 0.5

    @property
    def distributed(self) -> bool:
        return self.num_processes > 1

    @property
    def is_coordinator(self) -> bool:
        return self.process_id == 0

    @property
    def prefix(self) -> str:
        """``[p<i>/<n>] `` before every console line of a several-process job."""
        return f"[p{self.process_id}/{self.num_processes}] " if self.distributed else ""

    def where(self) -> str:
        return f"process {self.process_id}/{self.num_processes}"

    # -- keys --------------------------------------------------------------------------
    def publish(self, scope: str, item: str, value: str = "ok") -> None:
        """Marks ``item`` of ``scope`` (a run's workdir) as done by this process."""
        if self.store is not None:
            self.store.set(f"{_ROOT}/done/{_scope(scope)}/{item}", f"{self.process_id}:{value}")

    def fail(self, message: str) -> None:
        """Publishes this process's failure (the first one it reports wins)."""
        if self.store is None:
            return
        key = f"{_ROOT}/failed/{self.process_id}"
        if key not in self.store.dir(f"{_ROOT}/failed/"):
            self.store.set(key, f"{self.where()}: {message}")

    def failures(self) -> dict[int, str]:
        """``{process: message}`` of every other process that failed."""
        if self.store is None:
            return {}
        found = self.store.dir(f"{_ROOT}/failed/")
        out = {int(k.rsplit("/", 1)[1]): v for k, v in found.items()}
        out.pop(self.process_id, None)
        return out

    def wait(
        self, scope: str, items: Mapping[str, int], what: str, *, timeout_s: float | None = None
    ) -> dict[str, str]:
        """Waits until every ``item`` of ``scope`` is published; returns their values.

        Args:
          items: ``{item: the process that owes it}``.
          what: what is waited for, in words (error messages).

        Raises:
          DistributedError: another process failed, or ``timeout_s`` passed.
        """
        if not items:
            return {}
        base = f"{_ROOT}/done/{_scope(scope)}/"
        limit = self.timeout_s if timeout_s is None else timeout_s
        t0 = time.monotonic()
        while True:
            done = {k[len(base) :]: v for k, v in self.store.dir(base).items()}
            if all(i in done for i in items):
                return {i: done[i].split(":", 1)[1] for i in items}
            failed = self.failures()
            if failed:
                shown = "; ".join(failed[p] for p in sorted(failed))
                raise DistributedError(f"{self.where()} stops waiting for {what}: {shown}")
            if time.monotonic() - t0 > limit:
                missing = {i: p for i, p in items.items() if i not in done}
                owed = ", ".join(f"{i!r} (process {p})" for i, p in missing.items())
                raise DistributedError(
                    f"{self.where()}: timed out after {limit:.0f} s waiting for {what}: "
                    f"still missing {owed}"
                )
            time.sleep(self.poll_s)


LOCAL = Cluster()
_current = LOCAL


def current() -> Cluster:
    """The cluster of this process (:data:`LOCAL` unless :func:`initialize` ran)."""
    return _current


@contextlib.contextmanager
def local() -> Iterator[None]:
    """Runs the block as a one-process run (a DDAT-paper cell inside a split paper)."""
    global _current, _local_depth
    saved, _current = _current, LOCAL
    _local_depth += 1
    try:
        yield
    finally:
        _local_depth -= 1
        _current = saved


_local_depth = 0  # > 0 inside local()


def from_runtime(timeout_s: float = DEFAULT_TIMEOUT_S) -> Cluster:
    """A cluster over a ``jax.distributed`` job that the user's own script joined
    (``jax.distributed.initialize(...)`` called directly, not :func:`initialize`):
    :data:`LOCAL` with one process, or when the runtime has no key-value client."""
    import jax

    if jax.process_count() <= 1:
        return LOCAL
    from jax._src import distributed as jax_distributed  # the runtime's key-value client

    client = getattr(jax_distributed.global_state, "client", None)
    if client is None:
        return LOCAL
    return Cluster(jax.process_index(), jax.process_count(), _Store(client), float(timeout_s))


def job(timeout_s: float | None = None) -> Cluster:
    """The cluster that work called by every process of the job is split over.

    :func:`current` if :func:`initialize` joined a several-process job (its timeout
    unless ``timeout_s`` is given); :data:`LOCAL` inside :func:`local` (work that one
    process runs alone, e.g. a DDAT-paper cell or one process's systems); otherwise
    :func:`from_runtime` (a script that called ``jax.distributed.initialize`` itself).
    """
    if _local_depth > 0:
        return LOCAL
    if _current.distributed:
        if timeout_s is None:
            return _current
        return dataclasses.replace(_current, timeout_s=float(timeout_s))
    return from_runtime(DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Cluster:
    """Joins the ``jax.distributed`` job (before any JAX computation) and returns the
    cluster, which becomes :func:`current`.

    ``auto``: ``jax.distributed.initialize()`` detects everything (SLURM, Open MPI, TPU
    pods); otherwise ``coordinator_address``, ``num_processes`` and ``process_id`` are
    passed. Without either, nothing is initialised and :data:`LOCAL` is returned.
    """
    global _current
    if not auto and coordinator_address is None:
        return _current
    import jax
    from jax._src import distributed as jax_distributed  # the runtime's key-value client

    if auto:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    state = jax_distributed.global_state
    n, me = int(state.num_processes or 1), int(state.process_id or 0)
    store = _Store(state.client) if n > 1 else None
    _current = Cluster(me, n, store, float(timeout_s))
    return _current


# -- assignment (pure) -----------------------------------------------------------------
def components(names: Sequence[str], depends: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The connected components of the dependency graph, each in ``names`` order, ordered
    by their first member."""
    parent = {n: n for n in names}

    def root(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in names:
        for d in depends.get(n, ()):
            if d in parent:
                parent[root(n)] = root(d)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def deal(weights: Sequence[float], num_processes: int) -> list[int]:
    """The process of each item: heaviest first (earlier on ties), each to the
    least-loaded process (lowest id on ties)."""
    load = [0.0] * num_processes
    out = [0] * len(weights)
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        p = min(range(num_processes), key=lambda p: (load[p], p))
        out[i] = p
        load[p] += weights[i]
    return out


def assign(systems: Sequence[Any], num_processes: int) -> dict[str, int]:
    """``{system name: process}``: whole dependency components dealt by size."""
    names = [s.name for s in systems]
    comps = components(names, {s.name: tuple(s.depends) for s in systems})
    owners = deal([len(c) for c in comps], num_processes)
    return {n: p for c, p in zip(comps, owners, strict=True) for n in c}


def round_robin(count: int, num_processes: int) -> list[int]:
    """Item ``k`` goes to process ``k mod N`` (DDAT-paper cells)."""
    return [k % num_processes for k in range(count)]


def split_members(members: Sequence[int], num_processes: int, process_id: int) -> list[int]:
    """Process ``process_id``'s slice of one grid program's ``members`` (in their order):
    positions ``p, p+N, p+2N, ...``. Empty when the program has fewer members than
    ``p + 1``; the slices of all processes partition ``members``."""
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id {process_id} not in [0, {num_processes})")
    return list(members)[process_id::num_processes]


def member_owners(members: Sequence[int], num_processes: int) -> dict[int, int]:
    """``{member: process}`` of :func:`split_members` (the inverse of the slices)."""
    return {m: k % num_processes for k, m in enumerate(members)}


# -- console ---------------------------------------------------------------------------
class PrefixedStream(io.TextIOBase):
    """Writes whole lines to ``stream``, each starting with ``prefix`` (per thread, so
    lines of systems trained side by side do not mix)."""

    def __init__(self, stream, prefix: str):
        self._stream, self._prefix = stream, prefix
        self._lock = threading.Lock()
        self._partial: dict[int, str] = {}

    def write(self, text: str) -> int:
        tid = threading.get_ident()
        with self._lock:
            buf = self._partial.pop(tid, "") + text
            *lines, rest = buf.split("\n")
            if lines:
                self._stream.write("".join(f"{self._prefix}{line}\n" for line in lines))
            if rest:
                self._partial[tid] = rest
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def isatty(self) -> bool:
        return False


def prefix_console(cluster: Cluster) -> None:
    """Prefixes this process's console lines (stdout) with ``[p<i>/<n>]`` (n > 1)."""
    if cluster.distributed and not isinstance(sys.stdout, PrefixedStream):
        sys.stdout = PrefixedStream(sys.stdout, cluster.prefix)


def reporting(cluster: Cluster, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)``; a failure is published (naming ``what``) before it
    propagates."""
    try:
        return fn(*args, **kwargs)
    except BaseException as err:
        cluster.fail(f"{what}: {type(err).__name__}: {err}")
        raise


__all__ = [
    "LOCAL",
    "Cluster",
    "DistributedError",
    "MemoryStore",
    "PrefixedStream",
    "assign",
    "components",
    "current",
    "deal",
    "from_runtime",
    "initialize",
    "job",
    "local",
    "member_owners",
    "prefix_console",
    "reporting",
    "round_robin",
    "split_members",
]
