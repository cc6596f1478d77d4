"""Execution of many members (trainings) as one program: strategies and placement.

Strategies (``RunOptions.strategy``), inside each compiled chunk:

* ``"vmap"``: ``jax.vmap`` over members — batches the small recurrent matmuls; the win
  on GPU/TPU, where a scan step is latency-bound.
* ``"map"``: ``lax.map`` over members — one member after another inside the program,
  memory of one member; the win on CPU, where one small recurrent matmul already runs
  near a core's peak and vmapping only adds temporaries that miss cache.
* ``"chunked"``: ``lax.map(..., batch_size=chunk_size)`` — vmap within chunks of members.
* ``"loop"``: a Python loop over members of a one-member program (the reference).
* ``"auto"``: ``"map"`` on CPU, ``"vmap"`` on GPU/TPU (README, "Execution strategy per
  backend", has the measurements).

Placement (``RunOptions.devices``): ``None`` runs on the default device; one device
commits every array (and so every program) to it — independent systems can then train
side by side in threads, one per host device; several devices split the member axis
over a 1-D ``Mesh`` with ``jax.shard_map`` (members padded to a multiple of the device
count by repeating the last one), each device running the strategy on its share.

The programs are module-level ``jax.jit`` functions with the spec, strategy, lengths
and mesh as static arguments, so JAX's own compilation cache (keyed by those, the
argument shapes and their devices) makes equal trainings compile once, thread-safely.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

from ddat_jax.train import engine

PyTree = Any
STRATEGIES = ("auto", "vmap", "map", "chunked", "loop")
AXIS = "members"


def choose_strategy(strategy: str = "auto", backend: str | None = None) -> str:
    """Resolves ``"auto"``: ``"map"`` on CPU, ``"vmap"`` on GPU/TPU."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; valid: {list(STRATEGIES)}")
    if strategy != "auto":
        return strategy
    return "map" if (backend or jax.default_backend()) == "cpu" else "vmap"


def over_members(fn: Callable, strategy: str, chunk_size: int) -> Callable:
    """``fn(per, shared)`` for one member -> the same over a leading member axis of ``per``."""
    if strategy == "vmap":
        return jax.vmap(fn, in_axes=(0, None))
    if strategy == "map":
        return lambda per, shared: jax.lax.map(lambda a: fn(a, shared), per)
    if strategy == "chunked":
        return lambda per, shared: jax.lax.map(lambda a: fn(a, shared), per, batch_size=chunk_size)
    raise ValueError(f"no in-program runner for strategy {strategy!r}")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a fit's arrays live: the default device, one device, or a mesh."""

    device: Any = None
    mesh: Mesh | None = None

    @staticmethod
    def of(devices: Sequence[Any] | None) -> Placement:
        if devices is None:
            return Placement()
        devices = tuple(devices)
        if not devices:
            raise ValueError("devices: an empty tuple")
        if len(devices) == 1:
            return Placement(device=devices[0])
        return Placement(mesh=Mesh(np.asarray(devices), (AXIS,)))

    @property
    def multiple(self) -> int:
        """Members are padded to a multiple of this."""
        return 1 if self.mesh is None else self.mesh.devices.size

    def sharding(self, per_member: bool):
        if self.mesh is not None:
            return NamedSharding(self.mesh, P(AXIS) if per_member else P())
        return None if self.device is None else SingleDeviceSharding(self.device)

    def put(self, tree: PyTree, per_member: bool) -> PyTree:
        sharding = self.sharding(per_member)
        if sharding is None:
            return jax.tree.map(jnp.asarray, tree)
        if self.mesh is None:
            return jax.device_put(tree, sharding)

        def put(a):
            a = np.asarray(a)
            return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

        return jax.tree.map(put, tree)


def pad_members(tree: PyTree, multiple: int) -> PyTree:
    """Repeats the last member so that the member axis is a multiple of ``multiple``."""
    k = jax.tree.leaves(tree)[0].shape[0]
    pad = (-k) % multiple
    if not pad:
        return tree
    return jax.tree.map(lambda a: np.concatenate([a, np.repeat(np.asarray(a)[-1:], pad, 0)]), tree)


def _wrap(key_data):
    return jax.random.wrap_key_data(key_data)


def _member_init(spec, per, shared):
    hparams, key_data, params = per
    return engine.init_state(spec, hparams, _wrap(key_data), shared, params)


@functools.partial(jax.jit, static_argnames=("spec", "placement"))
def init_program(hparams, key_data, params, arrays, *, spec, placement):
    """Initial states of all members (vmapped; cheap), placed like the members."""
    init = jax.vmap(functools.partial(_member_init, spec), in_axes=(0, None))
    state = init((hparams, key_data, params), arrays)
    sharding = placement.sharding(True)
    return state if sharding is None else jax.lax.with_sharding_constraint(state, sharding)


def _member_epochs(spec, length, per, shared):
    state, hparams, key_data = per
    first_epoch, arrays = shared
    return engine.run_epochs(
        spec, state, hparams, _wrap(key_data), first_epoch, arrays, length=length
    )


@functools.partial(
    jax.jit, static_argnames=("spec", "length", "strategy", "chunk_size", "placement")
)
def chunk_program(
    state, hparams, key_data, first_epoch, arrays, *, spec, length, strategy, chunk_size, placement
):
    """``length`` epochs of every member (leading member axis), one compiled program."""
    fn = over_members(functools.partial(_member_epochs, spec, length), strategy, chunk_size)
    per, shared = (state, hparams, key_data), (first_epoch, arrays)
    if placement.mesh is None:
        return fn(per, shared)
    sharded = jax.shard_map(
        fn, mesh=placement.mesh, in_specs=(P(AXIS), P()), out_specs=P(AXIS), check_vma=False
    )
    return sharded(per, shared)


@functools.partial(jax.jit, static_argnames=("spec", "length"))
def one_member_program(state, hparams, key_data, first_epoch, arrays, *, spec, length):
    """``length`` epochs of one member (the ``"loop"`` strategy)."""
    return _member_epochs(spec, length, (state, hparams, key_data), (first_epoch, arrays))


def run_chunk(
    state, hparams, key_data, first_epoch, arrays, *, spec, length, strategy, chunk_size, placement
) -> engine.TrainState:
    """Dispatches one chunk with the resolved ``strategy`` (asynchronously)."""
    if strategy != "loop":
        return chunk_program(
            state,
            hparams,
            key_data,
            first_epoch,
            arrays,
            spec=spec,
            length=length,
            strategy=strategy,
            chunk_size=chunk_size,
            placement=placement,
        )
    k = key_data.shape[0]
    take = lambda tree, i: jax.tree.map(lambda a: a[i], tree)
    outs = [
        one_member_program(
            take(state, i),
            take(hparams, i),
            key_data[i],
            first_epoch,
            arrays,
            spec=spec,
            length=length,
        )
        for i in range(k)
    ]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)


__all__ = [
    "STRATEGIES",
    "Placement",
    "choose_strategy",
    "chunk_program",
    "init_program",
    "one_member_program",
    "over_members",
    "pad_members",
    "run_chunk",
]
