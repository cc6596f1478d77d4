"""ImplicitFusionRNN: shapes, a NumPy GRU reference, the shared block, main-only prediction."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddat_jax.models import build_model
from ddat_jax.models.fusion import ImplicitFusionRNN, predict_main

N, T, M, A, H = 3, 7, 5, 4, 6


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_gru(p: dict, x: np.ndarray, layers: int) -> np.ndarray:
    """torch.nn.GRU (batch_first) in float64 NumPy: gates r, z, n."""
    h_seq = np.asarray(x, np.float64)
    for layer in range(layers):
        w_ih, w_hh = (np.asarray(p[f"weight_{k}_l{layer}"], np.float64) for k in ("ih", "hh"))
        b_ih, b_hh = (np.asarray(p[f"bias_{k}_l{layer}"], np.float64) for k in ("ih", "hh"))
        hid = w_hh.shape[1]
        h = np.zeros((h_seq.shape[0], hid))
        outs = []
        for t in range(h_seq.shape[1]):
            gi = h_seq[:, t] @ w_ih.T + b_ih
            gh = h @ w_hh.T + b_hh
            r = _sigmoid(gi[:, :hid] + gh[:, :hid])
            z = _sigmoid(gi[:, hid : 2 * hid] + gh[:, hid : 2 * hid])
            n = np.tanh(gi[:, 2 * hid :] + r * gh[:, 2 * hid :])
            h = (1 - z) * n + z * h
            outs.append(h)
        h_seq = np.stack(outs, axis=1)
    return h_seq


def numpy_branch(params, view: str, x: np.ndarray) -> np.ndarray:
    r = numpy_gru(params[f"sp_{view}"], x, 2)
    h = numpy_gru(params["sh_rnn"], r, 1)
    head = params["sh_head"]
    return h @ np.asarray(head["kernel"], np.float64) + np.asarray(head["bias"], np.float64)


@pytest.fixture(scope="module")
def model_and_params():
    model = ImplicitFusionRNN(hidden_size=H, specific_layers=2, shared_layers=1, outputs=2)
    rng = np.random.default_rng(0)
    inputs = {
        "main": rng.normal(size=(N, T, M)).astype(np.float32),
        "aux": rng.normal(size=(N, T, A)).astype(np.float32),
    }
    params = model.init(jax.random.key(0), inputs)["params"]
    return model, params, inputs


@pytest.fixture(scope="module")
def apply(model_and_params):
    """One jitted forward pass shared by the tests (compiled once per input shape)."""
    model = model_and_params[0]
    return jax.jit(lambda p, x, m=None: model.apply({"params": p}, x, mask=m))


def test_registered_and_shapes(model_and_params, apply):
    model, params, inputs = model_and_params
    assert isinstance(build_model("implicit_fusion_rnn", hidden_size=4), ImplicitFusionRNN)
    out = apply(params, inputs)
    assert set(out) == {"main", "aux"}
    assert out["main"].shape == (N, T, 2) and out["aux"].shape == (N, T, 2)
    assert set(params) == {"sp_main", "sp_aux", "sh_rnn", "sh_head"}
    assert params["sp_main"]["weight_ih_l0"].shape == (3 * H, M)
    assert params["sp_aux"]["weight_ih_l0"].shape == (3 * H, A)


def test_matches_numpy_reference_both_views_through_one_shared_block(model_and_params, apply):
    model, params, inputs = model_and_params
    out = apply(params, inputs)
    for view in ("main", "aux"):
        ref = numpy_branch(params, view, inputs[view])
        np.testing.assert_allclose(np.asarray(out[view]), ref, rtol=1e-4, atol=1e-5)


def test_auxiliary_features_never_reach_the_main_prediction(model_and_params, apply):
    model, params, inputs = model_and_params
    out = apply(params, inputs)
    nan_aux = {"main": inputs["main"], "aux": np.full_like(inputs["aux"], np.nan)}
    out_nan = apply(params, nan_aux)
    np.testing.assert_array_equal(np.asarray(out_nan["main"]), np.asarray(out["main"]))
    assert np.isnan(np.asarray(out_nan["aux"])).all()
    only = jax.jit(lambda p, x: predict_main(model, p, x))(params, inputs["main"])
    assert set(only) == {"main"}
    np.testing.assert_allclose(np.asarray(only["main"]), np.asarray(out["main"]), atol=1e-6)
    batched = jax.jit(lambda p, x: predict_main(model, p, x, batch_size=2))(params, inputs["main"])
    np.testing.assert_allclose(np.asarray(batched["main"]), np.asarray(out["main"]), atol=1e-6)


def test_main_loss_gradient_leaves_aux_block_untouched(model_and_params):
    """With α = 0 the auxiliary block gets no gradient: the mono-modal baseline."""
    model, params, inputs = model_and_params

    def loss(p, alpha):
        out = model.apply({"params": p}, inputs)
        return jnp.mean(out["main"] ** 2) + alpha * jnp.mean(out["aux"] ** 2)

    grad = jax.jit(jax.grad(loss))
    g0, g1 = grad(params, 0.0), grad(params, 0.5)
    assert all(float(jnp.max(jnp.abs(v))) == 0.0 for v in jax.tree.leaves(g0["sp_aux"]))
    assert any(float(jnp.max(jnp.abs(v))) > 0.0 for v in jax.tree.leaves(g1["sp_aux"]))
    # the shared block learns from both modalities
    diff = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), g0["sh_head"], g1["sh_head"])
    assert max(float(v) for v in jax.tree.leaves(diff)) > 0.0


def test_padded_frames_are_zero_and_do_not_change_valid_frames(model_and_params, apply):
    model, params, inputs = model_and_params
    mask = np.ones((N, T), bool)
    mask[0, 4:] = False
    out = apply(params, inputs, mask)
    assert np.all(np.asarray(out["main"])[0, 4:] == 0) and np.all(
        np.asarray(out["aux"])[0, 4:] == 0
    )
    short = {k: v[:1, :4] for k, v in inputs.items()}
    ref = model.apply({"params": params}, short)
    np.testing.assert_allclose(
        np.asarray(out["main"])[0, :4], np.asarray(ref["main"])[0], atol=1e-6
    )


def test_bad_inputs_raise_clear_errors(model_and_params):
    model, params, inputs = model_and_params
    with pytest.raises(ValueError, match="two views"):
        model.apply({"params": params}, inputs["main"])
    with pytest.raises(ValueError, match="lack the view"):
        model.apply({"params": params}, {"main": inputs["main"]})
    with pytest.raises(ValueError, match="specific_layers"):
        ImplicitFusionRNN(specific_layers=0).init(jax.random.key(0), inputs)
