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
import json
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


# -- grids split over processes (ddat_jax.train.grid.run_grid) ---------------------------
def _grid_config(**grid):
    import ml_collections

    from ddat_jax.train import default_train_config
    from ddat_jax.train import grid as G

    cfg = ml_collections.ConfigDict()
    cfg.seed = 3
    cfg.update(default_train_config())
    cfg.train.epochs = 3
    cfg.train.batch_size = 2
    cfg.train.patience = 0
    cfg.grid = G.default_grid_config()
    cfg.grid.update(grid)
    return cfg


def test_split_members_partitions_each_program_in_order():
    assert D.split_members([0, 1, 2, 3, 4], 2, 0) == [0, 2, 4]
    assert D.split_members([0, 1, 2, 3, 4], 2, 1) == [1, 3]
    assert D.split_members([7, 9], 3, 2) == []  # fewer members than processes
    for n in (1, 2, 3, 5):
        members = [3, 4, 8, 10, 11, 12, 20]
        slices = [D.split_members(members, n, p) for p in range(n)]
        assert sorted(m for s in slices for m in s) == members
        owners = D.member_owners(members, n)
        assert all(owners[m] == p for p, s in enumerate(slices) for m in s)
    with pytest.raises(ValueError, match="process_id 2"):
        D.split_members([0], 2, 2)


def test_job_cluster_is_local_with_one_process_and_inside_local(monkeypatch):
    assert D.job() is D.LOCAL and D.from_runtime() is D.LOCAL
    split = D.Cluster(1, 2, D.MemoryStore(), timeout_s=9.0)
    monkeypatch.setattr(D, "_current", split)
    assert D.job() is split and D.job(timeout_s=3).timeout_s == 3.0
    with D.local():
        assert D.job() is D.LOCAL
    assert D.job() is split


def test_grid_parts_round_trip_and_assemble(tmp_path):
    from ddat_jax.train import grid as G
    from ddat_jax.train.grid import run as R

    table = G.expand_grid(_grid_config(learning_rate=(1e-2, 3e-2, 1e-1), seeds=2))
    programs = [np.arange(6)]
    rng = np.random.default_rng(0)
    full = {
        "best_dev_score": rng.normal(size=6),
        "test_score": np.full(6, np.nan),
        "best_epoch": rng.integers(0, 3, 6),
        "stopped_epoch": np.full(6, -1),
        "nonfinite_epoch": np.full(6, -1),
    }
    full["best_dev_score"][3] = -np.inf
    ref = table.copy()
    R._record(ref, programs[0], 0, full)
    parts = []
    for p in (1, 0):  # any order
        mine = D.split_members(list(range(6)), 2, p)
        cols = {c: v[mine] for c, v in full.items()}
        params = {m: {"params": {"w": np.full((2, 3), m, np.float32)}} for m in mine}
        R.write_part(
            tmp_path / f"p{p}",
            process=p,
            program=0,
            members=mine,
            columns=cols,
            params=params,
            info={"process": p},
        )
        parts.append(R.read_part(tmp_path / f"p{p}"))
    assert parts[0]["members"] == [1, 3, 5] and parts[0]["columns"]["best_dev_score"][1] == -np.inf
    back = R.read_part_params(tmp_path / "p1", 3)
    np.testing.assert_array_equal(back["params"]["w"], np.full((2, 3), 3, np.float32))
    result = R.assemble(table, programs, parts, 2)
    pd.testing.assert_frame_equal(result, ref)
    assert result["best_epoch"].dtype == np.int64 and list(result["member"]) == list(range(6))
    with pytest.raises(ValueError, match="no part of process 1"):
        R.assemble(table, programs, parts[1:], 2)
    with pytest.raises(ValueError, match="expected"):
        R.assemble(table, programs, parts, 3)  # another split: stale parts


class _TinyHeads(nn.Module):
    @nn.compact
    def __call__(self, inputs, mask=None):
        return {"emotion": nn.Dense(1)(nn.tanh(nn.Dense(4)(inputs)))}


