"""A padded member equals its unpadded model: outputs, loss, gradients, trained parameters.

The reference is always the unpadded :class:`MultiTaskRNN` (its own parameter shapes,
its own program); the padded model gets the same parameters through ``embed_params``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddat_jax.models import MultiTaskRNN
from ddat_jax.models.padded import (
    ARCH,
    PaddedMultiTaskRNN,
    embed_params,
    extract_params,
    padding_for,
)
from ddat_jax.train import (
    RunOptions,
    default_train_config,
    fit,
    heads_objective,
    hparams_from_config,
    make_train,
    train_spec_from_config,
)
from ddat_jax.train.engine import init_params

F, T = 4, 14
HEADS = {"emotion": 1, "aux": 3}
LMAX, HMAX = 3, 7


def inputs(seed=0, batch=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, T, F)).astype(np.float32)
    mask = np.ones((batch, T), bool)
    mask[1, T - 4 :] = False
    return jnp.asarray(x), jnp.asarray(mask)


def loss(params, model, x, mask):
    out = model.apply({"params": params}, x, mask=mask)
    l2 = sum(jnp.sum(p**2) for p in jax.tree.leaves(params) if p.ndim >= 2)
    return jnp.mean(out["emotion"] ** 2) + jnp.mean(jnp.sin(out["aux"])) + 1e-2 * l2


def flat(tree):
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
        for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def padded_model(cell="gru", backward="custom"):
    return PaddedMultiTaskRNN(
        cell=cell, max_layers=LMAX, max_hidden=HMAX, heads=HEADS, backward=backward
    )


CASES = [
    ((2, 5), "gru"),
    ((3, 7), "lstm"),
    pytest.param((1, 2), "gru", marks=pytest.mark.slow),
    pytest.param((3, 7), "gru", marks=pytest.mark.slow),
    pytest.param((1, 7), "gru", marks=pytest.mark.slow),
    pytest.param((3, 3), "gru", marks=pytest.mark.slow),
    pytest.param((1, 2), "lstm", marks=pytest.mark.slow),
    pytest.param((2, 5), "lstm", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("shape", "cell"), CASES)
def test_padded_loss_and_grads_equal_unpadded(shape, cell):
    layers, hidden = shape
    x, mask = inputs()
    ref_model = MultiTaskRNN(cell=cell, hidden_size=hidden, num_layers=layers, heads=HEADS)
    params = ref_model.init(jax.random.key(layers * 10 + hidden), x)["params"]
    pad_model = padded_model(cell)
    padded = embed_params(params, max_layers=LMAX, max_hidden=HMAX, cell=cell)
    fresh = pad_model.init(jax.random.key(0), x)["params"]
    assert jax.tree.map(jnp.shape, padded) == jax.tree.map(jnp.shape, fresh)

    value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    ref_loss, ref_grads = value_and_grad(params, ref_model, x, mask)
    pad_loss, pad_grads = value_and_grad(padded, pad_model, x, mask)
    np.testing.assert_allclose(pad_loss, ref_loss, rtol=1e-6, atol=1e-7)
    # Same outputs.
    ref_out = ref_model.apply({"params": params}, x, mask=mask)
    pad_out = pad_model.apply({"params": padded}, x, mask=mask)
    for h in HEADS:
        np.testing.assert_allclose(pad_out[h], ref_out[h], rtol=1e-5, atol=1e-6)
    # Active gradients equal the unpadded ones; everything padded gets exactly 0.
    got = flat(extract_params({**pad_grads, ARCH: padded[ARCH]}, cell=cell))
    for name, g in flat(ref_grads).items():
        np.testing.assert_allclose(got[name], g, rtol=1e-5, atol=1e-6, err_msg=name)
    support = embed_params(
        jax.tree.map(jnp.ones_like, params), max_layers=LMAX, max_hidden=HMAX, cell=cell
    )
    for name, g in flat(pad_grads).items():
        if name == ARCH:
            assert np.all(g == 0.0)
            continue
        outside = np.asarray(flat(support)[name]) == 0
        assert np.all(np.asarray(g)[outside] == 0.0), name


def test_embed_extract_roundtrip_and_errors():
    x, _ = inputs()
    model = MultiTaskRNN(hidden_size=4, num_layers=2, heads=HEADS)
    params = model.init(jax.random.key(1), x)["params"]
    back = extract_params(embed_params(params, max_layers=LMAX, max_hidden=HMAX))
    for name, v in flat(params).items():
        np.testing.assert_array_equal(flat(back)[name], v)
    with pytest.raises(ValueError, match="does not fit"):
        embed_params(params, max_layers=1, max_hidden=HMAX)
    bi = MultiTaskRNN(hidden_size=4, num_layers=1, bidirectional=True, heads=HEADS)
    with pytest.raises(ValueError, match="unidirectional"):
        embed_params(bi.init(jax.random.key(0), x)["params"], max_layers=2, max_hidden=5)
    with pytest.raises(ValueError, match="unidirectional"):
        padding_for(bi, [(1, 4)])
    with pytest.raises(ValueError, match="no architecture padding for Dense"):
        padding_for(nn.Dense(3), [(1, 4)])
    pad = padding_for(model, [(2, 4), (3, 7)])
    assert (pad.model.max_layers, pad.model.max_hidden) == (3, 7)
    for name, v in flat(params).items():
        np.testing.assert_array_equal(flat(pad.extract(pad.embed(params)))[name], v)


# ------------------------------------------------------------------ trained parameters


def _data(seed=1):
    rng = np.random.default_rng(seed)

    def part(n):
        x = rng.normal(size=(n, T, F)).astype(np.float32)
        y = np.tanh(x[..., :1] - 0.5 * x[..., 1:2])
        mask = np.ones((n, T), bool)
        mask[0, T - 3 :] = False
        return {"inputs": x, "mask": mask, "targets": {"emotion": y, "aux": x[..., :3] ** 2}}

    return {"train": part(5), "dev": part(3)}


def _config():
    cfg = default_train_config()
    cfg.train.epochs = 3
    cfg.train.batch_size = 2
    cfg.train.patience = 0
    cfg.hparams.learning_rate = 2e-2
    cfg.hparams.l2 = 1e-3  # L2 must not move the padded zeros either
    cfg.hparams.loss_weights = {"aux": 0.5}
    return cfg


def _spec(cfg, model):
    objective = heads_objective({"emotion": "mse", "aux": "mse"})
    return train_spec_from_config(cfg.train, model, objective)


def _train_pair(layers, hidden, tmp_path):
    """Trains the unpadded model (reference) and the padded member from the same init."""
    data, cfg = _data(), _config()
    hp = hparams_from_config(cfg, ("aux", "emotion"))
    key = jax.random.key(7)
    ref_model = MultiTaskRNN(hidden_size=hidden, num_layers=layers, heads=HEADS)
    ref = jax.jit(make_train(_spec(cfg, ref_model), data))(hp, key)
    init = init_params(ref_model, key, data["train"]["inputs"])
    params0 = embed_params(init, max_layers=LMAX, max_hidden=HMAX)
    out = fit(
        _spec(cfg, padded_model()),
        data,
        hp,
        key[None],
        workdir=tmp_path / f"{layers}x{hidden}",
        options=RunOptions(log_every=3, checkpoint_every=3),
        member_params=jax.tree.map(lambda a: np.asarray(a)[None], params0),
        progress=lambda line: None,
    )
    return ref, out.member(0), init


def _check_trained(ref, out, init):
    np.testing.assert_allclose(out["best_score"], ref.best_score, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        out["history"].train_loss, ref.history.train_loss, rtol=1e-4, atol=1e-6
    )
    trained = flat(extract_params(out["best_params"]))
    ref_params = flat(ref.best_params)
    assert set(trained) == set(ref_params)
    for name, v in ref_params.items():
        np.testing.assert_allclose(trained[name], v, rtol=1e-4, atol=1e-5, err_msg=name)
    # Parameters moved (so the comparison means something) ...
    assert any(not np.allclose(v, flat(init)[name]) for name, v in ref_params.items())
    # ... and every padded entry is still exactly zero after Adam + L2.
    support = flat(
        embed_params(jax.tree.map(jnp.ones_like, ref.best_params), max_layers=LMAX, max_hidden=HMAX)
    )
    for name, v in flat(out["best_params"]).items():
        if name == ARCH:
            continue
        assert np.all(np.asarray(v)[support[name] == 0] == 0.0), name


def test_padded_member_trains_like_unpadded_model(tmp_path):
    ref, out, init = _train_pair(2, 5, tmp_path)
    _check_trained(ref, out, init)


@pytest.mark.slow
def test_padded_member_trains_like_unpadded_model_more_shapes(tmp_path):
    for layers, hidden in [(1, 2), (3, 7), (1, 7)]:
        ref, out, init = _train_pair(layers, hidden, tmp_path)
        _check_trained(ref, out, init)
