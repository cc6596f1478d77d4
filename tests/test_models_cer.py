"""CER-MTL network: window offsets, in-step gathering, conv/pool and the task branches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddat_jax.models.builders import build_model
from ddat_jax.models.cer import (
    CERNet,
    FeatureImageCER,
    context_frames,
    gather_windows,
    num_params,
    window_offsets,
)


def test_window_offsets_and_context():
    np.testing.assert_array_equal(window_offsets(4, 10), [-30, -20, -10, 0])
    np.testing.assert_array_equal(window_offsets(4, 10, causal=False), [-10, 0, 10, 20])
    assert context_frames(20, 10) == (190, 0)
    assert context_frames(20, 10, causal=False) == (90, 100)
    with pytest.raises(ValueError, match="window and stride"):
        window_offsets(0, 10)


@pytest.mark.parametrize("causal", [True, False])
def test_gather_matches_a_loop(causal):
    rng = np.random.default_rng(0)
    n, t = 5, 3
    left, right = context_frames(n, t, causal)
    x = rng.normal(size=(2, left + 7 + right, 4)).astype(np.float32)
    got = np.asarray(gather_windows(jnp.asarray(x), n, t, causal))
    assert got.shape == (2, 7, n, 4)
    for c in range(7):
        at = left + c
        frames = (
            [at - (n - 1 - j) * t for j in range(n)]
            if causal
            else [at + (j - n // 2 + 1) * t for j in range(n)]
        )
        np.testing.assert_array_equal(got[:, c], x[:, frames])
    with pytest.raises(ValueError, match="no target frame"):
        gather_windows(jnp.zeros((1, left + right, 4)), n, t, causal)


def test_sequence_model_equals_the_network_on_materialised_windows():
    rng = np.random.default_rng(1)
    model = FeatureImageCER(tasks=2, window=6, stride=2)
    left, _ = context_frames(6, 2)
    x = rng.normal(size=(3, left + 9, 5)).astype(np.float32)
    params = model.init(jax.random.key(0), jnp.asarray(x))["params"]
    out = np.asarray(model.apply({"params": params}, jnp.asarray(x))["emotion"])
    assert out.shape == (3, left + 9, 2)
    np.testing.assert_array_equal(out[:, :left], 0.0)
    # Windows built by hand in NumPy, fed to the per-frame network directly.
    images = np.stack([x[:, [left + c - (5 - j) * 2 for j in range(6)]] for c in range(9)], axis=1)
    ref = CERNet(tasks=2).apply({"params": params["net"]}, jnp.asarray(images))
    np.testing.assert_allclose(out[:, left:], np.asarray(ref), rtol=1e-5, atol=1e-6)


def test_conv_and_pool_against_numpy():
    """The branch input: VALID Conv1D (ReLU) + max-pool 2, checked through a linear probe."""
    rng = np.random.default_rng(2)
    net = CERNet(tasks=1, filters=4)
    img = rng.normal(size=(7, 9, 3)).astype(np.float32)
    params = net.init(jax.random.key(1), jnp.asarray(img))["params"]
    _, state = net.apply(
        {"params": params}, jnp.asarray(img), capture_intermediates=True, mutable=["intermediates"]
    )
    conv = np.asarray(state["intermediates"]["conv"]["__call__"][0])
    k, b = np.asarray(params["conv"]["kernel"]), np.asarray(params["conv"]["bias"])
    ref = np.stack([np.einsum("bkp,kpf->bf", img[:, i : i + 3], k) for i in range(7)], 1) + b
    np.testing.assert_allclose(conv, ref, rtol=1e-5, atol=1e-5)
    pooled = np.maximum(np.maximum(ref, 0)[:, 0:6:2], np.maximum(ref, 0)[:, 1:6:2])
    assert pooled.shape == (7, 3, 4)  # (9 - 3 + 1) // 2 pooled steps reach the GRUs


def test_tasks_share_only_the_convolution():
    rng = np.random.default_rng(3)
    net = CERNet(tasks=3)
    img = jnp.asarray(rng.normal(size=(4, 20, 6)).astype(np.float32))
    params = net.init(jax.random.key(2), img)["params"]
    base = np.asarray(net.apply({"params": params}, img))
    bumped = jax.tree.map(lambda a: a, params)
    bumped["gru_1"]["in"]["bias"] = params["gru_1"]["in"]["bias"] + 1.0
    moved = np.asarray(net.apply({"params": bumped}, img))
    np.testing.assert_array_equal(moved[:, [0, 2]], base[:, [0, 2]])
    assert not np.allclose(moved[:, 1], base[:, 1])
    # Parameter count: conv P·k·F + F, and per task a GRU (3 input maps with bias, 3 hidden
    # maps, one hidden bias), Dense(2), Dense(1) - independent of the window size N.
    gru = 3 * (25 * 5 + 5) + 3 * 5 * 5 + 5
    per_task = gru + (5 * 2 + 2) + (2 + 1)
    assert num_params(params) == 6 * 3 * 25 + 25 + 3 * per_task


def test_registered_in_models():
    m = build_model("cer", tasks=1, window=20, stride=10)
    assert isinstance(m, FeatureImageCER)
    with pytest.raises(ValueError, match="too short"):
        CERNet(tasks=1).init(jax.random.key(0), jnp.zeros((1, 3, 2)))
