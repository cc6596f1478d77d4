"""Tests of the new pieces of the engine and driver: several views, multi-dim targets,
class targets, the typed state through orbax, device pinning, the PRNG convention and
compile-once padding of the train partition.

References are independent: float64 NumPy scores of the returned parameters, solo runs
on the default device, unpadded trainings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddat_jax.train import (
    Objective,
    RunOptions,
    Score,
    Term,
    TrainSpec,
    TrainState,
    fit,
    heads_objective,
    make_train,
    member_keys,
    predict,
    prepare_data,
    records,
    system_key,
)
from ddat_jax.train import members as M
from ddat_jax.train.data import device_arrays
from ddat_jax.train.engine import add_noise

T = 10
REPO = Path(__file__).resolve().parents[1]
HP = {
    "learning_rate": np.float32(3e-2),
    "noise_std": np.float32(0.05),
    "l2": np.float32(0.0),
    "loss_weights": {},
}


class Views(nn.Module):
    """Per-frame model of a dict of views: Dense per view, summed, tanh, heads."""

    heads: tuple[tuple[str, int], ...] = (("emotion", 1),)

    @nn.compact
    def __call__(self, inputs, mask=None):
        views = inputs if isinstance(inputs, dict) else {"x": inputs}
        h = sum(nn.Dense(8, name=f"in_{k}")(v) for k, v in sorted(views.items()))
        h = nn.tanh(h)
        return {name: nn.Dense(size, name=name)(h) for name, size in self.heads}


def views_data(seed=0, n_train=6, n_dev=3, two_views=True, dims=1):
    rng = np.random.default_rng(seed)

    def part(n):
        a = rng.normal(size=(n, T, 3)).astype(np.float32)
        v = rng.normal(size=(n, T, 2)).astype(np.float32)
        y = np.stack([np.tanh(a[..., 0] - v[..., 1] * (d + 1)) for d in range(dims)], -1)
        mask = np.ones((n, T), bool)
        mask[0, T - 3 :] = False
        inputs = {"audio": a, "video": v} if two_views else np.concatenate([a, v], -1)
        return {"inputs": inputs, "mask": mask, "targets": {"emotion": y.astype(np.float32)}}

    return {"train": part(n_train), "dev": part(n_dev)}


def np_ccc(p, t):
    p, t = p.astype(np.float64), t.astype(np.float64)
    cov = np.mean((p - p.mean()) * (t - t.mean()))
    return 2 * cov / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)


def tree_equal(a, b):
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def spec_of(model, objective=None, **kw):
    kw = {"epochs": 6, "batch_size": 2, "patience": 0} | kw
    return TrainSpec(model=model, objective=objective or heads_objective({"emotion": "mse"}), **kw)


def test_two_views_train_and_noise_per_view():
    data = views_data()
    out = jax.jit(make_train(spec_of(Views()), data))(HP, jax.random.key(0))
    assert out.history.train_loss[-1] < out.history.train_loss[0]
    assert np.isfinite(float(out.best_score))
    inputs = {"a": jnp.ones((2, T, 3)), "b": jnp.ones((2, T, 2)), "ids": jnp.ones((2, T), int)}
    mask = jnp.arange(T)[None, :] < jnp.array([[T], [4]])
    noisy = add_noise(inputs, mask, jax.random.key(1), jnp.float32(0.5))
    assert np.array_equal(noisy["ids"], inputs["ids"])  # integer views untouched
    assert np.all(noisy["a"][1, 4:] == 1.0) and np.all(noisy["a"][1, :4] != 1.0)
    assert not np.allclose(noisy["a"][..., :2], noisy["b"])  # one stream per view
    with pytest.raises(ValueError, match=r"partition 'dev': inputs\['video'\]"):
        bad = views_data()
        bad["dev"]["inputs"]["video"] = bad["dev"]["inputs"]["video"][:, :4]
        prepare_data(bad)


def test_multidim_target_selected_by_mean_ccc():
    data = views_data(two_views=False, dims=2)
    objective = heads_objective(
        {"emotion": "ccc"}, Score("mean_ccc", "emotion", "targets/emotion", dims=(0, 1))
    )
    spec = spec_of(Views(heads=(("emotion", 2),)), objective)
    out = jax.jit(make_train(spec, data))(HP, jax.random.key(3))
    dev = data["dev"]
    pred = np.asarray(predict(spec.model, out.best_params, dev["inputs"], dev["mask"])["emotion"])
    m = dev["mask"]
    ref = np.mean([np_ccc(pred[..., d][m], dev["targets"]["emotion"][..., d][m]) for d in (0, 1)])
    np.testing.assert_allclose(float(out.best_score), ref, rtol=1e-4, atol=1e-5)
    assert int(out.best_epoch) == int(np.nanargmax(out.history.dev_score))


def test_class_targets_with_xent_and_macro_f1():
    data = views_data(two_views=False)
    for p in data.values():
        p["targets"]["label"] = (p["targets"]["emotion"][..., 0] > 0).astype(np.int32)
    objective = Objective(
        (Term("xent", "logits", "targets/label"),),
        Score("macro_f1", "logits", "targets/label"),
    )
    spec = spec_of(Views(heads=(("logits", 2),)), objective, epochs=8)
    out = jax.jit(make_train(spec, data))(HP, jax.random.key(0))
    assert 0.5 < float(out.best_score) <= 1.0


def test_typed_state_roundtrip_through_orbax(tmp_path):
    data = views_data()
    spec = spec_of(Views())
    arrays = device_arrays(
        prepare_data(data), batch_size=2, train_targets=("emotion",), score_target="emotion"
    )
    hp = jax.tree.map(lambda v: np.full((2,), v, np.float32), HP)
    kd = np.asarray(jax.random.key_data(member_keys(jax.random.key(0), 2)))
    state = M.init_program(hp, kd, None, arrays, spec=spec, placement=M.Placement())
    assert isinstance(state, TrainState) and state.history.train_loss.shape == (2, 6)
    manager = records.checkpoint_manager(tmp_path, 1)
    inputs = {"hparams": hp, "key_data": kd}
    records.save(manager, 3, state, inputs)
    manager.wait_until_finished()
    back = records.restore(manager, 3, state, inputs, epochs=6)
    manager.close()
    assert isinstance(back, TrainState) and tree_equal(back, state)


def test_fit_pinned_to_one_device_equals_default(tmp_path):
    data, spec = views_data(), spec_of(Views())
    keys = member_keys(system_key(0, "pinned"), 2)
    quiet = lambda line: None
    opts = RunOptions(log_every=3, checkpoint_every=3)
    ref = fit(spec, data, HP, keys, workdir=tmp_path / "a", options=opts, progress=quiet)
    device = jax.devices()[-1]
    pinned = RunOptions(log_every=3, checkpoint_every=3, devices=(device,), label="p")
    lines = []
    out = fit(spec, data, HP, keys, workdir=tmp_path / "b", options=pinned, progress=lines.append)
    assert tree_equal((out.best_params, out.history), (ref.best_params, ref.history))
    assert lines and all(line.startswith("[p] epoch ") for line in lines)


def test_system_key_is_a_stable_function_of_the_name():
    k = system_key(0, "mtl_re")
    ref = jax.random.fold_in(jax.random.key(0), zlib.crc32(b"mtl_re"))
    np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(ref))
    assert zlib.crc32(b"mtl_re") == 1060852925  # the convention must not drift
    other = jax.random.key_data(system_key(0, "stl"))
    assert not np.array_equal(jax.random.key_data(k), other)
    # Seed i of a system is the same whether 1, 3 or 5 seeds are trained.
    three = jax.random.key_data(member_keys(k, 3))
    np.testing.assert_array_equal(jax.random.key_data(member_keys(k, 1))[0], three[0])
    np.testing.assert_array_equal(jax.random.key_data(member_keys(k, 5))[:3], three)


def test_train_size_padding_equals_unpadded_and_compiles_once(tmp_path):
    """Curriculum stages: 3 and 5 train sequences padded to 6 share one program."""
    full = views_data(n_train=6)
    stages = [
        {"train": {**full["train"], **_rows(full["train"], n)}, "dev": full["dev"]} for n in (3, 5)
    ]
    quiet = lambda line: None
    opts = RunOptions(log_every=6, checkpoint_every=6)
    keys = member_keys(jax.random.key(5), 1)
    padded = spec_of(Views(), train_size=6)
    compile_s = []
    for i, data in enumerate(stages):
        out = fit(padded, data, HP, keys, workdir=tmp_path / f"s{i}", options=opts, progress=quiet)
        ref = jax.jit(make_train(spec_of(Views()), data))(HP, keys[0])  # unpadded: its own program
        np.testing.assert_allclose(out.history.train_loss[0], ref.history.train_loss, rtol=2e-5)
        np.testing.assert_allclose(out.best_score[0], ref.best_score, rtol=1e-5, atol=1e-6)
        compile_s.append(out.compile_seconds)
    assert compile_s[1] < 0.25 * compile_s[0], compile_s


def _rows(part, n):
    return {
        "inputs": jax.tree.map(lambda a: a[:n], part["inputs"]),
        "mask": part["mask"][:n],
        "targets": {k: v[:n] for k, v in part["targets"].items()},
    }


_THREADS = textwrap.dedent(
    """
    import json, sys, tempfile, threading
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    from tests.test_loop import HP, Views, spec_of, views_data
    from ddat_jax.train import RunOptions, fit, member_keys, system_key
    assert len(jax.devices()) == 2, jax.devices()
    data, spec = views_data(), spec_of(Views())
    d = tempfile.mkdtemp()
    def run(name, devices, out):
        opts = RunOptions(log_every=3, checkpoint_every=3, devices=devices)
        keys = member_keys(system_key(0, name), 2)
        out[name] = fit(spec, data, HP, keys, workdir=f"{d}/{name}{devices}", options=opts,
                        progress=lambda line: None)
    side, alone = {}, {}
    threads = [threading.Thread(target=run, args=(n, (dev,), side))
               for n, dev in zip(("stl", "mtl"), jax.devices())]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for n in ("stl", "mtl"):
        run(n, None, alone)
    same = {n: all(np.array_equal(a, b, equal_nan=True) for a, b in zip(
        jax.tree.leaves((side[n].best_params, side[n].history)),
        jax.tree.leaves((alone[n].best_params, alone[n].history)))) for n in side}
    print("REPORT" + json.dumps(same, sort_keys=True))
    """
)


@pytest.mark.slow
def test_systems_side_by_side_in_threads_equal_alone(tmp_path):
    script = tmp_path / "threads.py"
    script.write_text(_THREADS)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(script), str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("REPORT"))
    assert line == 'REPORT{"mtl": true, "stl": true}'
