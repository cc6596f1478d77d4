"""Tests of the training engine (``make_train``) and the chunked driver (``run_training``).

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
    broadcast_hparams,
    default_train_config,
    hparams_from_config,
    make_run,
    make_train,
    make_train_fns,
    predict,
    run_training,
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
        "x": x,
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


BASE_KEY = 11
BASE_NOISE = 0.1


def base_config():
    """The setting shared by several tests, so that they share compiled programs."""
    cfg = small_config(epochs=12, log_every=4, checkpoint_every=4)
    cfg.hparams.learning_rate = 3e-2
    return cfg


@pytest.fixture(scope="module")
def base_train(data):
    return jax.jit(make_train(base_config(), data, Tiny()))


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
        make_train(bad, data, Tiny())
    with pytest.raises(ValueError, match="no training target"):
        make_train(small_config(), data, Tiny(heads=(("emotion", 1), ("valence", 1))))


def test_predict_in_batches_equals_one_pass(data):
    model = Tiny(heads=(("emotion", 1), ("uncertainty", 1)))
    x = data["train"]["x"]
    params = model.init(jax.random.key(1), x[:1])["params"]
    full = model.apply({"params": params}, x)
    out = predict(model, params, x, data["train"]["mask"], batch_size=2)
    assert out["emotion"].shape == (7, T, 1)
    tree_allclose(out, full, rtol=1e-6, atol=1e-6)


def test_one_sgd_step_matches_reference(data):
    """One epoch = one padded minibatch: the update is plain SGD on the hand-written loss."""
    part = {k: data["train"][k] for k in ("x", "mask", "targets")}
    three = {
        "x": part["x"][:3],
        "mask": part["mask"][:3],
        "targets": {k: v[:3] for k, v in part["targets"].items()},
    }
    small = {"train": three, "dev": data["dev"]}
    cfg = small_config(epochs=1, batch_size=4, optimizer="sgd", momentum=0.0)
    cfg.train.head_losses = {"emotion": "ccc"}
    model = Tiny(heads=(("emotion", 1), ("reconstruction", F)))
    hp = hparams_from_config(
        cfg, learning_rate=0.1, l2=0.05, loss_weights={"emotion": 0.7, "reconstruction": 0.3}
    )
    key = jax.random.key(3)
    fns = make_train_fns(cfg, small, model)
    p0 = jax.jit(fns.init)(hp, key)["params"]
    out = jax.jit(make_train(cfg, small, model))(hp, key)

    x = jnp.asarray(three["x"])
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
    assert not tree_equal(out["final_params"], p0)
    assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(out["final_params"]))
    tree_allclose(out["final_params"], expected, rtol=1e-5, atol=1e-6)
    assert int(out["nonfinite_epoch"]) == -1


def test_fits_toy_target_and_keeps_best_params(data, base_result):
    model = Tiny()
    out = base_result
    dev = data["dev"]
    pred = predict(model, out["best_params"], dev["x"], dev["mask"])["emotion"][..., 0]
    ccc = np_ccc(pred, dev["targets"]["emotion"][..., 0], dev["mask"])
    assert ccc > 0.9
    np.testing.assert_allclose(float(out["best_dev_ccc"]), ccc, atol=1e-5)
    hist = out["history"]
    assert int(out["best_epoch"]) == int(np.nanargmax(hist["dev_ccc"]))
    assert float(out["best_dev_ccc"]) == float(np.nanmax(hist["dev_ccc"]))
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert int(out["stopped_epoch"]) == -1 and bool(np.all(hist["active"]))
    assert int(out["nonfinite_epoch"]) == -1


def test_early_stopping_freezes_and_keeps_best(data):
    """Dev targets anti-correlated with train: dev CCC falls from epoch 0, the run stops."""
    rng = np.random.default_rng(5)
    flipped = {"train": data["train"], "dev": make_part(rng, 3, sign=-1.0)}
    patience = 2
    cfg = small_config(epochs=8, patience=patience)
    model = Tiny()
    hp = hparams_from_config(cfg, learning_rate=3e-2)
    key = jax.random.key(0)
    out = jax.jit(make_train(cfg, flipped, model))(hp, key)
    best, stop = int(out["best_epoch"]), int(out["stopped_epoch"])
    assert 0 <= stop < 7 and stop == best + patience
    hist = out["history"]
    assert bool(np.all(hist["active"][: stop + 1])) and not np.any(hist["active"][stop + 1 :])
    assert np.all(np.isnan(hist["dev_ccc"][stop + 1 :]))
    dev = flipped["dev"]
    pred = predict(model, out["best_params"], dev["x"], dev["mask"])["emotion"][..., 0]
    ccc = np_ccc(pred, dev["targets"]["emotion"][..., 0], dev["mask"])
    np.testing.assert_allclose(float(out["best_dev_ccc"]), ccc, atol=1e-5)
    np.testing.assert_allclose(float(hist["dev_ccc"][best]), ccc, atol=1e-5)
    # Frozen: the final parameters are those evaluated at the stopping epoch.
    pred = predict(model, out["final_params"], dev["x"], dev["mask"])["emotion"][..., 0]
    np.testing.assert_allclose(
        float(hist["dev_ccc"][stop]),
        np_ccc(pred, dev["targets"]["emotion"][..., 0], dev["mask"]),
        atol=1e-5,
    )


def test_vmap_equals_separate_runs(data, base_train):
    cfg = base_config()
    hp = hparams_from_config(
        cfg,
        learning_rate=jnp.array([1e-2, 3e-3, 3e-2]),
        noise_std=jnp.array([0.0, 0.2, 0.1]),
        l2=jnp.array([0.0, 1e-3, 0.0]),
        loss_weights={"emotion": jnp.array([1.0, 1.5, 0.5])},
    )
    keys = jax.random.split(jax.random.key(7), 3)
    grid = jax.jit(jax.vmap(make_train(cfg, data, Tiny())))(hp, keys)
    for i in range(3):
        solo = base_train(jax.tree.map(lambda v, i=i: v[i], hp), keys[i])
        member = jax.tree.map(lambda v, i=i: v[i], grid)
        for name in ("best_epoch", "stopped_epoch", "nonfinite_epoch"):
            assert int(member[name]) == int(solo[name])
        np.testing.assert_array_equal(member["history"]["active"], solo["history"]["active"])
        tree_allclose(member, solo)


def test_run_training_resume_equals_uninterrupted(data, base_result, tmp_path):
    cfg = base_config()
    model = Tiny()
    hp = hparams_from_config(cfg, noise_std=BASE_NOISE)
    key = jax.random.key(BASE_KEY)
    # One make_run for the three runs: they share compiled programs, not state (the
    # resumed run gets its state from the checkpoint only).
    run = make_run(cfg, data, model)
    full = run(hp, key, workdir=tmp_path / "full")

    class Interrupt(Exception):
        pass

    def interrupt(epoch, state):
        if epoch == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(hp, key, workdir=tmp_path / "cut", callback=interrupt)
    assert len(pd.read_json(tmp_path / "cut" / "metrics.jsonl", lines=True)) == 4
    resumed = run(hp, key, workdir=tmp_path / "cut")
    assert tree_equal(resumed, full)

    # Same computation as the single fully jitted train (chunking aside).
    tree_allclose(full, base_result)

    metrics = pd.read_json(tmp_path / "cut" / "metrics.jsonl", lines=True)
    assert list(metrics["epoch"]) == list(range(12))
    assert {"train_loss", "dev_ccc", "best_dev_ccc", "loss/emotion", "hp/learning_rate"} <= set(
        metrics.columns
    )
    np.testing.assert_allclose(metrics["dev_ccc"], np.asarray(full["history"]["dev_ccc"]))
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["train"]["epochs"] == 12

    with pytest.raises(ValueError, match="different run"):
        run(hp, jax.random.key(BASE_KEY + 1), workdir=tmp_path / "cut")


def test_deterministic_across_fresh_compilations(data, base_result):
    cfg = base_config()
    hp = hparams_from_config(cfg, noise_std=BASE_NOISE)
    again = jax.jit(make_train(cfg, data, Tiny()))(hp, jax.random.key(BASE_KEY))
    assert tree_equal(again, base_result)


def test_nonfinite_member_is_isolated(data, base_train, tmp_path):
    """A learning rate of 1e38 overflows one member; the others equal their solo runs."""
    cfg = base_config()
    model = Tiny()
    lrs = jnp.array([1e-2, 1e38, 3e-3])
    hp = hparams_from_config(cfg, learning_rate=lrs)
    keys = jax.random.split(jax.random.key(2), 3)
    run = make_run(cfg, data, model, grid_size=3)
    with pytest.warns(RuntimeWarning, match="member 1 at epoch 0"):
        out = run(hp, keys, workdir=tmp_path / "grid")
    np.testing.assert_array_equal(out["nonfinite_epoch"], [-1, 0, -1])
    np.testing.assert_array_equal(out["stopped_epoch"], [-1, 0, -1])
    assert all(np.all(np.isfinite(v[1])) for v in jax.tree.leaves(out["final_params"]))
    assert not np.any(out["history"]["active"][1, 1:])
    for i in (0, 2):
        solo = base_train(hparams_from_config(cfg, learning_rate=lrs[i]), keys[i])
        tree_allclose(jax.tree.map(lambda v, i=i: v[i], out), solo)
    rows = pd.read_json(tmp_path / "grid" / "metrics.jsonl", lines=True)
    assert len(rows) == 36 and sorted(rows["member"].unique()) == [0, 1, 2]

    with pytest.raises(FloatingPointError, match="member 1 at epoch 0"):
        run(hp, keys, workdir=tmp_path / "raise", on_nonfinite="raise")


def test_broadcast_hparams():
    hp = broadcast_hparams({"a": 1.0, "b": {"c": jnp.array([1.0, 2.0])}}, 2)
    np.testing.assert_array_equal(hp["a"], [1.0, 1.0])
    with pytest.raises(ValueError, match="grid"):
        broadcast_hparams({"a": jnp.array([1.0, 2.0, 3.0])}, 2)


@pytest.mark.slow
def test_recurrent_model_grid_with_driver(data, tmp_path):
    from ddat_jax.models import build_model

    model = build_model("mtl_rnn", cell="gru", hidden_size=8, heads={"emotion": 1})
    cfg = small_config(epochs=20, log_every=5, checkpoint_every=10)
    hp = hparams_from_config(cfg, learning_rate=jnp.array([1e-2, 3e-3]))
    out = run_training(cfg, data, model, hp, jax.random.key(0), workdir=tmp_path, grid_size=2)
    assert np.all(np.isfinite(out["best_dev_ccc"])) and float(out["best_dev_ccc"][0]) > 0.5
