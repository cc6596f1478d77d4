"""The SEW network: sizes as the paper, per-frame GRU vs a NumPy torch-GRU reference, the
deployed predictor never reading the stronger modality."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddat_jax import models
from ddat_jax.models.sew import SEW, FrameGRU


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _torch_gru_step_from_zero(x, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.GRU's equations for one step with h0 = 0 (w_hh multiplies the zero state)."""
    h = np.zeros(w_hh.shape[1])
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    H = w_hh.shape[1]
    r = _sigmoid(gi[..., :H] + gh[..., :H])
    z = _sigmoid(gi[..., H : 2 * H] + gh[..., H : 2 * H])
    n = np.tanh(gi[..., 2 * H :] + r * gh[..., 2 * H :])
    return (1 - z) * n + z * h


def test_frame_gru_matches_torch_equations_with_any_recurrent_weights():
    m = FrameGRU(layers=2, units=5, outputs=1)
    x = np.random.default_rng(0).normal(size=(3, 4, 7)).astype(np.float32)
    p = m.init(jax.random.key(0), x)["params"]
    got = np.asarray(m.apply({"params": p}, x))
    h = x.astype(np.float64)
    rng = np.random.default_rng(1)
    for k in range(2):
        w_hh = rng.normal(size=(15, 5))  # any value: the state is zero
        h = _torch_gru_step_from_zero(
            h,
            *(np.asarray(p[f"{n}_l{k}"], np.float64) for n in ("weight_ih",)),
            w_hh,
            np.asarray(p[f"bias_ih_l{k}"], np.float64),
            np.asarray(p[f"bias_hh_l{k}"], np.float64),
        )
    want = h @ np.asarray(p["linear"]["kernel"]) + np.asarray(p["linear"]["bias"])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(np.asarray(p["bias_hh_l0"])) <= 1 / np.sqrt(5))


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def test_paper_sizes_video_geometric_weak_audio_strong():
    m = models.build_model("sew", weak_hidden=(512, 256), strong_hidden=(108,), latent=128)
    x = {"weak": jnp.zeros((2, 3, 632)), "strong": jnp.zeros((2, 3, 88))}
    params = jax.eval_shape(m.init, jax.random.key(0), x)["params"]
    s = _shapes(params)
    assert [s["W_E"][f"linear_{i}"]["kernel"] for i in range(3)] == [
        (632, 512),
        (512, 256),
        (256, 128),
    ]
    assert [s["S_E"][f"linear_{i}"]["kernel"] for i in range(2)] == [(88, 108), (108, 128)]
    assert [s["S_D1"][f"linear_{i}"]["kernel"] for i in range(2)] == [(128, 108), (108, 88)]
    assert s["S_D2"] == s["S_D1"]
    assert s["R"]["weight_ih_l0"] == (360, 128) and s["R"]["weight_ih_l3"] == (360, 120)
    assert "weight_ih_l4" not in s["R"] and s["R"]["linear"]["kernel"] == (120, 1)
    out = jax.eval_shape(m.apply, {"params": params}, x)
    assert {k: v.shape for k, v in out.items()} == {
        "emotion": (2, 3, 1),
        "latent_w": (2, 3, 128),
        "latent_s": (2, 3, 128),
        "strong_from_weak": (2, 3, 88),
        "strong_from_strong": (2, 3, 88),
    }


def test_paper_sizes_appearance_one_linear_layer_of_168_and_geometric_decoder():
    m = SEW(weak_hidden=(), strong_hidden=(512, 256), latent=168)
    x = {"weak": jnp.zeros((1, 2, 168)), "strong": jnp.zeros((1, 2, 632))}
    s = _shapes(jax.eval_shape(m.init, jax.random.key(0), x)["params"])
    assert list(s["W_E"]) == ["linear_0"] and s["W_E"]["linear_0"]["kernel"] == (168, 168)
    assert [s["S_D1"][f"linear_{i}"]["kernel"][1] for i in range(3)] == [256, 512, 632]


def test_tanh_between_layers_only():
    m = SEW(weak_hidden=(4,), strong_hidden=(), latent=3, gru_layers=1, gru_units=2)
    x = {"weak": jnp.ones((1, 1, 5)) * 3.0}
    p = m.init(jax.random.key(0), {**x, "strong": jnp.zeros((1, 1, 2))})["params"]
    lat = np.asarray(m.apply({"params": p}, x)["latent_w"])[0, 0]
    w0, w1 = p["W_E"]["linear_0"], p["W_E"]["linear_1"]
    h = np.tanh(3.0 * np.ones(5) @ np.asarray(w0["kernel"]) + np.asarray(w0["bias"]))
    want = h @ np.asarray(w1["kernel"]) + np.asarray(w1["bias"])  # no tanh on the latent
    np.testing.assert_allclose(lat, want, rtol=1e-5, atol=1e-6)


def test_deployed_predictor_never_reads_the_strong_modality():
    m = SEW(weak_hidden=(6,), strong_hidden=(5,), latent=4, gru_layers=2, gru_units=3)
    rng = np.random.default_rng(0)
    weak = jnp.asarray(rng.normal(size=(2, 9, 7)), jnp.float32)
    strong = jnp.asarray(rng.normal(size=(2, 9, 11)), jnp.float32)
    p = m.init(jax.random.key(1), {"weak": weak, "strong": strong})["params"]
    full = m.apply({"params": p}, {"weak": weak, "strong": strong})
    nan = m.apply({"params": p}, {"weak": weak, "strong": jnp.full_like(strong, jnp.nan)})
    alone = m.apply({"params": p}, {"weak": weak})
    np.testing.assert_array_equal(np.asarray(full["emotion"]), np.asarray(nan["emotion"]))
    np.testing.assert_array_equal(np.asarray(full["emotion"]), np.asarray(alone["emotion"]))
    assert np.isnan(np.asarray(nan["strong_from_strong"])).all()
    assert set(alone) == {"emotion", "latent_w"}
    # the deployed predictor's parameters are W_E and R only
    used = m.init(jax.random.key(1), {"weak": weak})["params"]
    assert set(used) == {"W_E", "R"}


def test_every_frame_independent():
    m = SEW(weak_hidden=(6,), strong_hidden=(5,), latent=4, gru_layers=2, gru_units=3)
    x = np.random.default_rng(0).normal(size=(2, 9, 7)).astype(np.float32)
    p = m.init(jax.random.key(1), {"weak": x})["params"]
    whole = np.asarray(m.apply({"params": p}, {"weak": x})["emotion"])
    frames = np.asarray(m.apply({"params": p}, {"weak": x.reshape(18, 1, 7)})["emotion"])
    np.testing.assert_allclose(whole.reshape(18, 1, 1), frames, rtol=1e-6, atol=1e-6)


def test_unimodal_is_the_regressor_on_the_features():
    m = SEW(latent=0, gru_layers=4, gru_units=120)
    x = jnp.zeros((1, 2, 88))
    p = m.init(jax.random.key(0), {"weak": x})["params"]
    assert set(p) == {"R"} and p["R"]["weight_ih_l0"].shape == (360, 88)
    assert set(m.apply({"params": p}, x)) == {"emotion"}


def test_missing_weak_view_is_a_sentence():
    with pytest.raises(ValueError, match="'weak' view"):
        SEW(latent=0).init(jax.random.key(0), {"strong": jnp.zeros((1, 1, 3))})
