"""Several processes (ddat_jax.experiment.distributed): the assignment and the waits,
process-local checkpoints, and whole two-process jobs.

The pure parts run here in one process (the key-value store is an in-memory stand-in);
the checkpoint backend of several-process jobs and the host copies run in one process
with ``jax.process_count`` patched. The ``slow`` tests start real ``jax.distributed`` jobs
(two ``python -m ddat_jax.main`` processes, a localhost coordinator) and compare their
tables with one process's.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from ddat_jax.experiment import distributed as D
from ddat_jax.train import (
    RunOptions,
    TrainSpec,
    TrainState,
    fit,
    heads_objective,
    loop,
    member_keys,
    prepare_data,
    records,
    system_key,
)
from ddat_jax.train import members as M
from ddat_jax.train.data import device_arrays


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


# -- process-local checkpoints and host copies (one process) ---------------------------
T = 8
HP = {
    "learning_rate": np.float32(3e-2),
    "noise_std": np.float32(0.0),
    "l2": np.float32(0.0),
    "loss_weights": {},
}


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, inputs, mask=None):
        return {"emotion": nn.Dense(1)(nn.tanh(nn.Dense(4)(inputs)))}


def _data(seed=0):
    rng = np.random.default_rng(seed)

    def part(n):
        x = rng.normal(size=(n, T, 3)).astype(np.float32)
        y = np.tanh(x[..., :1] - x[..., 1:2])
        return {"inputs": x, "mask": np.ones((n, T), bool), "targets": {"emotion": y}}

    return {"train": part(4), "dev": part(2)}


def _spec(epochs=4):
    return TrainSpec(
        model=_Tiny(),
        objective=heads_objective({"emotion": "mse"}),
        epochs=epochs,
        batch_size=2,
        patience=0,
    )


def _same(a, b):
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _state(key=0):
    arrays = device_arrays(
        prepare_data(_data()), batch_size=2, train_targets=("emotion",), score_target="emotion"
    )
    hp = jax.tree.map(lambda v: np.full((2,), v, np.float32), HP)
    kd = np.asarray(jax.random.key_data(member_keys(jax.random.key(key), 2)))
    state = M.init_program(hp, kd, None, arrays, spec=_spec(), placement=M.Placement())
    return state, {"hparams": hp, "key_data": kd}


def test_local_checkpoints_round_trip_and_refuse_another_run(tmp_path):
    state, inputs = _state()
    ckpt = records.LocalCheckpoints(tmp_path, keep=2)
    assert ckpt.latest_step() is None and not (tmp_path / "checkpoints_local").exists()
    for step in (1, 2, 3):
        records.save(ckpt, step, state, inputs)
    ckpt.wait_until_finished()
    assert ckpt.all_steps() == [2, 3] and ckpt.latest_step() == 3  # the last `keep`
    assert sorted(p.name for p in (tmp_path / "checkpoints_local").iterdir()) == [
        "2.msgpack",
        "3.msgpack",
    ]
    back = records.restore(ckpt, 3, state, inputs, epochs=4)
    assert isinstance(back, TrainState) and _same(back, state)
    placed = zip(jax.tree.leaves(back), jax.tree.leaves(state), strict=True)
    assert all(b.sharding == s.sharding and b.dtype == s.dtype for b, s in placed)
    _, other = _state(key=1)  # other PRNG keys: another run
    with pytest.raises(ValueError, match="checkpoint of a different run"):
        records.restore(ckpt, 3, state, other, epochs=4)
    with pytest.raises(ValueError, match="> epochs"):
        records.restore(ckpt, 3, state, inputs, epochs=2)
    ckpt.close()


def test_checkpoint_backend_follows_the_process_count(tmp_path, monkeypatch):
    manager = records.checkpoint_manager(tmp_path / "one", 2)
    assert not isinstance(manager, records.LocalCheckpoints)
    manager.close()
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    assert isinstance(records.checkpoint_manager(tmp_path / "two", 2), records.LocalCheckpoints)


def test_one_process_fit_resumes_a_several_process_fit(tmp_path, monkeypatch):
    """A fit of a several-process job (process-local checkpoints) is reloaded by a
    one-process fit without training again, and gives the same result."""
    data, spec, keys = _data(), _spec(), member_keys(system_key(0, "tiny"), 2)
    quiet = lambda line: None
    opts = RunOptions(log_every=2, checkpoint_every=2)
    ref = fit(spec, data, HP, keys, workdir=tmp_path / "ref", options=opts, progress=quiet)
    with monkeypatch.context() as m:
        m.setattr(jax, "process_count", lambda: 2)
        two = fit(spec, data, HP, keys, workdir=tmp_path / "w", options=opts, progress=quiet)
    assert sorted(p.name for p in (tmp_path / "w/checkpoints_local").iterdir()) == [
        "2.msgpack",
        "4.msgpack",
    ]
    assert not (tmp_path / "w/checkpoints").exists()
    lines = []
    one = fit(spec, data, HP, keys, workdir=tmp_path / "w", options=opts, progress=lines.append)
    assert lines == ["resumed at epoch 4"]
    assert not any((tmp_path / "w/checkpoints").iterdir())  # nothing trained, nothing saved
    for out in (two, one):
        assert _same((out.best_params, out.history), (ref.best_params, ref.history))


def test_host_copies_process_local_arrays_without_a_collective(monkeypatch):
    from jax.experimental import multihost_utils

    def refuse(*args, **kwargs):
        raise AssertionError("process_allgather on process-local arrays")

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(multihost_utils, "process_allgather", refuse)
    tree = {"a": jnp.arange(4.0), "b": (jnp.ones((2, 3), jnp.int32), np.float32(1))}
    host = loop._host(tree)
    assert isinstance(host["a"], np.ndarray) and _same(host, tree)


# -- end to end: two processes on localhost (subprocesses) -----------------------------
REPO = Path(__file__).resolve().parents[1]
JOB_TIMEOUT_S = 900
RE_SMOKE = ["--config=configs/recola_re.py:smoke", "--config.ddat.systems=('stl','mtl_re')"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _job(workdir: Path, args, root: Path, processes: int = 1) -> list[str]:
    """``python -m ddat_jax.main`` with ``processes`` processes (a localhost coordinator);
    returns each process's console. Every process is killed if one fails or hangs."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "ddat_jax.main", f"--workdir={workdir}", *args]
    cmd += [f"--config.data.root={root}", "--nocompilation_cache"]
    if processes > 1:
        cmd += [f"--coordinator_address=localhost:{_free_port()}", f"--num_processes={processes}"]
    logs = [workdir.parent / f"{workdir.name}.p{i}.log" for i in range(processes)]
    procs = []
    try:
        for i in reversed(range(processes)):  # the coordinator last: the others wait for it
            extra = [f"--process_id={i}"] if processes > 1 else []
            with logs[i].open("w") as out:
                procs.append(
                    subprocess.Popen(
                        cmd + extra, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
        deadline = time.monotonic() + JOB_TIMEOUT_S
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        texts = [log.read_text() for log in logs]
        for i, p in zip(reversed(range(processes)), procs, strict=True):
            assert p.returncode == 0, f"process {i} failed:\n{texts[i][-4000:]}"
        return texts
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _same_tables(a: Path, b: Path) -> list[str]:
    names = sorted(p.name for p in a.glob("*.csv"))
    assert names and names == sorted(p.name for p in b.glob("*.csv"))
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_csv(a / name), pd.read_csv(b / name), check_exact=False, rtol=1e-6
        )
    return names


@pytest.fixture(scope="module")
def re_runs(tmp_path_factory, small_corpus_root):
    """recola_re smoke (STL, MTL-RE) by two processes and by one."""
    base = tmp_path_factory.mktemp("re")
    two = _job(base / "two", RE_SMOKE, small_corpus_root, processes=2)
    one = _job(base / "one", RE_SMOKE, small_corpus_root)
    return base, two, one


def test_two_processes_give_the_tables_of_one(re_runs):
    """(About 40 s on a loaded 2-core CPU: two jobs, compilation cache off.)"""
    base, (p0, p1), _ = re_runs
    assert "[p0/2] this process trains MTL-RE" in p0 and "[p0/2] loading STL" in p0
    assert "[p1/2] this process trains STL" in p1 and "[p1/2] [MTL-RE]" not in p1
    assert "[p0/2] [STL 1x16] resumed at epoch" in p0  # the coordinator reloads STL
    _same_tables(base / "two/results", base / "one/results")
    for s in ("stl", "mtl_re"):
        assert list((base / f"two/train/{s}").glob("*/checkpoints_local/*.msgpack"))
        assert not list((base / f"two/train/{s}").glob("*/checkpoints/*"))
    assert (base / "two/report.md").is_file() and (base / "two/log.p1.txt").is_file()


@pytest.mark.slow
def test_workdirs_resume_across_process_counts(re_runs, small_corpus_root, tmp_path):
    """A two-process workdir resumes with one process and a one-process workdir with two,
    from the other backend's checkpoints, training nothing again."""
    base = re_runs[0]
    shutil.copytree(base / "two", tmp_path / "two")
    shutil.copytree(base / "one", tmp_path / "one")
    (log,) = _job(tmp_path / "two", RE_SMOKE, small_corpus_root)
    p0, p1 = _job(tmp_path / "one", RE_SMOKE, small_corpus_root, processes=2)
    for text in (log, p0, p1):
        assert "epoch 1/" not in text  # no chunk trained
    assert "[STL 1x16] resumed at epoch 3" in log and "[MTL-RE 1x16] resumed at epoch 3" in log
    assert "[p1/2] [STL 1x16] resumed at epoch 3" in p1
    for run in ("two", "one"):
        _same_tables(tmp_path / run / "results", base / "one/results")


@pytest.mark.slow
def test_ddat_paper_cells_over_two_processes(tmp_path, small_corpus_root):
    args = ["--config=configs/ddat_paper.py:smoke", "--config.paper.feature_sets=('audio',)"]
    p0, p1 = _job(tmp_path / "two", args, small_corpus_root, processes=2)
    assert "[cell audio-valence] ran in" in p1 and "on process 1" in p0
    _job(tmp_path / "one", args, small_corpus_root)
    _same_tables(tmp_path / "two/results", tmp_path / "one/results")
    for cell in ("audio-arousal", "audio-valence"):
        _same_tables(tmp_path / f"two/cells/{cell}/results", tmp_path / f"one/cells/{cell}/results")