def _threads(*calls):
    """Runs ``calls`` side by side (stand-ins for processes); returns results or errors."""
    out = [None] * len(calls)

    def run(i):
        try:
            out[i] = calls[i]()
        except BaseException as err:  # noqa: BLE001 - returned to the test
            out[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return out


def test_split_grid_in_threads_equals_one_process(tmp_path):
    """Two stand-in processes (threads sharing an in-memory key-value store) split a
    6-member grid: both return the one-process table; only process 0 writes results/."""
    from ddat_jax.train import grid as G

    cfg = _grid_config(learning_rate=(1e-2, 3e-2, 1e-1), seeds=2)
    data, quiet = _data(), lambda line: None
    kw = dict(build_model_fn=_TinyHeads, key=system_key(0, "g"), progress=quiet)
    ref = G.run_grid(cfg, data, workdir=tmp_path / "one", **kw)
    store = D.MemoryStore()
    clusters = [D.Cluster(p, 2, store, timeout_s=120, poll_s=0.01) for p in range(2)]
    two = _threads(
        *[
            lambda c=c: G.run_grid(cfg, data, workdir=tmp_path / "two", cluster=c, **kw)
            for c in clusters
        ]
    )
    for out in two:
        assert isinstance(out, pd.DataFrame), out
        pd.testing.assert_frame_equal(out, ref, check_exact=False, rtol=1e-5)
        assert out.attrs["best"]["member"] == ref.attrs["best"]["member"]
        assert _close(out.attrs["best_params"], ref.attrs["best_params"])
        assert [p["members"] for p in out.attrs["programs"][0]["processes"]] == [3, 3]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "two/results/grid.csv"),
        pd.read_csv(tmp_path / "one/results/grid.csv"),
        check_exact=False,
        rtol=1e-5,
    )
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["p0of2", "p1of2", "results"]
    assert (tmp_path / "two/p1of2/grid_part.json").is_file()
    assert G.load_best_params(tmp_path / "two").keys() == ref.attrs["best_params"].keys()
    # A re-run with the same process count resumes every fit (nothing trained again).
    lines, store = [], D.MemoryStore()
    again = _threads(
        *[
            lambda p=p: G.run_grid(
                cfg,
                data,
                workdir=tmp_path / "two",
                cluster=D.Cluster(p, 2, store, 120, 0.01),
                **{**kw, "progress": lines.append},
            )
            for p in range(2)
        ]
    )
    assert sorted(lines) == [f"[grid 1/1 p{p}/2] resumed at epoch 3" for p in range(2)]
    pd.testing.assert_frame_equal(again[0], two[0])


