"""Tests of the training engine (``make_train``) and the one driver (``fit``).

References are independent: a float64 NumPy CCC, a hand-written masked loss for the
one-step SGD check, solo runs for the vmapped grid. A tiny per-frame Dense model with a
heads dict stands in for the recurrent models (the engine takes any linen module).
"""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from ddat_jax.train import (
    RunOptions,
    broadcast_hparams,
    default_train_config,
    fit,
    heads_objective,
    hparams_from_config,
    make_train,
    predict,
    train_spec_from_config,
)

F = 3  # features
T = 12  # frames per sequence
W_TRUE = np.array([1.0, -0.5, 0.3])


class Tiny(nn.Module):
    """Per-frame Dense(8) -> tanh -> one Dense per head."""

    heads: tuple[tuple[str, int], ...] = (("emotion", 1),)

    @nn.compact
    def __call__(self, x, mask=None):
        h = nn.tanh(nn.Dense(8, name="hidden")(x))
        return {name: nn.Dense(size, name=name)(h) for name, size in self.heads}


# Jitted once per model and shapes (eager op-by-op dispatch would dominate the tests).
predict_jit = jax.jit(predict, static_argnums=(0, 4))


def np_ccc(pred, target, mask):
    """Population-statistics CCC over the valid frames (float64)."""
    p = np.asarray(pred, np.float64)[np.asarray(mask)]
    t = np.asarray(target, np.float64)[np.asarray(mask)]
    cov = np.mean((p - p.mean()) * (t - t.mean()))
    return 2 * cov / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)


def make_part(rng, n, sign=1.0):
    x = rng.normal(size=(n, T, F)).astype(np.float32)
    y = sign * np.tanh(x @ W_TRUE)
    mask = np.ones((n, T), bool)
    mask[0, T - 4 :] = False  # one shorter sequence
    x[0, T - 4 :] = 0.0
    unc = np.abs(y) * 0.5 + 0.1
    return {
        "inputs": x,
        "mask": mask,
        "targets": {"emotion": y[..., None], "uncertainty": unc[..., None]},
    }


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return {"train": make_part(rng, 7), "dev": make_part(rng, 3)}


def small_config(**train):
    cfg = default_train_config()
    cfg.train.epochs = 4
    cfg.train.batch_size = 3  # 7 sequences -> 3 minibatches, the last one padded
    cfg.train.patience = 0
    cfg.train.update(train)
    cfg.hparams.learning_rate = 1e-2
    return cfg


def spec_of(cfg, model, losses=None, **overrides):
    objective = heads_objective(losses or {h: "mse" for h in dict(model.heads)})
    return train_spec_from_config(cfg.train, model, objective, **overrides)


BASE_KEY = 11
BASE_NOISE = 0.1
PATIENCE = 3


def base_config():
    """The setting shared by several tests, so that they share compiled programs."""
    cfg = small_config(epochs=12, log_every=4, checkpoint_every=4, patience=PATIENCE)
    cfg.hparams.learning_rate = 3e-2
    # Every hparams pytree of these tests has the same structure: one compilation.
    cfg.hparams.loss_weights = {"emotion": 1.0}
    return cfg


def base_spec():
    return spec_of(base_config(), Tiny())


def base_options(**kw):
    return RunOptions(log_every=4, checkpoint_every=4, **kw)


@pytest.fixture(scope="module")
def base_train(data):
    return jax.jit(make_train(base_spec(), data))


@pytest.fixture(scope="module")
def base_result(base_train):
    hp = hparams_from_config(base_config(), noise_std=BASE_NOISE)
    return base_train(hp, jax.random.key(BASE_KEY))


