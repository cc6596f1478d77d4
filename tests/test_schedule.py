"""The system scheduler: dependency order, one system per device, failures, bad plans."""

from __future__ import annotations

import threading
import time

import pytest

from ddat_jax.experiment.schedule import check_plan, run_schedule
from ddat_jax.experiment.systems import System


def _system(name, depends=()):
    return System(name, name.upper(), job=lambda ctx, up: None, depends=tuple(depends))


def test_dependencies_run_first_and_upstream_is_passed():
    plan = [_system("b", ["a"]), _system("a"), _system("c", ["a", "b"])]
    seen = []

    def run_one(system, upstream, device):
        seen.append((system.name, sorted(upstream)))
        return f"trained-{system.name}"

    out = run_schedule(plan, run_one, ["dev0", "dev1"])
    assert out == {"a": "trained-a", "b": "trained-b", "c": "trained-c"}
    assert seen.index(("a", [])) < seen.index(("b", ["a"])) < seen.index(("c", ["a", "b"]))


def test_independent_systems_overlap_and_never_share_a_device():
    plan = [_system(n) for n in "abcd"]
    busy: dict[str, str] = {}
    lock = threading.Lock()
    overlap = []

    def run_one(system, upstream, device):
        with lock:
            assert device not in busy, f"{device} given to {system.name} while {busy}"
            busy[device] = system.name
            overlap.append(len(busy))
        time.sleep(0.05)
        with lock:
            del busy[device]
        return system.name

    assert sorted(run_schedule(plan, run_one, ["d0", "d1"])) == list("abcd")
    assert max(overlap) == 2


def test_one_device_runs_in_plan_order():
    order = []
    run_schedule(
        [_system(n) for n in "cab"], lambda s, u, d: order.append(s.name) or s.name, ["d0"]
    )
    assert order == ["c", "a", "b"]


def test_a_failure_is_raised_and_stops_new_systems():
    started = []

    def run_one(system, upstream, device):
        started.append(system.name)
        if system.name == "a":
            raise RuntimeError("boom in a")
        return system.name

    with pytest.raises(RuntimeError, match="boom in a"):
        run_schedule([_system("a"), _system("b", ["a"])], run_one, ["d0", "d1"])
    assert started == ["a"]


@pytest.mark.parametrize(
    "plan, message",
    [
        ([_system("a"), _system("a")], "duplicate"),
        ([_system("a", ["zz"])], "not planned"),
        ([_system("a", ["b"]), _system("b", ["a"])], "cycle"),
    ],
)
def test_bad_plans_are_refused(plan, message):
    with pytest.raises(ValueError, match=message):
        check_plan(plan)