def _close(a, b):
    return all(
        np.allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_split_grid_failure_and_timeout_name_the_process(tmp_path):
    """A process that fails is named in the other's error; a process that never comes
    is named when the wait times out. (One member: process 1's slice is empty, it only
    waits.)"""
    from ddat_jax.train import grid as G

    cfg = _grid_config()

    def broken():
        raise RuntimeError("no model here")

    store = D.MemoryStore()
    c0, c1 = (D.Cluster(p, 2, store, timeout_s=60, poll_s=0.01) for p in range(2))
    run = lambda c, fn: (
        lambda: G.run_grid(cfg, _data(), workdir=tmp_path / "a", build_model_fn=fn, cluster=c)
    )
    e0, e1 = _threads(run(c0, broken), run(c1, _TinyHeads))
    assert isinstance(e0, RuntimeError) and "no model here" in str(e0)
    assert isinstance(e1, D.DistributedError)
    assert "process 0/2: grid 'grid' in" in str(e1) and "no model here" in str(e1)
    alone = D.Cluster(1, 2, D.MemoryStore(), timeout_s=0.1, poll_s=0.01)
    with pytest.raises(D.DistributedError, match=r"timed out.*'parts/p0' \(process 0\)"):
        run(alone, _TinyHeads)()


# A user's grid script: `jax.distributed.initialize` (when several processes), then
# run_grid into a shared workdir. Arguments: workdir out.json [process_id num_processes port].
GRID_SCRIPT = """
import json, sys, time
from pathlib import Path

import jax

workdir, out = Path(sys.argv[1]), Path(sys.argv[2])
if len(sys.argv) > 3:
    me, n, port = (int(a) for a in sys.argv[3:6])
    jax.distributed.initialize(
        coordinator_address=f"localhost:{port}", num_processes=n, process_id=me
    )

import ml_collections
import numpy as np

from ddat_jax.models import MultiTaskRNN
from ddat_jax.train import default_train_config, system_key
from ddat_jax.train import grid as G

T, F = 16, 4
rng = np.random.default_rng(0)


def part(n):
    x = rng.normal(size=(n, T, F)).astype(np.float32)
    y = np.tanh(x @ np.array([0.8, -0.4, 0.2, 0.1], np.float32))[..., None]
    return {"inputs": x, "mask": np.ones((n, T), bool), "targets": {"emotion": y}}


data = {"train": part(6), "dev": part(3), "test": part(3)}
cfg = ml_collections.ConfigDict()
cfg.seed = 3
cfg.update(default_train_config())
cfg.train.epochs, cfg.train.batch_size, cfg.train.patience = 3, 2, 0
cfg.grid = G.default_grid_config()
cfg.grid.learning_rate = (1e-2, 3e-2)
cfg.grid.seeds = 3
build = lambda: MultiTaskRNN(hidden_size=8, num_layers=1, heads={"emotion": 1})
t0 = time.perf_counter()
table = G.run_grid(
    cfg, data, workdir=workdir, build_model_fn=build, key=system_key(0, "grid"),
    progress=lambda line: print(line, flush=True),
)
seconds = time.perf_counter() - t0
table.attrs = {}
out.write_text(json.dumps({"seconds": seconds, "table": table.to_json(orient="split")}))
print(f"run_grid took {seconds:.1f} s", flush=True)
"""


def _grid_job(tmp: Path, name: str, processes: int) -> list[dict]:
    """GRID_SCRIPT with ``processes`` processes into ``tmp/name``; each process's output."""
    script = tmp / "grid_script.py"
    script.write_text(GRID_SCRIPT)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    port, procs, outs = _free_port(), [], []
    try:
        for i in reversed(range(processes)):
            extra = [str(i), str(processes), str(port)] if processes > 1 else []
            outs.insert(0, tmp / f"{name}.p{i}.json")
            cmd = [sys.executable, str(script), str(tmp / name), str(outs[0]), *extra]
            with (tmp / f"{name}.p{i}.log").open("w") as log:
                procs.append(
                    subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + JOB_TIMEOUT_S
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        for i, p in zip(reversed(range(processes)), procs, strict=True):
            log = (tmp / f"{name}.p{i}.log").read_text()
            assert p.returncode == 0, f"process {i} failed:\n{log[-4000:]}"
        return [json.loads(o.read_text()) for o in outs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_grid_over_two_processes_equals_one(tmp_path):
    """A 6-member GRU grid (2 learning rates x 3 seeds, 3 epochs) run by two
    jax.distributed processes equals the one-process run: results/ tables, selected
    member, best parameters; each process's share in p<i>of2/ with process-local
    checkpoints. (About 30 s on a loaded 2-core CPU: three processes, no compilation
    cache.)"""
    from ddat_jax.train import grid as G

    (one,) = _grid_job(tmp_path, "one", 1)
    two = _grid_job(tmp_path, "two", 2)
    a, b = tmp_path / "two", tmp_path / "one"
    pd.testing.assert_frame_equal(
        pd.read_csv(a / "results/grid.csv"),
        pd.read_csv(b / "results/grid.csv"),
        check_exact=False,
        rtol=1e-5,
    )
    best_a, best_b = (json.loads((w / "results/grid_best.json").read_text()) for w in (a, b))
    assert best_a["member"] == best_b["member"] and best_a.keys() == best_b.keys()
    assert np.isclose(best_a["best_dev_score"], best_b["best_dev_score"], rtol=1e-5)
    assert _close(G.load_best_params(a), G.load_best_params(b))
    ref = pd.read_json(io.StringIO(one["table"]), orient="split")
    for out in two:  # both processes return the assembled table
        got = pd.read_json(io.StringIO(out["table"]), orient="split")
        pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-5)
    assert sorted(p.name for p in a.iterdir()) == ["p0of2", "p1of2", "results"]
    for p in ("p0of2", "p1of2"):
        assert json.loads((a / p / "grid_part.json").read_text())["members"] == (
            [0, 2, 4] if p == "p0of2" else [1, 3, 5]
        )
        assert list((a / p / "checkpoints_local").glob("*.msgpack"))
    print(
        f"run_grid: 1 process {one['seconds']:.1f} s, 2 processes "
        f"{max(o['seconds'] for o in two):.1f} s"
    )


def test_split_arch_grid_in_threads_equals_one_process(tmp_path):
    """Padded architecture programs split the same way (each process extracts its
    members' unpadded parameters)."""
    from ddat_jax.models import MultiTaskRNN
    from ddat_jax.train import grid as G

    cfg = _grid_config(arch=((1, 4), (2, 3)), seeds=3, arch_grouping="all")

    def build(num_layers=1, hidden_size=4):
        return MultiTaskRNN(hidden_size=hidden_size, num_layers=num_layers, heads={"emotion": 1})

    data, quiet = _data(), lambda line: None
    kw = dict(build_model_fn=build, key=system_key(0, "arch"), progress=quiet)
    ref = G.run_grid(cfg, data, workdir=tmp_path / "one", **kw)
    assert ref.attrs["programs"][0]["padded"]
    store = D.MemoryStore()
    two = _threads(
        *[
            lambda p=p: G.run_grid(
                cfg, data, workdir=tmp_path / "two", cluster=D.Cluster(p, 2, store, 120, 0.01), **kw
            )
            for p in range(2)
        ]
    )
    for out in two:
        assert isinstance(out, pd.DataFrame), out
        pd.testing.assert_frame_equal(out, ref, check_exact=False, rtol=1e-5)
        assert _close(out.attrs["best_params"], ref.attrs["best_params"])