def tree_allclose(a, b, rtol=1e-4, atol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def tree_equal(a, b):
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_config_defaults_and_validation(data):
    cfg = default_train_config()
    assert cfg.train.batch_size == 4 and cfg.train.patience == 20 and cfg.train.epochs == 150
    assert cfg.train.optimizer == "adam" and cfg.hparams.learning_rate == 1e-3
    hp = hparams_from_config(cfg, loss_weights={"emotion": 2.0})
    assert hp["loss_weights"]["emotion"].dtype == jnp.float32
    with pytest.raises(ValueError, match="Unknown hparams"):
        hparams_from_config(cfg, lr=1.0)
    bad = small_config(optimizer="rmsprop")
    with pytest.raises(ValueError, match="optimizer"):
        spec_of(bad, Tiny())
    with pytest.raises(ValueError, match="no data target 'valence'"):
        make_train(spec_of(small_config(), Tiny(heads=(("emotion", 1), ("valence", 1)))), data)
    with pytest.raises(ValueError, match="partition 'dev'.*mask"):
        make_train(base_spec(), {**data, "dev": {**data["dev"], "mask": data["dev"]["mask"][:1]}})


def test_predict_in_batches_equals_one_pass(data):
    model = Tiny(heads=(("emotion", 1), ("uncertainty", 1)))
    x = data["train"]["inputs"]
    params = model.init(jax.random.key(1), x[:1])["params"]
    with jax.default_matmul_precision("float32"):  # no TF32 on GPUs: batch shapes differ
        full = model.apply({"params": params}, x)
        out = predict(model, params, x, data["train"]["mask"], batch_size=2)
    assert out["emotion"].shape == (7, T, 1)
    tree_allclose(out, full, rtol=1e-6, atol=1e-6)


def test_one_sgd_step_matches_reference(data):
    """One epoch = one padded minibatch: the update is plain SGD on the hand-written loss.

    3 sequences in a batch of 4: the dummy sequence adds nothing, no sequence is dropped.
    """
    part = {k: data["train"][k] for k in ("inputs", "mask", "targets")}
    three = {
        "inputs": part["inputs"][:3],
        "mask": part["mask"][:3],
        "targets": {k: v[:3] for k, v in part["targets"].items()},
    }
    small = {"train": three, "dev": data["dev"]}
    three["targets"]["reconstruction"] = three["inputs"]  # an ordinary target now
    cfg = small_config(epochs=1, batch_size=4, optimizer="sgd", momentum=0.0)
    model = Tiny(heads=(("emotion", 1), ("reconstruction", F)))
    spec = spec_of(cfg, model, {"emotion": "ccc", "reconstruction": "mse"})
    hp = hparams_from_config(
        cfg, learning_rate=0.1, l2=0.05, loss_weights={"emotion": 0.7, "reconstruction": 0.3}
    )
    key = jax.random.key(3)
    p0 = jax.jit(model.init)(jax.random.key(4), three["inputs"][:1])["params"]
    out = jax.jit(make_train(spec, small))(hp, key, p0)  # warm start from p0

    x = jnp.asarray(three["inputs"])
    m = jnp.asarray(three["mask"])
    y = jnp.asarray(three["targets"]["emotion"])

    def ref_loss(p):
        o = model.apply({"params": p}, x)
        e, r = o["emotion"][m], o["reconstruction"][m]
        ye, xr = y[m], x[m]
        cov = jnp.mean((e - e.mean()) * (ye - ye.mean()))
        ccc = 2 * cov / (e.var() + ye.var() + (e.mean() - ye.mean()) ** 2)
        rec = jnp.mean((r - xr) ** 2)
        l2 = sum(jnp.sum(v["kernel"] ** 2) for v in p.values())  # biases excluded
        return 0.7 * (1 - ccc) + 0.3 * rec + 0.05 * l2

    g = jax.jit(jax.grad(ref_loss))(p0)
    expected = jax.tree.map(lambda a, b: a - 0.1 * b, p0, g)
    assert not tree_equal(out.final_params, p0)
    assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(out.final_params))
    tree_allclose(out.final_params, expected, rtol=1e-5, atol=1e-6)
    assert int(out.nonfinite_epoch) == -1


def test_fits_toy_target_and_keeps_best_params(data, base_result):
    model = Tiny()
    out = base_result
    dev = data["dev"]
    pred = predict_jit(model, out.best_params, dev["inputs"], dev["mask"])["emotion"][..., 0]
    ccc = np_ccc(pred, dev["targets"]["emotion"][..., 0], dev["mask"])
    assert ccc > 0.9
    np.testing.assert_allclose(float(out.best_score), ccc, atol=1e-5)
    hist = out.history
    assert int(out.best_epoch) == int(np.nanargmax(hist.dev_score))
    assert float(out.best_score) == float(np.nanmax(hist.dev_score))
    assert hist.train_loss[-1] < hist.train_loss[0]
    stop = int(out.stopped_epoch)
    assert stop == -1 or stop == int(out.best_epoch) + PATIENCE
    assert int(out.nonfinite_epoch) == -1


