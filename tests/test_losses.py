"""Tests of ddat_jax.losses against independent float64 NumPy/SciPy references."""

import doctest
import functools
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.test_util import check_grads

from ddat_jax import losses

# Jitted aliases: one compilation per shape is much cheaper than op-by-op dispatch
# on a busy CI machine, and it exercises the functions under jit everywhere.
ccc = jax.jit(losses.ccc, static_argnames=("axis", "eps"))
ccc_loss = jax.jit(losses.ccc_loss, static_argnames=("axis", "eps"))
pcc = jax.jit(losses.pcc, static_argnames=("axis", "eps"))
pcc_loss = jax.jit(losses.pcc_loss, static_argnames=("axis", "eps"))
mse = jax.jit(losses.mse, static_argnames=("axis",))
dcca_loss = jax.jit(losses.dcca_loss, static_argnames=("top_k", "axis", "r1", "r2", "eps"))

# ----------------------------------------------------------------------------- references


def np_ccc(p, t):
    p = np.asarray(p, np.float64)
    t = np.asarray(t, np.float64)
    mp, mt = p.mean(), t.mean()
    vp = np.mean((p - mp) ** 2)
    vt = np.mean((t - mt) ** 2)
    cov = np.mean((p - mp) * (t - mt))
    return 2 * cov / (vp + vt + (mp - mt) ** 2)


