"""Several processes (ddat_jax.experiment.distributed): the assignment and the waits.

The pure parts run here in one process (the key-value store is an in-memory stand-in).
"""

from __future__ import annotations

import io
import threading
from types import SimpleNamespace

import pytest

from ddat_jax.experiment import distributed as D


def _sys(name, depends=()):
    return SimpleNamespace(name=name, depends=tuple(depends))


DDAT_PLAN = [
    _sys("mtl_re"),
    _sys("mtl_pu"),
    _sys("ddat_re_vector", ["mtl_re"]),
    _sys("ddat_re_sum", ["mtl_re"]),
    _sys("ddat_pu", ["mtl_pu"]),
    _sys("dnn"),
    _sys("stl"),
]


def test_components_follow_dependencies():
    names = [s.name for s in DDAT_PLAN]
    deps = {s.name: s.depends for s in DDAT_PLAN}
    assert D.components(names, deps) == [
        ["mtl_re", "ddat_re_vector", "ddat_re_sum"],
        ["mtl_pu", "ddat_pu"],
        ["dnn"],
        ["stl"],
    ]


def test_assign_keeps_components_together_and_balances():
    owner = D.assign(DDAT_PLAN, 2)
    assert owner["mtl_re"] == owner["ddat_re_vector"] == owner["ddat_re_sum"] == 0
    assert owner["mtl_pu"] == owner["ddat_pu"] == 1
    loads = [sum(1 for p in owner.values() if p == k) for k in range(2)]
    assert sorted(loads) == [3, 4]
    assert D.assign(DDAT_PLAN, 2) == owner  # deterministic
    assert set(D.assign(DDAT_PLAN, 1).values()) == {0}
    # More processes than components: the extra ones get nothing.
    assert set(D.assign([_sys("a"), _sys("b", ["a"])], 3).values()) == {0}


def test_deal_and_round_robin():
    assert D.deal([1, 1, 1, 1], 2) == [0, 1, 0, 1]
    assert D.deal([1, 5, 2], 2) == [1, 0, 1]
    assert D.round_robin(6, 4) == [0, 1, 2, 3, 0, 1]


def test_wait_returns_published_values():
    store = D.MemoryStore()
    p0 = D.Cluster(0, 2, store, timeout_s=5, poll_s=0.01)
    p1 = D.Cluster(1, 2, store, timeout_s=5, poll_s=0.01)
    threading.Timer(0.05, lambda: p1.publish("runs/x", "stl", "ran in 3 s")).start()
    assert p0.wait("runs/x", {"stl": 1}, "stl") == {"stl": "ran in 3 s"}
    assert p0.wait("runs/x", {}, "nothing") == {}


def test_wait_raises_another_process_failure():
    store = D.MemoryStore()
    p0 = D.Cluster(0, 2, store, timeout_s=5, poll_s=0.01)
    p1 = D.Cluster(1, 2, store, timeout_s=5, poll_s=0.01)
    with pytest.raises(ValueError):
        D.reporting(p1, "system 'stl' (STL)", _raise, ValueError("boom"))
    with pytest.raises(D.DistributedError, match=r"process 1/2: system 'stl' \(STL\).*boom"):
        p0.wait("runs/x", {"stl": 1}, "stl")


def _raise(err):
    raise err


def test_wait_times_out_naming_the_owner():
    p0 = D.Cluster(0, 2, D.MemoryStore(), timeout_s=0.05, poll_s=0.01)
    with pytest.raises(D.DistributedError, match=r"timed out.*'stl' \(process 1\)"):
        p0.wait("runs/x", {"stl": 1}, "the other processes' systems")


def test_local_cluster_is_one_process():
    assert not D.LOCAL.distributed and D.LOCAL.is_coordinator and D.LOCAL.prefix == ""
    D.LOCAL.publish("x", "y")  # no store: nothing happens
    D.LOCAL.fail("nothing")
    assert D.LOCAL.failures() == {}
    with D.local():
        assert D.current() is D.LOCAL


def test_prefixed_stream_whole_lines():
    out = io.StringIO()
    stream = D.PrefixedStream(out, "[p1/2] ")
    stream.write("a")
    stream.write("b\nc\n")
    print("d", file=stream)
    assert out.getvalue() == "[p1/2] ab\n[p1/2] c\n[p1/2] d\n"