def test_early_stopping_freezes_and_keeps_best(data, base_train):
    """A negative loss weight climbs the loss: dev CCC falls from epoch 0, the run stops."""
    model = Tiny()
    hp = hparams_from_config(base_config(), loss_weights={"emotion": -1.0})
    out = base_train(hp, jax.random.key(0))
    best, stop = int(out.best_epoch), int(out.stopped_epoch)
    assert 0 <= stop < 11 and stop == best + PATIENCE
    assert int(out.nonfinite_epoch) == -1
    hist = out.history
    assert bool(np.all(hist.active[: stop + 1])) and not np.any(hist.active[stop + 1 :])
    assert np.all(np.isnan(hist.dev_score[stop + 1 :]))
    dev = data["dev"]
    target = dev["targets"]["emotion"][..., 0]
    pred = predict_jit(model, out.best_params, dev["inputs"], dev["mask"])["emotion"][..., 0]
    ccc = np_ccc(pred, target, dev["mask"])
    np.testing.assert_allclose(float(out.best_score), ccc, atol=1e-5)
    np.testing.assert_allclose(float(hist.dev_score[best]), ccc, atol=1e-5)
    assert ccc == pytest.approx(float(np.nanmax(hist.dev_score)), abs=1e-6)
    # Frozen: the final parameters are the ones evaluated at the stopping epoch, and
    # they differ from the best ones (training went on until the stop).
    pred = predict_jit(model, out.final_params, dev["inputs"], dev["mask"])["emotion"][..., 0]
    np.testing.assert_allclose(
        float(hist.dev_score[stop]), np_ccc(pred, target, dev["mask"]), atol=1e-5
    )
    assert not tree_equal(out.final_params, out.best_params)


def test_vmap_equals_separate_runs(data, base_train):
    cfg = base_config()
    hp = hparams_from_config(
        cfg,
        learning_rate=jnp.array([1e-2, 3e-3, 3e-2]),
        noise_std=jnp.array([0.0, 0.2, 0.1]),
        l2=jnp.array([0.0, 1e-3, 0.0]),
        loss_weights={"emotion": jnp.array([1.0, -1.0, 0.5])},  # member 1 early-stops
    )
    keys = jax.random.split(jax.random.key(7), 3)
    grid = jax.jit(jax.vmap(make_train(base_spec(), data)))(hp, keys)
    for i in range(3):
        solo = base_train(jax.tree.map(lambda v, i=i: v[i], hp), keys[i])
        member = jax.tree.map(lambda v, i=i: v[i], grid)
        for name in ("best_epoch", "stopped_epoch", "nonfinite_epoch"):
            assert int(getattr(member, name)) == int(getattr(solo, name))
        np.testing.assert_array_equal(member.history.active, solo.history.active)
        tree_allclose(member, solo)
    assert int(grid.stopped_epoch[1]) >= 0


def test_deterministic(base_train, base_result):
    """The same config and seed give bit-identical results (CPU)."""
    hp = hparams_from_config(base_config(), noise_std=BASE_NOISE)
    assert tree_equal(base_train(hp, jax.random.key(BASE_KEY)), base_result)
    other = base_train(hp, jax.random.key(BASE_KEY + 1))
    assert not tree_equal(other.final_params, base_result.final_params)


@pytest.mark.slow
def test_deterministic_across_fresh_compilations(data, base_result):
    hp = hparams_from_config(base_config(), noise_std=BASE_NOISE)
    again = jax.jit(make_train(base_spec(), data))(hp, jax.random.key(BASE_KEY))
    assert tree_equal(again, base_result)


def member(tree, i):
    return jax.tree.map(lambda v: v[i], tree)


def as_result(fitted, i):
    """Member ``i`` of a FitResult in make_train's layout (for tree comparisons)."""
    m = fitted.member(i)
    return {
        k: m[k]
        for k in ("best_params", "final_params", "best_epoch", "stopped_epoch", "nonfinite_epoch")
    } | {"history": m["history"]}


def solo_result(r):
    return {
        "best_params": r.best_params,
        "final_params": r.final_params,
        "best_epoch": r.best_epoch,
        "stopped_epoch": r.stopped_epoch,
        "nonfinite_epoch": r.nonfinite_epoch,
        "history": r.history,
    }


def grid_fit(data, hp, keys, workdir, **options):
    return fit(
        base_spec(),
        data,
        hp,
        keys,
        workdir=workdir,
        options=base_options(**options),
        progress=lambda line: None,
    )


