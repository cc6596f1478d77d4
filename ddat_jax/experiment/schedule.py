"""Independent systems side by side: a dependency-ordered scheduler over devices.

Each system runs in a worker thread pinned to one device; a system starts as soon as
every system it depends on has finished and a device is free (plan order breaks ties).
JAX releases the GIL while a program runs, so on a CPU split into host devices (one per
core, :func:`ddat_jax.train.grid.configure_host_devices`) two latency-bound GRU trainings
run at once on two cores; on one GPU the systems simply run one after another.

Results do not depend on the schedule: a system's data, PRNG stream (a function of its
name) and programs are the same whichever device and order it gets.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ddat_jax.experiment.systems import System, Trained


def check_plan(systems: Sequence[System]) -> None:
    """Raises ``ValueError`` for duplicate names or dependencies that cannot be met."""
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate system names in the plan: {names}")
    known = set(names)
    for s in systems:
        missing = [d for d in s.depends if d not in known]
        if missing:
            raise ValueError(f"system {s.name!r} depends on {missing}, which are not planned")
    order, done = [], set()
    while len(order) < len(systems):
        ready = [s for s in systems if s.name not in done and set(s.depends) <= done]
        if not ready:
            cycle = sorted(known - done)
            raise ValueError(f"dependency cycle among systems {cycle}")
        for s in ready:
            done.add(s.name)
            order.append(s.name)


def run_schedule(
    systems: Sequence[System],
    run_one: Callable[[System, Mapping[str, Trained], Any], Trained],
    devices: Sequence[Any],
    *,
    on_done: Callable[[System, Trained, int, int], None] | None = None,
) -> dict[str, Trained]:
    """Runs every system once its dependencies are done, at most one per device at a time.

    Args:
      systems: the plan (order = priority among ready systems).
      run_one: ``(system, upstream, device) -> Trained``; called in a worker thread.
      devices: the devices to spread systems over (one system per device at a time).
      on_done: called in the scheduling thread as ``(system, trained, done, total)``.

    Returns:
      name → :class:`Trained`, for every system.

    Raises:
      The first exception of a system (the others still running are waited for; no new
      system starts after a failure).
    """
    check_plan(systems)
    if not devices:
        raise ValueError("run_schedule needs at least one device")
    pending = list(systems)
    done: dict[str, Trained] = {}
    free = list(devices)
    running: dict[cf.Future, tuple[System, Any]] = {}
    with cf.ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="system") as pool:
        failure = None
        while (pending and failure is None) or running:
            for s in list(pending):
                if failure is not None or not free:
                    break
                if all(d in done for d in s.depends):
                    device = free.pop(0)
                    upstream = {d: done[d] for d in s.depends}
                    running[pool.submit(run_one, s, upstream, device)] = (s, device)
                    pending.remove(s)
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                s, device = running.pop(fut)
                free.append(device)
                try:
                    result = fut.result()
                except BaseException as err:  # noqa: BLE001 - re-raised below
                    failure = failure or err
                    continue
                done[s.name] = result
                if on_done is not None:
                    on_done(s, result, len(done), len(systems))
        if failure is not None:
            raise failure
    return done
