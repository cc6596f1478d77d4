"""Tests for ddat_jax.models: torch-convention GRU/LSTM, custom VJP, masks, heads."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from ddat_jax.models import (
    DNN,
    MODELS,
    RNN,
    ConvFrontEnd,
    MultiTaskRNN,
    build_model,
    expected_rnn_shapes,
    resolve_gate_layout,
    reverse_padded,
    rnn_apply,
)

F, H, T = 3, 5, 12

# --------------------------------------------------------------------------------------
# Independent float64 NumPy references (torch gate equations).
# --------------------------------------------------------------------------------------


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_gru(x, w_ih, w_hh, b_ih, b_hh):
    """x [time, in] -> [time, hidden]; torch.nn.GRU equations, gate order r, z, n."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    out = []
    for x_t in x:
        gi = w_ih @ x_t + b_ih
        gh = w_hh @ h + b_hh
        r = _sigmoid(gi[:hidden] + gh[:hidden])
        z = _sigmoid(gi[hidden : 2 * hidden] + gh[hidden : 2 * hidden])
        n = np.tanh(gi[2 * hidden :] + r * gh[2 * hidden :])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)


def np_lstm(x, w_ih, w_hh, b_ih, b_hh):
    """x [time, in] -> [time, hidden]; torch.nn.LSTM equations, gate order i, f, g, o."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    out = []
    for x_t in x:
        a = w_ih @ x_t + b_ih + w_hh @ h + b_hh
        i, f = _sigmoid(a[:hidden]), _sigmoid(a[hidden : 2 * hidden])
        g, o = np.tanh(a[2 * hidden : 3 * hidden]), _sigmoid(a[3 * hidden :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out)


def np_rnn(params, x, *, cell, num_layers, bidirectional):
    """One unpadded sequence x [time, features] through a torch-style stack."""
    step = {"gru": np_gru, "lstm": np_lstm}[cell]
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = np.asarray(x, np.float64)
    for layer in range(num_layers):
        sfx = f"_l{layer}"
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        out = step(h, *(p[n + sfx] for n in names))
        if bidirectional:
            rev = step(h[::-1], *(p[n + sfx + "_reverse"] for n in names))[::-1]
            out = np.concatenate([out, rev], axis=-1)
        h = out
    return h


def _inputs(seed, batch=3, time=T, features=F):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, time, features)).astype(np.float32)


def _mask(lengths, time=T):
    return np.arange(time)[None, :] < np.asarray(lengths)[:, None]


def _init(cell, num_layers, bidirectional, seed=0, hidden=H, features=F, **kw):
    """Model and random torch-layout parameters, without compiling ``model.init``."""
    model = RNN(cell=cell, hidden_size=hidden, num_layers=num_layers, bidirectional=bidirectional)
    model = model.clone(**kw)
    shapes = expected_rnn_shapes(
        cell=cell,
        input_size=features,
        hidden_size=hidden,
        num_layers=num_layers,
        bidirectional=bidirectional,
    )
    rng = np.random.default_rng(seed)
    params = {k: jnp.asarray(rng.uniform(-0.5, 0.5, s), jnp.float32) for k, s in shapes.items()}
    return model, params


CASES = [
    ("gru", 2, True),
    ("lstm", 1, True),
    pytest.param("gru", 1, False, marks=pytest.mark.slow),
    pytest.param("lstm", 2, False, marks=pytest.mark.slow),
]


# --------------------------------------------------------------------------------------
# Forward pass.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,num_layers,bidirectional", CASES)
def test_outputs_match_numpy_reference_with_padding(cell, num_layers, bidirectional):
    model, params = _init(cell, num_layers, bidirectional, seed=1)
    x = _inputs(2)
    lengths = [T, 7, 1]
    mask = _mask(lengths)
    # Garbage in the padding must not leak into real frames.
    x_padded = np.where(mask[..., None], x, 100.0).astype(np.float32)
    y = np.asarray(jax.jit(model.apply)({"params": params}, x_padded, mask=jnp.asarray(mask)))
    dirs = 2 if bidirectional else 1
    assert y.shape == (3, T, H * dirs)
    for b, length in enumerate(lengths):
        ref = np_rnn(
            params, x[b, :length], cell=cell, num_layers=num_layers, bidirectional=bidirectional
        )
        np.testing.assert_allclose(y[b, :length], ref, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(y[b, length:], 0.0)


@pytest.mark.parametrize("gate_layout", ["fused", "per_gate"])
def test_gru_gate_layouts_match_numpy_and_finite_differences(gate_layout):
    # "auto" picks per_gate on CPU and fused on GPU/TPU: both must be right everywhere.
    _, params = _init("gru", 2, False, seed=4)
    x = _inputs(5)
    lengths = [T, 6, 2]
    mask = jnp.asarray(_mask(lengths))
    for backward in ("custom", "autodiff"):
        y = jax.jit(
            functools.partial(
                rnn_apply, cell="gru", num_layers=2, backward=backward, gate_layout=gate_layout
            )
        )(params, jnp.asarray(x), mask)
        for b, length in enumerate(lengths):
            ref = np_rnn(params, x[b, :length], cell="gru", num_layers=2, bidirectional=False)
            np.testing.assert_allclose(np.asarray(y)[b, :length], ref, atol=1e-5, rtol=0)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x64 = jnp.asarray(x[:, :6], jnp.float64)
        m64 = jnp.asarray(_mask([6, 4, 1], 6))

        def f(p, x):
            return rnn_apply(p, x, m64, cell="gru", num_layers=2, gate_layout=gate_layout)

        check_grads(jax.jit(f), (p64, x64), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_resolve_gate_layout():
    assert resolve_gate_layout("auto", "cpu") == "per_gate"
    assert resolve_gate_layout("auto", "gpu") == "fused"
    assert resolve_gate_layout("auto", "tpu") == "fused"
    assert resolve_gate_layout("fused", "cpu") == "fused"
    with pytest.raises(ValueError, match="gate_layout"):
        resolve_gate_layout("interleaved")


@pytest.mark.parametrize("cell", ["lstm", pytest.param("gru", marks=pytest.mark.slow)])
def test_no_mask_equals_full_mask_and_numpy(cell):
    model, params = _init(cell, 1, True, seed=3)
    x = _inputs(4, batch=2)
    apply = jax.jit(model.apply)
    y = apply({"params": params}, x)
    y_mask = apply({"params": params}, x, mask=jnp.ones((2, T), bool))
    np.testing.assert_allclose(y, y_mask, atol=1e-6)
    for b in range(2):
        ref = np_rnn(params, x[b], cell=cell, num_layers=1, bidirectional=True)
        np.testing.assert_allclose(y[b], ref, atol=1e-5, rtol=0)


def test_bidirectional_halves_are_two_unidirectional_runs():
    model, params = _init("gru", 1, True, seed=5)
    x = _inputs(6, batch=2)
    y = jax.jit(model.apply)({"params": params}, x)
    fwd = {k: v for k, v in params.items() if not k.endswith("_reverse")}
    rev = {k.removesuffix("_reverse"): v for k, v in params.items() if k.endswith("_reverse")}
    uni = jax.jit(RNN(cell="gru", hidden_size=H, num_layers=1).apply)
    np.testing.assert_allclose(y[..., :H], uni({"params": fwd}, x), atol=1e-6)
    y_rev = uni({"params": rev}, x[:, ::-1])[:, ::-1]
    np.testing.assert_allclose(y[..., H:], y_rev, atol=1e-6)


def test_init_like_torch_and_uniform_scale():
    model = RNN(cell="lstm", hidden_size=8, num_layers=2, bidirectional=True)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 2, F)))["params"]
    assert jax.tree.map(jnp.shape, params) == expected_rnn_shapes(
        cell="lstm", input_size=F, hidden_size=8, num_layers=2, bidirectional=True
    )
    assert params["weight_ih_l1_reverse"].shape == (32, 16)
    bound = 1 / np.sqrt(8)
    leaves = np.concatenate([np.ravel(v) for v in params.values()])
    assert leaves.dtype == np.float32
    assert np.abs(leaves).max() <= bound and np.abs(leaves).max() > 0.9 * bound
    model = RNN(cell="gru", hidden_size=8, init_scale=0.1)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 2, F)))["params"]
    leaves = np.concatenate([np.ravel(v) for v in params.values()])
    assert np.abs(leaves).max() <= 0.1 and np.abs(leaves).max() > 0.09


def test_reverse_padded_is_an_involution_within_lengths():
    x = jnp.arange(5 * 2).reshape(5, 2)
    lengths = jnp.array([5, 3])
    y = reverse_padded(x, lengths)
    np.testing.assert_array_equal(y[:, 0], [8, 6, 4, 2, 0])
    np.testing.assert_array_equal(y[:, 1], [5, 3, 1, 7, 9])
    np.testing.assert_array_equal(reverse_padded(y, lengths), x)


def test_bad_names_raise():
    x = jnp.zeros((1, 2, F))
    with pytest.raises(ValueError, match="gru"):
        RNN(cell="rnn_tanh", hidden_size=H).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="custom"):
        RNN(hidden_size=H, backward="fast").init(jax.random.key(0), x)


# --------------------------------------------------------------------------------------
# Gradients: custom VJP == plain autodiff; numerical check; masks; vmap.
# --------------------------------------------------------------------------------------


def _weighted_loss(cell, num_layers, bidirectional, backward, mask, w):
    def loss(params, x):
        y = rnn_apply(
            params,
            x,
            mask,
            cell=cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            backward=backward,
        )
        return jnp.sum(jnp.tanh(y) * w)

    return loss


def _assert_trees_close(a, b, rtol=1e-5):
    for (path, u), v in zip(
        jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b), strict=True
    ):
        u, v = np.asarray(u), np.asarray(v)
        scale = max(np.abs(v).max(), 1e-3)
        assert np.abs(u - v).max() <= rtol * scale, (jax.tree_util.keystr(path), u, v)


@pytest.mark.parametrize(
    "cell,num_layers,bidirectional",
    [
        ("gru", 1, True),
        ("lstm", 1, True),
        pytest.param("gru", 2, True, marks=pytest.mark.slow),
        pytest.param("lstm", 2, False, marks=pytest.mark.slow),
    ],
)
def test_custom_vjp_equals_autodiff(cell, num_layers, bidirectional):
    _, params = _init(cell, num_layers, bidirectional, seed=7)
    x = jnp.asarray(_inputs(8))
    mask = jnp.asarray(_mask([T, 9, 4]))
    dirs = 2 if bidirectional else 1
    w = jnp.asarray(np.random.default_rng(9).standard_normal((3, T, H * dirs)), jnp.float32)
    grads = {}
    for backward in ("custom", "autodiff"):
        loss = _weighted_loss(cell, num_layers, bidirectional, backward, mask, w)
        grads[backward] = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    _assert_trees_close(grads["custom"], grads["autodiff"])


@pytest.mark.parametrize("cell", ["gru", pytest.param("lstm", marks=pytest.mark.slow)])
def test_check_grads_float64(cell):
    with jax.enable_x64(True):
        rng = np.random.default_rng(10)
        sizes = {"gru": 3, "lstm": 4}
        hidden, features, time = 3, 2, 6
        g = sizes[cell] * hidden
        params = {
            "weight_ih_l0": rng.uniform(-0.6, 0.6, (g, features)),
            "weight_hh_l0": rng.uniform(-0.6, 0.6, (g, hidden)),
            "bias_ih_l0": rng.uniform(-0.6, 0.6, (g,)),
            "bias_hh_l0": rng.uniform(-0.6, 0.6, (g,)),
        }
        params = jax.tree.map(jnp.asarray, params)
        x = jnp.asarray(rng.standard_normal((2, time, features)))
        mask = jnp.asarray(_mask([time, 4], time))

        def f(params, x):
            return rnn_apply(params, x, mask, cell=cell, num_layers=1, backward="custom")

        f = jax.jit(f)
        assert f(params, x).dtype == jnp.float64
        check_grads(f, (params, x), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "cell,backward",
    [
        ("gru", "custom"),
        ("lstm", "custom"),
        pytest.param("gru", "autodiff", marks=pytest.mark.slow),
        pytest.param("lstm", "autodiff", marks=pytest.mark.slow),
    ],
)
def test_masked_batch_equals_unpadded_sequences(cell, backward):
    num_layers, bidirectional = 1, True
    _, params = _init(cell, num_layers, bidirectional, seed=11)
    lengths = [T, 5]
    x = _inputs(12, batch=2)
    mask = _mask(lengths)
    # Padding garbage must not leak anywhere, neither into outputs nor into gradients.
    x_padded = np.where(mask[..., None], x, 50.0).astype(np.float32)
    w = np.random.default_rng(13).standard_normal((2, T, 2 * H)).astype(np.float32)
    # Only the padded sequence enters the loss, so the batch's parameter gradient must
    # equal that of the unpadded sequence alone (one compile fewer than summing both).
    w[0] = 0.0

    def value_and_grads(mask, w, x):
        loss = _weighted_loss(cell, num_layers, bidirectional, backward, mask, w)
        y = rnn_apply(params, x, mask, cell=cell, num_layers=num_layers, bidirectional=True)
        return y, jax.grad(loss, argnums=(0, 1))(params, x)

    y, (g_params, g_x) = jax.jit(value_and_grads)(jnp.asarray(mask), w, jnp.asarray(x_padded))
    for b, length in enumerate(lengths):
        ref = np_rnn(params, x[b, :length], cell=cell, num_layers=1, bidirectional=True)
        np.testing.assert_allclose(y[b, :length], ref, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(np.asarray(y)[~mask], 0.0)
    np.testing.assert_array_equal(np.asarray(g_x)[~mask], 0.0)
    np.testing.assert_array_equal(g_x[0], 0.0)
    length = lengths[1]
    _, (gp_1, gx_1) = jax.jit(functools.partial(value_and_grads, None))(
        w[1:, :length], jnp.asarray(x[1:, :length])
    )
    np.testing.assert_allclose(g_x[1, :length], gx_1[0], atol=1e-5)
    _assert_trees_close(g_params, gp_1)


@pytest.mark.parametrize("cell", ["lstm", pytest.param("gru", marks=pytest.mark.slow)])
def test_unidirectional_mask_with_holes_skips_frames(cell):
    # Forward direction only: a masked frame freezes the state, as if it were absent.
    _, params = _init(cell, 1, False, seed=21)
    x = _inputs(22, batch=2)
    mask = np.ones((2, T), bool)
    mask[0, [2, 3, 7]] = False
    mask[1, T - 4 :] = False
    w = np.random.default_rng(23).standard_normal((2, T, H)).astype(np.float32)

    def run(backward):
        loss = _weighted_loss(cell, 1, False, backward, jnp.asarray(mask), w)
        y = rnn_apply(params, x, mask, cell=cell, num_layers=1, backward=backward)
        return y, jax.grad(loss)(params, jnp.asarray(x))

    (y, g_custom), (_, g_autodiff) = jax.jit(lambda: (run("custom"), run("autodiff")))()
    _assert_trees_close(g_custom, g_autodiff)
    for b in range(2):
        ref = np_rnn(params, x[b][mask[b]], cell=cell, num_layers=1, bidirectional=False)
        np.testing.assert_allclose(np.asarray(y[b])[mask[b]], ref, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(np.asarray(y[b])[~mask[b]], 0.0)


def _stacked_params(cell, num_layers, bidirectional, members):
    trees = [_init(cell, num_layers, bidirectional, seed=100 + k)[1] for k in range(members)]
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


@pytest.mark.parametrize(
    "cell,bidirectional,backward",
    [
        ("gru", True, "custom"),
        pytest.param("lstm", False, "custom", marks=pytest.mark.slow),
        pytest.param("gru", True, "autodiff", marks=pytest.mark.slow),
    ],
)
def test_vmap_over_params_equals_loop(cell, bidirectional, backward):
    model = RNN(cell=cell, hidden_size=H, bidirectional=bidirectional, backward=backward)
    stacked = _stacked_params(cell, 1, bidirectional, 3)
    x = jnp.asarray(_inputs(15))
    mask = jnp.asarray(_mask([T, 6, 2]))

    def loss(params):
        return jnp.sum(jnp.sin(model.apply({"params": params}, x, mask=mask)))

    val_v, grad_v = jax.jit(jax.vmap(jax.value_and_grad(loss)))(stacked)
    loop = jax.jit(jax.value_and_grad(loss))
    for k in range(3):
        val_k, grad_k = loop(jax.tree.map(lambda a, k=k: a[k], stacked))
        np.testing.assert_allclose(val_v[k], val_k, rtol=1e-6)
        _assert_trees_close(jax.tree.map(lambda a, k=k: a[k], grad_v), grad_k)


# --------------------------------------------------------------------------------------
# Multi-task heads, DNN, conv front end, registry.
# --------------------------------------------------------------------------------------


def test_multitask_rnn_heads():
    heads = {"emotion": 1, "reconstruction": F, "uncertainty": 1}
    model = MultiTaskRNN(cell="lstm", hidden_size=H, num_layers=1, heads=heads)
    x = _inputs(18)
    mask = _mask([T, 5, 2])
    variables = jax.jit(model.init)(jax.random.key(0), jnp.asarray(x))
    out = jax.jit(model.apply)(variables, jnp.asarray(x), mask=jnp.asarray(mask))
    assert list(out) == list(heads)
    p = variables["params"]
    for b, length in enumerate([T, 5, 2]):
        trunk = np_rnn(p["rnn"], x[b, :length], cell="lstm", num_layers=1, bidirectional=False)
        for name, size in heads.items():
            assert out[name].shape == (3, T, size)
            head = p[f"head_{name}"]
            ref = trunk @ np.asarray(head["kernel"], np.float64) + np.asarray(head["bias"])
            np.testing.assert_allclose(out[name][b, :length], ref, atol=1e-5)
            np.testing.assert_array_equal(out[name][b, length:], 0.0)
    assert hash(model) == hash(model.clone())


def test_multitask_init_scale_applies_to_heads():
    model = MultiTaskRNN(hidden_size=H, heads={"emotion": 2}, init_scale=0.1)
    p = jax.jit(model.init)(jax.random.key(1), jnp.zeros((1, 2, 50)))["params"]
    leaves = np.concatenate([np.ravel(v) for v in jax.tree.leaves(p)])
    assert np.abs(leaves).max() <= 0.1


def test_dnn_matches_numpy():
    model = DNN(hidden_sizes=(6, 4), heads={"emotion": 1, "uncertainty": 2})
    x = _inputs(19, batch=2, time=4)
    p = jax.jit(model.init)(jax.random.key(2), jnp.asarray(x))["params"]
    out = jax.jit(model.apply)({"params": p}, jnp.asarray(x))
    h = x.astype(np.float64)
    for i in range(2):
        layer = p[f"hidden_{i}"]
        h = np.maximum(h @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]), 0.0)
    for name in ("emotion", "uncertainty"):
        ref = h @ np.asarray(p[f"head_{name}"]["kernel"]) + np.asarray(p[f"head_{name}"]["bias"])
        np.testing.assert_allclose(out[name], ref, atol=1e-5)
    bound = 1 / np.sqrt(F)
    assert np.abs(p["hidden_0"]["kernel"]).max() <= bound


def test_conv_front_end_matches_numpy():
    model = ConvFrontEnd(features=4, kernel_size=3, pool=2)
    rng = np.random.default_rng(20)
    x = rng.standard_normal((2, 3, 9, F)).astype(np.float32)
    p = jax.jit(model.init)(jax.random.key(3), jnp.asarray(x))["params"]
    y = jax.jit(model.apply)({"params": p}, jnp.asarray(x))
    kernel, bias = np.asarray(p["conv"]["kernel"]), np.asarray(p["conv"]["bias"])
    assert kernel.shape == (3, F, 4)
    conv = np.stack(
        [np.einsum("btkc,kcf->btf", x[:, :, j : j + 3], kernel) + bias for j in range(7)], axis=2
    )
    conv = np.maximum(conv, 0.0)
    pooled = np.maximum(conv[:, :, 0:6:2], conv[:, :, 1:6:2])
    assert y.shape == (2, 3, 3 * 4)
    np.testing.assert_allclose(y, pooled.reshape(2, 3, -1), atol=1e-5)


def test_build_model():
    assert set(MODELS) >= {"rnn", "mtl_rnn", "dnn"}
    model = build_model("rnn", cell="lstm", hidden_size=4, num_layers=2)
    assert isinstance(model, RNN) and model.num_layers == 2
    with pytest.raises(ValueError, match="valid models: .*'dnn'.*'rnn'"):
        build_model("transformer")
    with pytest.raises(ValueError, match="mtl_rnn"):
        build_model("mtl_rnn", heads={"emotion": 1}, hiden_size=3)
    with pytest.raises(ValueError, match="positive int"):
        MultiTaskRNN(heads={"emotion": 0})