def test_fit_resume_equals_uninterrupted(data, base_train, tmp_path):
    cfg = base_config()
    hp = hparams_from_config(
        cfg, learning_rate=jnp.array([3e-2, 1e-2, 3e-2]), noise_std=jnp.array([0.1, 0.0, 0.2])
    )
    hp = broadcast_hparams(hp, 3)
    keys = jax.random.split(jax.random.key(BASE_KEY), 3)
    full = grid_fit(data, hp, keys, tmp_path / "full")

    class Interrupt(Exception):
        pass

    def interrupt(line):
        if line.startswith("epoch 8/"):  # after the first chunk's host work
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(
            base_spec(),
            data,
            hp,
            keys,
            workdir=tmp_path / "cut",
            options=base_options(),
            progress=interrupt,
        )
    assert len(pd.read_json(tmp_path / "cut" / "metrics.jsonl", lines=True)) == 8 * 3
    resumed = grid_fit(data, hp, keys, tmp_path / "cut")
    for i in range(3):
        assert tree_equal(as_result(resumed, i), as_result(full, i))
    np.testing.assert_array_equal(resumed.best_score, full.best_score)

    # Each member is the single fully jitted train of its setting (chunking aside).
    for i in range(3):
        tree_allclose(as_result(full, i), solo_result(base_train(member(hp, i), keys[i])))

    metrics = pd.read_json(tmp_path / "cut" / "metrics.jsonl", lines=True)
    assert list(metrics["epoch"]) == [e for e in range(12) for _ in range(3)]
    assert list(metrics["member"]) == [0, 1, 2] * 12
    assert {"train_loss", "dev_score", "best_dev_score", "loss/emotion", "hp/learning_rate"} <= set(
        metrics.columns
    )
    dev = np.asarray(full.history.dev_score).T.reshape(-1)  # epoch-major
    np.testing.assert_allclose(metrics["dev_score"].astype(float), dev)
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["spec"]["epochs"] == 12

    with pytest.raises(ValueError, match="different run"):
        grid_fit(data, hp, jax.random.split(jax.random.key(BASE_KEY + 1), 3), tmp_path / "cut")


def test_nonfinite_member_is_isolated(data, base_train, tmp_path):
    """A learning rate of 1e38 overflows one member; the others equal their solo runs."""
    hp = hparams_from_config(base_config(), learning_rate=jnp.array([1e-2, 1e38, 3e-2]))
    hp = broadcast_hparams(hp, 3)
    keys = jax.random.split(jax.random.key(2), 3)
    with pytest.warns(RuntimeWarning, match="member 1 at epoch 0"):
        out = grid_fit(data, hp, keys, tmp_path / "grid")
    np.testing.assert_array_equal(out.nonfinite_epoch, [-1, 0, -1])
    assert int(out.stopped_epoch[1]) == 0
    assert all(np.all(np.isfinite(v[1])) for v in jax.tree.leaves(out.final_params))
    assert not np.any(out.history.active[1, 1:])
    for i in (0, 2):
        tree_allclose(as_result(out, i), solo_result(base_train(member(hp, i), keys[i])))
    rows = pd.read_json(tmp_path / "grid" / "metrics.jsonl", lines=True)
    assert sorted(rows["member"].unique()) == [0, 1, 2]
    assert not rows[(rows["member"] == 1) & (rows["epoch"] > 0)]["active"].any()

    with pytest.raises(FloatingPointError, match="member 1 at epoch 0"):
        grid_fit(data, hp, keys, tmp_path / "raise", on_nonfinite="raise")


def test_driver_ends_early_when_every_member_stopped(base_train, data, tmp_path):
    """Negative loss weights make every member stop; the driver ends early, same result."""
    hp = hparams_from_config(base_config(), loss_weights={"emotion": jnp.array([-1.0, -0.5, -2.0])})
    hp = broadcast_hparams(hp, 3)
    keys = jax.random.wrap_key_data(jnp.stack([jax.random.key_data(jax.random.key(0))] * 3))
    out = grid_fit(data, hp, keys, tmp_path)
    assert np.all(out.stopped_epoch >= 0)
    for i in range(3):
        tree_allclose(as_result(out, i), solo_result(base_train(member(hp, i), keys[i])))
    rows = pd.read_json(tmp_path / "metrics.jsonl", lines=True)
    assert rows["epoch"].max() < 11  # the last chunks never ran


def test_broadcast_hparams():
    hp = broadcast_hparams({"a": 1.0, "b": {"c": jnp.array([1.0, 2.0])}}, 2)
    np.testing.assert_array_equal(hp["a"], [1.0, 1.0])
    with pytest.raises(ValueError, match="members"):
        broadcast_hparams({"a": jnp.array([1.0, 2.0, 3.0])}, 2)


@pytest.mark.slow
def test_recurrent_model_single_run_driver(data, tmp_path):
    from ddat_jax.models import build_model

    model = build_model("mtl_rnn", cell="gru", hidden_size=8, heads={"emotion": 1})
    cfg = small_config(epochs=20)
    spec = spec_of(cfg, model)
    hp = hparams_from_config(cfg, spec.objective.weight_keys)
    opts = RunOptions(log_every=5, checkpoint_every=10)
    keys = jax.random.key(0)[None]
    out = fit(spec, data, hp, keys, workdir=tmp_path, options=opts)
    assert np.isfinite(out.best_score[0]) and out.best_score[0] > 0.5
    again = fit(spec, data, hp, keys, workdir=tmp_path, options=opts)
    assert tree_equal(as_result(again, 0), as_result(out, 0))  # resumed at the end