def np_dcca_corr(a, b, r1, r2, k=None):
    """Total correlation by Cholesky whitening + SVD (a different whitening from the code)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    m = a.shape[0]
    a = a - a.mean(0)
    b = b - b.mean(0)
    saa = a.T @ a / (m - 1) + r1 * np.eye(a.shape[1])
    sbb = b.T @ b / (m - 1) + r2 * np.eye(b.shape[1])
    sab = a.T @ b / (m - 1)
    la = np.linalg.cholesky(saa)
    lb = np.linalg.cholesky(sbb)
    # La^{-1} Sab Lb^{-T} has the same singular values as Saa^{-1/2} Sab Sbb^{-1/2}.
    left = scipy.linalg.solve_triangular(la, sab, lower=True)
    t = scipy.linalg.solve_triangular(lb, left.T, lower=True).T
    s = np.linalg.svd(t, compute_uv=False)
    return s[:k].sum()


def orthonormal_view(rng, m, d):
    """A view whose sample covariance (1/(m-1)) is exactly the identity."""
    x = rng.normal(size=(m, d))
    x -= x.mean(0)
    q, _ = np.linalg.qr(x)
    return q * np.sqrt(m - 1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- CCC / PCC / MSE


@pytest.mark.parametrize("shape,axis", [((50,), -1), ((4, 30), -1), ((30, 3), 0), ((3, 8, 5), 1)])
def test_ccc_matches_numpy_float64(rng, shape, axis):
    p = rng.normal(size=shape)
    t = 0.5 * p + rng.normal(size=shape) + 0.3
    with jax.enable_x64(True):
        got = np.asarray(ccc(p, t, axis=axis))
        assert got.dtype == np.float64
    want = np.apply_along_axis(lambda v: 0.0, axis, p)  # right output shape
    pm = np.moveaxis(p, axis, -1).reshape(-1, shape[axis])
    tm = np.moveaxis(t, axis, -1).reshape(-1, shape[axis])
    want = np.array([np_ccc(a, b) for a, b in zip(pm, tm, strict=True)]).reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_ccc_float32_close_to_float64_reference(rng):
    p = rng.normal(size=(4, 7501)).astype(np.float32) + 5.0  # large offset: two-pass matters
    t = p + 0.5 * rng.normal(size=p.shape).astype(np.float32)
    got = ccc(p, t)
    assert got.dtype == jnp.float32
    want = [np_ccc(a, b) for a, b in zip(p, t, strict=True)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5)


def test_ccc_reduce_all_axes(rng):
    p = rng.normal(size=(3, 20))
    t = p + rng.normal(size=(3, 20))
    with jax.enable_x64(True):
        got = float(ccc(p, t, axis=None))
        got2 = float(ccc(p, t, axis=(0, 1)))
    assert got == pytest.approx(np_ccc(p.ravel(), t.ravel()), rel=1e-12)
    assert got2 == pytest.approx(got, rel=1e-14)


def test_pcc_matches_scipy_pearsonr(rng):
    p = rng.normal(size=(5, 40))
    t = -0.7 * p + rng.normal(size=(5, 40))
    with jax.enable_x64(True):
        got = np.asarray(pcc(p, t))
        loss = np.asarray(pcc_loss(p, t))
    want = [scipy.stats.pearsonr(a, b).statistic for a, b in zip(p, t, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(loss, 1 - np.asarray(want), rtol=1e-12)


def test_mse_and_ccc_loss_match_numpy(rng):
    p = rng.normal(size=(3, 25))
    t = rng.normal(size=(3, 25))
    with jax.enable_x64(True):
        np.testing.assert_allclose(mse(p, t), np.mean((p - t) ** 2, axis=-1), rtol=1e-13)
        np.testing.assert_allclose(
            ccc_loss(p, t), [1 - np_ccc(a, b) for a, b in zip(p, t, strict=True)]
        )


def test_integer_inputs_are_promoted():
    out = ccc(jnp.arange(5), jnp.arange(5))
    assert out.dtype == jnp.float32
    assert float(out) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("fn", [ccc, pcc, mse])
def test_mask_equals_slicing(rng, fn):
    p = rng.normal(size=(3, 40))
    t = p + rng.normal(size=(3, 40))
    lengths = [40, 25, 7]
    mask = np.arange(40)[None, :] < np.array(lengths)[:, None]
    p_pad = np.where(mask, p, np.nan)  # padding holds NaN: it must not leak
    t_pad = np.where(mask, t, 1e6)
    ref = {
        ccc: np_ccc,
        pcc: lambda a, b: scipy.stats.pearsonr(a, b).statistic,
        mse: lambda a, b: np.mean((a - b) ** 2),
    }[fn]
    with jax.enable_x64(True):
        got = np.asarray(fn(p_pad, t_pad, where=mask))
        grad = np.asarray(jax.jit(jax.grad(lambda x: jnp.sum(fn(x, t_pad, where=mask))))(p_pad))
    want = [ref(p[i, :n], t[i, :n]) for i, n in enumerate(lengths)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[~mask] == 0)


def test_mask_broadcasts_over_output_axis(rng):
    p = rng.normal(size=(2, 30, 3))
    t = p + rng.normal(size=(2, 30, 3))
    mask = (np.arange(30) < 20)[None, :, None]
    with jax.enable_x64(True):
        got = np.asarray(ccc(p, t, axis=1, where=mask))
    want = [[np_ccc(p[b, :20, o], t[b, :20, o]) for o in range(3)] for b in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_nan_in_unmasked_frame_propagates():
    t = jnp.array([0.1, jnp.nan, 0.3, 0.0])
    p = jnp.array([0.2, 0.1, 0.4, -0.1])
    assert np.isnan(ccc(p, t))
    assert np.isfinite(ccc(p, t, where=~jnp.isnan(t)))


# ----------------------------------------------------------------------------- edge cases


def test_constant_predictions_give_zero_with_finite_informative_gradient(rng):
    t = rng.normal(size=50)
    c = np.full(50, 0.25)
    with jax.enable_x64(True):
        assert float(ccc(c, t)) == 0.0
        assert float(ccc_loss(c, t)) == 1.0
        g = np.asarray(jax.grad(lambda x: ccc(x, t))(c))
        gp = np.asarray(jax.grad(lambda x: pcc(x, t))(c))
        assert float(pcc(c, t)) == 0.0
    # d CCC / d p_i at constant p: 2 (t_i - mean t) / (N D), D = var_t + (c - mean t)^2.
    d = np.var(t) + (0.25 - t.mean()) ** 2
    np.testing.assert_allclose(g, 2 * (t - t.mean()) / (50 * d), rtol=1e-12)
    assert np.all(np.isfinite(gp))


def test_identical_inputs_give_one(rng):
    x = rng.normal(size=(2, 30)).astype(np.float32)
    np.testing.assert_allclose(ccc(x, x), 1.0, atol=1e-6)
    np.testing.assert_allclose(pcc(x, x), 1.0, atol=1e-6)
    np.testing.assert_allclose(mse(x, x), 0.0, atol=0)


@pytest.mark.parametrize("fn", [ccc, pcc])
def test_fully_masked_and_length_one_are_nan_free(fn):
    p = jnp.array([[0.3, 0.1, 0.2], [0.5, 0.5, 0.5]])
    t = jnp.array([[0.1, 0.4, 0.2], [0.2, 0.1, 0.0]])
    mask = jnp.array([[False] * 3, [True, False, False]])  # fully masked; one frame
    val = fn(p, t, where=mask)
    g = jax.grad(lambda x: jnp.sum(fn(x, t, where=mask)))(p)
    np.testing.assert_array_equal(val, [0.0, 0.0])
    np.testing.assert_array_equal(g, np.zeros((2, 3)))
    assert float(mse(p, t, where=mask)[0]) == 0.0


def test_both_constant_inputs_are_finite():
    a = jnp.full(10, 0.3)
    for b in (jnp.full(10, 0.3), jnp.full(10, -0.2)):
        assert float(ccc(a, b)) == 0.0
        g = jax.grad(lambda x, b=b: ccc_loss(x, b))(a)
        assert np.all(np.isfinite(g))


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        ccc(jnp.ones(5), jnp.ones(4))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        ccc(jnp.ones((2, 5)), jnp.ones((2, 5)), axis=2)


# ----------------------------------------------------------------------------- transformations


@pytest.mark.parametrize("fn", [ccc_loss, pcc_loss, mse])
def test_check_grads_float64(rng, fn):
    p = rng.normal(size=(2, 12))
    t = p + rng.normal(size=(2, 12))
    mask = np.arange(12) < 9
    with jax.enable_x64(True):
        f = jax.jit(lambda x, y: fn(x, y, where=mask))
        check_grads(f, (p, t), order=1, modes=("rev",))


@pytest.mark.slow
@pytest.mark.parametrize("fn", [ccc_loss, pcc_loss, mse])
def test_check_grads_float64_second_order(rng, fn):
    p = rng.normal(size=(2, 12))
    t = p + rng.normal(size=(2, 12))
    mask = np.arange(12) < 9
    with jax.enable_x64(True):
        f = jax.jit(lambda x, y: fn(x, y, where=mask))
        check_grads(f, (p, t), order=2, modes=("fwd", "rev"))


def test_jit_vmap_grad_float32(rng):
    p = rng.normal(size=(5, 4, 30)).astype(np.float32)  # [grid, batch, time]
    t = rng.normal(size=(4, 30)).astype(np.float32)

    def objective(x, y):
        return jnp.mean(ccc_loss(x, y))

    per_grid = jax.jit(jax.vmap(jax.value_and_grad(objective), in_axes=(0, None)))(p, t)
    single = jax.jit(jax.value_and_grad(objective))
    for g in range(5):
        v, gr = single(p[g], t)
        np.testing.assert_allclose(per_grid[0][g], v, rtol=1e-6)
        np.testing.assert_allclose(per_grid[1][g], gr, rtol=1e-5, atol=1e-7)
    assert per_grid[1].dtype == jnp.float32


# ----------------------------------------------------------------------------- properties

_T = 16
_floats = st.floats(-10, 10, allow_nan=False, width=64)
_vec = hnp.arrays(np.float64, (_T,), elements=_floats)
_mat = hnp.arrays(np.float64, (3, _T), elements=_floats)


@settings(max_examples=40, deadline=None)
@given(p=_vec, t=_vec)
def test_property_ccc_bounded_and_symmetric(p, t):
    with jax.enable_x64(True):
        c = float(ccc(p, t))
        c_sym = float(ccc(t, p))
    assert -1.0 - 1e-12 <= c <= 1.0 + 1e-12
    assert c == pytest.approx(c_sym, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(p=_vec, t=_vec, n=st.integers(0, _T))
def test_property_masked_equals_sliced(p, t, n):
    mask = np.arange(_T) < n
    with jax.enable_x64(True):
        masked = float(ccc(p, t, where=mask))
    # float64 NumPy reference on the slice (with the same eps floor: 0 for < 2 frames
    # or both slices constant).
    sliced = 0.0
    if n >= 2:
        d = np.var(p[:n]) + np.var(t[:n]) + (p[:n].mean() - t[:n].mean()) ** 2
        sliced = 2 * np.mean((p[:n] - p[:n].mean()) * (t[:n] - t[:n].mean())) / max(d, 1e-8)
    assert masked == pytest.approx(sliced, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(p=_mat, t=_mat)
def test_property_vmap_equals_loop(p, t):
    with jax.enable_x64(True):
        batched = np.asarray(jax.jit(jax.vmap(losses.ccc))(p, t))
        looped = np.array([float(ccc(a, b)) for a, b in zip(p, t, strict=True)])
    np.testing.assert_allclose(batched, looped, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- DCCA


@pytest.mark.filterwarnings("ignore::ddat_jax.losses.RankDeficientWarning")
@pytest.mark.parametrize(
    "m,da,db,top_k", [(60, 5, 5, None), (60, 6, 4, None), (60, 6, 4, 2), (8, 12, 10, 3)]
)
def test_dcca_matches_numpy_reference(rng, m, da, db, top_k):
    a = rng.normal(size=(m, da))
    b = a[:, : min(da, db)] @ rng.normal(size=(min(da, db), db)) + rng.normal(size=(m, db))
    f = jax.jit(lambda x, y: dcca_loss(x, y, top_k=top_k))
    with jax.enable_x64(True):
        got = float(f(a, b))
    assert got == pytest.approx(-np_dcca_corr(a, b, 1e-3, 1e-3, top_k), rel=1e-10)
    # float32 against the float64 reference
    got32 = f(a.astype(np.float32), b.astype(np.float32))
    assert got32.dtype == jnp.float32
    assert float(got32) == pytest.approx(-np_dcca_corr(a, b, 1e-3, 1e-3, top_k), rel=2e-4)


def test_dcca_one_dimensional_views_equal_abs_pcc(rng):
    x = rng.normal(size=(100, 1))
    y = -0.6 * x + rng.normal(size=(100, 1))
    r = scipy.stats.pearsonr(x[:, 0], y[:, 0]).statistic
    with jax.enable_x64(True):
        no_ridge = float(dcca_loss(x, y, r1=0.0, r2=0.0))
        ridge = float(dcca_loss(x, y, r1=0.1, r2=0.2))
    assert -no_ridge == pytest.approx(abs(r), rel=1e-12)
    vx, vy = np.var(x, ddof=1), np.var(y, ddof=1)
    cov = np.cov(x[:, 0], y[:, 0])[0, 1]
    assert -ridge == pytest.approx(abs(cov) / np.sqrt((vx + 0.1) * (vy + 0.2)), rel=1e-12)


@pytest.mark.filterwarnings("ignore::ddat_jax.losses.RankDeficientWarning")
def test_dcca_check_grads(rng):
    # fewer samples than dimensions: the ridge r * I is a repeated eigenvalue of both
    # auto-covariances, where differentiating eigh directly would give NaN/Inf.
    a, b = rng.normal(size=(6, 9)), rng.normal(size=(6, 7))
    with jax.enable_x64(True):
        top3 = jax.jit(lambda x, y: losses.dcca_loss(x, y, top_k=3))
        check_grads(top3, (a, b), order=1, modes=("rev",))


@pytest.mark.slow
def test_dcca_check_grads_generic_fwd_and_rev(rng):
    a = rng.normal(size=(20, 4))
    b = a[:, :3] + rng.normal(size=(20, 3))
    with jax.enable_x64(True):
        check_grads(jax.jit(losses.dcca_loss), (a, b), order=1, modes=("fwd", "rev"))
        top2 = jax.jit(lambda x, y: losses.dcca_loss(x, y, top_k=2))
        check_grads(top2, (a, b), order=1, modes=("fwd", "rev"))


def test_dcca_repeated_singular_values_have_finite_correct_gradients(rng):
    # Both views have identity sample covariance and b = a Q (Q orthogonal), so every
    # eigenvalue of the auto-covariances and every singular value of T is the same.
    a = orthonormal_view(rng, 20, 4)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    b = a @ q
    with jax.enable_x64(True):
        f = jax.jit(losses.dcca_loss)
        val = float(f(a, b))
        ga, gb = jax.jit(jax.grad(f, argnums=(0, 1)))(a, b)
        assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
        # the nuclear norm is smooth at a full-rank T, so finite differences must agree
        check_grads(f, (a, b), order=1, modes=("rev",))
    g32 = jax.jit(jax.grad(losses.dcca_loss))(a.astype(np.float32), b.astype(np.float32))
    assert val == pytest.approx(-4 / (1 + 1e-3), rel=1e-12)
    assert np.all(np.isfinite(g32))


def test_dcca_differs_from_pytorch_deepcca_eigenvalue_inflation(rng):
    a = rng.normal(size=(50, 3))
    b = a + rng.normal(size=(50, 3))
    with jax.enable_x64(True):
        ours = -float(dcca_loss(a, b))
    ref = np_dcca_corr(a, b, 1e-3, 1e-3)
    # Michaelvll/DeepCCA: sum sqrt(eig(T^T T + r1 I)) -- every term inflated by r1.
    a0, b0 = a - a.mean(0), b - b.mean(0)
    saa = a0.T @ a0 / 49 + 1e-3 * np.eye(3)
    sbb = b0.T @ b0 / 49 + 1e-3 * np.eye(3)
    t = (
        scipy.linalg.fractional_matrix_power(saa, -0.5)
        @ (a0.T @ b0 / 49)
        @ scipy.linalg.fractional_matrix_power(sbb, -0.5)
    )
    torch_style = np.sum(np.sqrt(np.linalg.eigvalsh(t.T @ t + 1e-3 * np.eye(3))))
    assert ours == pytest.approx(ref, rel=1e-10)
    assert torch_style > ours + 1e-4


@pytest.mark.slow  # covered by test_dcca_batch_axes_equal_vmap_and_loop
def test_dcca_vmap_and_jit(rng):
    a = rng.normal(size=(3, 20, 4)).astype(np.float32)
    b = rng.normal(size=(3, 20, 5)).astype(np.float32)
    f = jax.value_and_grad(lambda x, y: dcca_loss(x, y, top_k=2))
    batched, grads = jax.jit(jax.vmap(f))(a, b)
    for i in range(3):
        assert float(batched[i]) == pytest.approx(
            -np_dcca_corr(a[i], b[i], 1e-3, 1e-3, 2), rel=1e-4
        )
    assert np.all(np.isfinite(grads))


def test_dcca_errors():
    with pytest.raises(ValueError, match=r"\[\.\.\., samples, dims\]"):
        dcca_loss(jnp.ones(5), jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="same leading shape"):
        dcca_loss(jnp.ones((5, 2)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="top_k"):
        dcca_loss(jnp.ones((5, 2)), jnp.ones((5, 3)), top_k=3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        dcca_loss(jnp.ones((1, 2)), jnp.ones((1, 3)))


# ----------------------------------------------------------------------------- shape safety


@pytest.mark.parametrize("fn", [losses.ccc, losses.ccc_loss, losses.pcc, losses.pcc_loss])
def test_trap_size_one_reduction_axis_raises_and_suggests_the_time_axis(fn):
    # A flax head gives [batch, time, 1]; the default axis=-1 would reduce the size-1
    # output axis and return a constant with zero gradient.
    p, t = jnp.zeros((4, 50, 1)), jnp.ones((4, 50, 1))
    msg = r"axis=-1 reduces 1 value\(s\).*\(4, 50, 1\).*Did you mean axis=1 \(size 50\)"
    with pytest.raises(ValueError, match=msg):
        fn(p, t)
    with pytest.raises(ValueError, match=msg):
        jax.jit(fn)(p, t)  # caught at trace time
    with pytest.raises(ValueError, match="axis=0"):
        fn(jnp.ones((1, 50)), jnp.ones((1, 50)), axis=0)  # batch of one
    with pytest.raises(ValueError, match="at least 2"):
        fn(jnp.array([0.4]), jnp.array([0.1]))
    assert fn(jnp.ones((1, 50, 1)), jnp.ones((1, 50, 1)), axis=(0, 1)).shape == (1,)


def test_mse_allows_a_size_one_axis():
    p, t = jnp.zeros((2, 5, 1)), jnp.full((2, 5, 1), 2.0)
    np.testing.assert_array_equal(mse(p, t), np.full((2, 5), 4.0))


def test_batch_time_one_head_with_the_time_axis_matches_reference(rng):
    p = rng.normal(size=(3, 40, 1))
    t = 0.5 * p + rng.normal(size=(3, 40, 1))
    with jax.enable_x64(True):
        per_seq = np.asarray(ccc_loss(p, t, axis=1))
        pooled = float(ccc(p, t, axis=(0, 1))[0])
        g = np.asarray(jax.jit(jax.grad(lambda x: jnp.mean(losses.ccc_loss(x, t, axis=1))))(p))
    want = [[1 - np_ccc(p[b, :, 0], t[b, :, 0])] for b in range(3)]
    np.testing.assert_allclose(per_seq, want, rtol=1e-12)
    assert pooled == pytest.approx(np_ccc(p.ravel(), t.ravel()), rel=1e-12)
    assert np.abs(g).min() > 0


@pytest.mark.parametrize(
    "fn", [losses.ccc, losses.ccc_loss, losses.pcc, losses.pcc_loss, losses.mse]
)
def test_trap_mismatched_shapes_raise_instead_of_broadcasting(fn):
    # [1, T, 1] against [1, T] used to broadcast to [1, T, T].
    msg = (
        r"same shape; got predictions \(1, 30, 1\) and targets \(1, 30\).*predictions\[\.\.\., 0\]"
    )
    with pytest.raises(ValueError, match=msg):
        fn(jnp.ones((1, 30, 1)), jnp.ones((1, 30)), axis=1)
    with pytest.raises(ValueError, match=r"targets\[\.\.\., 0\]"):
        fn(jnp.ones((1, 30)), jnp.ones((1, 30, 1)))
    with pytest.raises(ValueError, match=r"where must be broadcastable .* \(2, 5\); got where"):
        fn(jnp.ones((2, 5)), jnp.ones((2, 5)), where=jnp.ones((3, 2, 5), bool))


def test_engine_call_patterns_still_work(rng):
    # ddat_jax.train calls ccc/ccc_loss with axis=(0, 1) and mse with axis=None, both
    # with where=mask[..., None] on [batch, time, size] arrays.
    p = rng.normal(size=(3, 20, 2))
    t = p + rng.normal(size=(3, 20, 2))
    mask = np.arange(20)[None, :] < np.array([20, 14, 5])[:, None]
    with jax.enable_x64(True):
        c = np.asarray(losses.ccc(p, t, axis=(0, 1), where=mask[..., None]))
        lc = float(jnp.mean(losses.ccc_loss(p, t, axis=(0, 1), where=mask[..., None])))
        m = float(losses.mse(p, t, axis=None, where=mask[..., None]))
    want = [np_ccc(p[..., o][mask], t[..., o][mask]) for o in range(2)]
    np.testing.assert_allclose(c, want, rtol=1e-12)
    assert lc == pytest.approx(1 - np.mean(want), rel=1e-12)
    assert m == pytest.approx(np.mean((p - t)[mask] ** 2), rel=1e-12)


# ----------------------------------------------------------------------------- docs, import


def test_docstring_examples_run():
    for name in losses.__all__:
        if name != "RankDeficientWarning":
            assert "Examples:" in getattr(losses, name).__doc__, name
    result = doctest.testmod(losses, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 30


def test_import_is_jax_only():
    code = (
        "import sys, ddat_jax.losses; "
        "print([m for m in ('flax', 'optax', 'scipy', 'pandas', 'ddat_jax.train') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- more properties

_varying = _vec.filter(lambda v: np.std(v) > 0.1)


@settings(max_examples=25, deadline=None)
@given(x=_varying)
def test_property_ccc_of_identical_inputs_is_one(x):
    with jax.enable_x64(True):
        assert float(ccc(x, x)) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(x=_varying, a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_property_ccc_below_one_unless_identity_map(x, a, b):
    assume(abs(a - 1) >= 1e-2 or abs(b) >= 1e-2)
    with jax.enable_x64(True):
        c = float(ccc(x, a * x + b))
    mu, var = x.mean(), x.var()
    want = 2 * a * var / ((1 + a * a) * var + ((1 - a) * mu - b) ** 2)
    assert c < 1.0
    assert c == pytest.approx(want, abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    x=_varying,
    y=_varying,
    a=st.floats(0.1, 10) | st.floats(-10, -0.1),
    b=st.floats(-5, 5),
)
def test_property_pcc_invariant_to_affine_maps(x, y, a, b):
    with jax.enable_x64(True):
        base = float(pcc(x, y))
        mapped = float(pcc(a * x + b, y))
    assert mapped == pytest.approx(np.sign(a) * base, abs=1e-9)
    assert base == pytest.approx(scipy.stats.pearsonr(x, y).statistic, abs=1e-9)


# ----------------------------------------------------------------------------- DCCA: API


def test_dcca_mask_equals_slicing_with_nan_padding(rng):
    a = rng.normal(size=(3, 30, 4))
    b = a[..., :3] + rng.normal(size=(3, 30, 3))
    lengths = [30, 22, 12]
    mask = np.arange(30)[None, :] < np.array(lengths)[:, None]
    a_pad = np.where(mask[..., None], a, np.nan)  # padding holds NaN: it must not leak
    b_pad = np.where(mask[..., None], b, 1e6)
    with jax.enable_x64(True):
        per_seq = np.asarray(dcca_loss(a_pad, b_pad, axis=1, where=mask))
        per_seq_trailing = np.asarray(dcca_loss(a_pad, b_pad, axis=1, where=mask[..., None]))
        pooled = float(dcca_loss(a_pad, b_pad, where=mask, top_k=2))
        ga, gb = jax.grad(losses.dcca_loss, argnums=(0, 1))(a_pad, b_pad, where=mask)
    want = [-np_dcca_corr(a[i, :n], b[i, :n], 1e-3, 1e-3) for i, n in enumerate(lengths)]
    np.testing.assert_allclose(per_seq, want, rtol=1e-10)
    np.testing.assert_array_equal(per_seq_trailing, per_seq)
    assert pooled == pytest.approx(-np_dcca_corr(a[mask], b[mask], 1e-3, 1e-3, 2), rel=1e-10)
    for g in (np.asarray(ga), np.asarray(gb)):
        assert np.all(np.isfinite(g))
        assert np.all(g[~mask] == 0)


def test_dcca_batch_axes_equal_vmap_and_loop(rng):
    a = rng.normal(size=(2, 3, 20, 4)).astype(np.float32)
    b = (a[..., :3] + rng.normal(size=(2, 3, 20, 3))).astype(np.float32)
    got = np.asarray(losses.dcca_loss(a, b, axis=2, top_k=2))
    assert got.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(losses.dcca_loss(a, b, axis=-2, top_k=2)), got)
    vm = jax.jit(jax.vmap(jax.vmap(functools.partial(losses.dcca_loss, top_k=2))))(a, b)
    np.testing.assert_allclose(np.asarray(vm), got, rtol=1e-5)
    loop = [[-np_dcca_corr(a[i, j], b[i, j], 1e-3, 1e-3, 2) for j in range(3)] for i in range(2)]
    np.testing.assert_allclose(got, loop, rtol=1e-4)
    # the batch axes may be anywhere: time-major [time, batch, batch, dims] with axis=0
    tm = losses.dcca_loss(a.transpose(2, 0, 1, 3), b.transpose(2, 0, 1, 3), axis=0, top_k=2)
    np.testing.assert_allclose(np.asarray(tm), got, rtol=1e-6)


def test_dcca_top_k_under_jit_without_ceremony(rng):
    a = rng.normal(size=(40, 5))
    b = a[:, :4] + rng.normal(size=(40, 4))
    want = {k: -np_dcca_corr(a, b, 1e-3, 1e-3, k) for k in (1, 2, 3)}
    with jax.enable_x64(True):
        traced = jax.jit(losses.dcca_loss)
        sizes = []
        for k in (1, 2, 3):  # traced top_k: one compilation for every k
            assert float(traced(a, b, top_k=k)) == pytest.approx(want[k], rel=1e-10)
            sizes.append(traced._cache_size())
        assert sizes[0] == sizes[-1]
        closure = jax.jit(lambda x, y: losses.dcca_loss(x, y, top_k=2))
        static = jax.jit(losses.dcca_loss, static_argnames="top_k")
        assert float(closure(a, b)) == pytest.approx(want[2], rel=1e-10)
        assert float(static(a, b, top_k=2)) == pytest.approx(want[2], rel=1e-10)
        # the ridge terms and the floor may be traced too
        ridged = float(traced(a, b, r1=0.1, r2=0.2, eps=1e-6))
    assert ridged == pytest.approx(-np_dcca_corr(a, b, 0.1, 0.2), rel=1e-10)


def test_dcca_rank_deficiency_warns_once_and_the_correlation_is_spurious(rng, monkeypatch):
    monkeypatch.setattr(losses, "_RANK_WARNED", set())
    a, b = rng.normal(size=(9, 8)), rng.normal(size=(9, 8))  # independent noise, m - 1 = d
    with pytest.warns(losses.RankDeficientWarning, match=r"9 samples .* 8 and 8 dims"):
        corr = -float(losses.dcca_loss(a, b, r1=1e-9, r2=1e-9))
    assert corr == pytest.approx(8.0, rel=1e-4)  # "perfect" correlation of noise
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses.dcca_loss(a, b)  # the same shape again: silent
        losses.dcca_loss(rng.normal(size=(10, 8)), rng.normal(size=(10, 8)))  # m - 1 > d
    with pytest.warns(losses.RankDeficientWarning, match="32 samples .* 128 and 128 dims"):
        jax.jit(losses.dcca_loss)(rng.normal(size=(32, 128)), rng.normal(size=(32, 128)))


def test_dcca_argument_errors():
    x = jnp.ones((2, 6, 3))
    with pytest.raises(ValueError, match="feature"):
        losses.dcca_loss(x, x, axis=(1, 2))
    with pytest.raises(ValueError, match=r"leading shape \(2, 6\); got where \(3,\)"):
        losses.dcca_loss(x, x, where=jnp.ones(3, bool))
    with pytest.raises(ValueError, match="integer"):
        losses.dcca_loss(x, x, top_k=1.5)
    with pytest.raises(ValueError, match="top_k"):
        losses.dcca_loss(x, x, top_k=0)
    with pytest.raises(ValueError, match="at least 2 samples per problem"):
        losses.dcca_loss(x[:1], x[:1], axis=0)


# ----------------------------------------------------------------------------- DCCA: degenerate


_dcca_value_and_grads = jax.jit(jax.value_and_grad(losses.dcca_loss, argnums=(0, 1)))
_DEGENERATE = ["identical", "dead_unit", "constant_view", "all_masked", "one_valid"]


def _degenerate_batch(rng):
    """The degenerate cases stacked on a batch axis: [case, samples, dims] and a mask."""
    a = rng.normal(size=(len(_DEGENERATE), 20, 3))
    b = a + rng.normal(size=a.shape)
    where = np.ones((len(_DEGENERATE), 20), bool)
    b[0] = a[0]  # identical views
    a[1, :, 1] = 0.7  # a dead unit
    a[2] = 0.3  # a constant view
    where[3] = False  # fully masked
    where[4, 1:] = False  # a single valid sample
    return a, b, where


def test_dcca_degenerate_inputs_are_finite_and_match_references(rng):
    a, b, where = _degenerate_batch(rng)
    # a constant view, no valid sample or one valid sample: nothing correlates
    want = [-np_dcca_corr(a[0], b[0], 1e-3, 1e-3), -np_dcca_corr(a[1], b[1], 1e-3, 1e-3), 0, 0, 0]

    def total(x, y):
        per_case = losses.dcca_loss(x, y, axis=1, where=where)
        return jnp.sum(per_case * np.arange(1, 6)), per_case

    f = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))
    with jax.enable_x64(True):
        (_, per_case), grads = f(a, b)
    per_case = np.asarray(per_case)
    np.testing.assert_allclose(per_case, want, rtol=1e-10, atol=1e-12)
    assert all(np.all(np.isfinite(g)) for g in grads)
    (_, per_case32), grads32 = f(a.astype(np.float32), b.astype(np.float32))
    per_case32 = np.asarray(per_case32)
    np.testing.assert_allclose(per_case32, want, rtol=1e-4, atol=1e-5)
    assert all(np.all(np.isfinite(g)) for g in grads32)
    assert per_case.dtype == np.float64 and per_case32.dtype == np.float32


def test_dcca_degenerate_gradients_match_finite_differences(rng):
    # Identical views and a dead unit are smooth points for top_k <= rank(T): finite
    # differences must agree. (A dead unit makes T rank-deficient, so the sum over *all*
    # singular values has a kink at sigma = 0; there the gradient is a finite subgradient,
    # checked in the test above.)
    a, b, _ = _degenerate_batch(rng)
    with jax.enable_x64(True):
        f = jax.jit(lambda x, y: losses.dcca_loss(x, y, axis=1, top_k=2))
        check_grads(f, (a[:2], b[:2]), order=1, modes=("rev",))


# ----------------------------------------------------------------------------- DCCA: properties

_view_a = hnp.arrays(np.float64, (12, 3), elements=_floats)
_view_b = hnp.arrays(np.float64, (12, 2), elements=_floats)


@settings(max_examples=20, deadline=None)
@given(a=_view_a, b=_view_b, k=st.integers(1, 2))
def test_property_dcca_correlation_in_0_k_and_finite(a, b, k):
    # includes degenerate draws (constant columns, all zeros, huge values)
    with jax.enable_x64(True):
        val, (ga, gb) = _dcca_value_and_grads(a, b, top_k=k)  # top_k traced: one compilation
    corr = -float(val)
    assert -1e-12 <= corr <= k
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.2, 5.0), shift=st.floats(-3, 3))
def test_property_dcca_invariant_to_invertible_linear_maps(seed, scale, shift):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(40, 3))
    b = a[:, :2] @ rng.normal(size=(2, 2)) + 0.5 * rng.normal(size=(40, 2))

    def well_conditioned(d):
        q1, _ = np.linalg.qr(rng.normal(size=(d, d)))
        q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
        return scale * q1 @ np.diag(rng.uniform(0.5, 2.0, d)) @ q2

    with jax.enable_x64(True):
        base = float(dcca_loss(a, b, r1=1e-12, r2=1e-12))
        mapped = float(
            dcca_loss(
                a @ well_conditioned(3) + shift, b @ well_conditioned(2) - shift, r1=1e-12, r2=1e-12
            )
        )
    assert mapped == pytest.approx(base, rel=1e-7)
    assert base == pytest.approx(-np_dcca_corr(a, b, 0.0, 0.0), rel=1e-8)
