"""Tests for ddat_jax.fusion against references written here.

References: the normal equations with an explicit column of ones (OLS), and Weka's
``LinearRegression.doRegression`` ridge (standardised attributes, unpenalised intercept)
written out with ``np.linalg.solve``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddat_jax.fusion import LinearFusion, fit_dynamic_tuning, fit_linear_fusion

LENGTHS = (400, 250, 333)


def make_streams(rng, k, lengths=LENGTHS):
    return [[rng.standard_normal(n) for n in lengths] for _ in range(k)]


def combine(intercept, coefs, streams):
    n_rec = len(streams[0])
    return [
        intercept + sum(c * s[r] for c, s in zip(coefs, streams, strict=True)) for r in range(n_rec)
    ]


def ref_ols(streams, gold):
    x = np.column_stack([np.concatenate(s) for s in streams])
    x1 = np.column_stack([np.ones(x.shape[0]), x])
    y = np.concatenate(gold)
    beta = np.linalg.solve(x1.T @ x1, x1.T @ y)
    return beta[0], beta[1:]


def ref_weka_ridge(streams, gold, ridge):
    x = np.column_stack([np.concatenate(s) for s in streams])
    y = np.concatenate(gold)
    m, sd = x.mean(axis=0), x.std(axis=0, ddof=1)
    z = (x - m) / sd
    b = np.linalg.solve(z.T @ z + ridge * np.eye(x.shape[1]), z.T @ y)
    coefs = b / sd
    return y.mean() - coefs @ m, coefs


# ----------------------------------------------------------------------------- late fusion


@pytest.mark.parametrize("ridge", [0.0, 1e-8])
def test_recovers_known_coefficients_noise_free(ridge):
    rng = np.random.default_rng(0)
    streams = make_streams(rng, 3)
    gold = combine(0.7, [0.5, -1.25, 2.0], streams)
    model = fit_linear_fusion(
        {"audio": streams[0], "video": streams[1], "geo": streams[2]}, gold, ridge=ridge
    )
    assert model.names == ("audio", "video", "geo")
    assert model.intercept == pytest.approx(0.7, abs=1e-6)
    np.testing.assert_allclose(model.coefs, [0.5, -1.25, 2.0], atol=1e-6)
    for got, want in zip(model.predict([streams[0], streams[1], streams[2]]), gold, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_ols_matches_normal_equations_with_noise():
    rng = np.random.default_rng(1)
    streams = make_streams(rng, 4)
    gold = [
        g + 0.3 * rng.standard_normal(g.size) for g in combine(-0.2, [1, 0.5, 0, -0.3], streams)
    ]
    model = fit_linear_fusion(streams, gold, ridge=0.0)
    b0, b = ref_ols(streams, gold)
    assert model.intercept == pytest.approx(b0, abs=1e-10)
    np.testing.assert_allclose(model.coefs, b, atol=1e-10)
    assert model.names == ("stream0", "stream1", "stream2", "stream3")


@pytest.mark.parametrize("ridge", [1e-8, 10.0, 1000.0])
def test_ridge_matches_weka_formula(ridge):
    rng = np.random.default_rng(2)
    streams = make_streams(rng, 3)
    streams[1] = [3.0 * s + 5.0 for s in streams[1]]  # unequal scales: standardising matters
    gold = [g + rng.standard_normal(g.size) for g in combine(1.0, [0.4, 0.2, -0.6], streams)]
    model = fit_linear_fusion(streams, gold, ridge=ridge)
    b0, b = ref_weka_ridge(streams, gold, ridge)
    assert model.intercept == pytest.approx(b0, abs=1e-9)
    np.testing.assert_allclose(model.coefs, b, atol=1e-9)


def test_ridge_without_standardisation():
    rng = np.random.default_rng(3)
    streams = make_streams(rng, 2)
    gold = [g + rng.standard_normal(g.size) for g in combine(0.0, [1.0, 2.0], streams)]
    lam = 50.0
    model = fit_linear_fusion(streams, gold, ridge=lam, standardize=False)
    x = np.column_stack([np.concatenate(s) for s in streams])
    y = np.concatenate(gold)
    xc = x - x.mean(axis=0)
    b = np.linalg.solve(xc.T @ xc + lam * np.eye(2), xc.T @ y)
    np.testing.assert_allclose(model.coefs, b, atol=1e-10)
    assert model.intercept == pytest.approx(y.mean() - b @ x.mean(axis=0), abs=1e-10)


def test_constant_stream_gets_zero_coefficient():
    rng = np.random.default_rng(4)
    streams = make_streams(rng, 1) + [[np.full(n, 2.0) for n in LENGTHS]]
    gold = combine(0.5, [1.5], streams[:1])
    for ridge in (0.0, 1e-8):
        model = fit_linear_fusion(streams, gold, ridge=ridge)
        assert np.all(np.isfinite(model.coefs))
        assert model.coefs[1] == pytest.approx(0.0, abs=1e-8)
        assert model.coefs[0] == pytest.approx(1.5, abs=1e-6)
        assert model.intercept == pytest.approx(0.5, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 4))
def test_ols_residuals_orthogonal_to_streams(seed, k):
    rng = np.random.default_rng(seed)
    lengths = tuple(int(n) for n in rng.integers(5, 60, size=rng.integers(1, 4)))
    streams = make_streams(rng, k, lengths)
    gold = [rng.standard_normal(n) for n in lengths]
    model = fit_linear_fusion(streams, gold, ridge=0.0)
    resid = np.concatenate(gold) - np.concatenate(model.predict(streams))
    scale = np.abs(np.concatenate(gold)).sum() + 1.0
    assert abs(resid.sum()) < 1e-8 * scale
    for s in streams:
        assert abs(resid @ np.concatenate(s)) < 1e-8 * scale * (np.abs(np.concatenate(s)).max() + 1)


def test_predict_accepts_dict_in_any_order_and_json_roundtrip():
    rng = np.random.default_rng(5)
    streams = make_streams(rng, 2)
    gold = combine(0.1, [0.9, -0.4], streams)
    model = fit_linear_fusion({"a": streams[0], "b": streams[1]}, gold)
    test = make_streams(rng, 2, (50, 70))
    want = combine(model.intercept, model.coefs, test)
    got = model.predict({"b": test[1], "a": test[0]})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-12)
    again = LinearFusion.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    with pytest.raises(ValueError, match="unknown"):
        LinearFusion.from_dict({**model.to_dict(), "x": 1})


# ----------------------------------------------------------------------------- dynamic tuning


def test_dynamic_tuning_scalar_difficulty():
    rng = np.random.default_rng(6)
    pred = [rng.standard_normal(n) for n in LENGTHS]
    diff = [rng.uniform(0, 1, n) for n in LENGTHS]
    gold = [0.2 + 1.3 * p - 0.8 * d for p, d in zip(pred, diff, strict=True)]
    model = fit_dynamic_tuning(pred, diff, gold)
    assert model.names == ("pred", "difficulty")
    assert model.intercept == pytest.approx(0.2, abs=1e-6)
    assert model.coef("pred") == pytest.approx(1.3, abs=1e-6)
    assert model.coef("difficulty") == pytest.approx(-0.8, abs=1e-6)
    out = model.predict({"pred": pred, "difficulty": diff})
    for o, g in zip(out, gold, strict=True):
        np.testing.assert_allclose(o, g, atol=1e-6)


def test_dynamic_tuning_vector_difficulty():
    rng = np.random.default_rng(7)
    r = 4
    pred = [rng.standard_normal(n) for n in LENGTHS]
    diff = [rng.standard_normal((n, r)) for n in LENGTHS]
    gamma_d = np.array([0.1, -0.2, 0.3, 0.05])
    gold = [-1.0 + 0.7 * p + d @ gamma_d for p, d in zip(pred, diff, strict=True)]
    model = fit_dynamic_tuning(pred, diff, gold, ridge=0.0)
    assert model.widths == (1, r)
    np.testing.assert_allclose(model.coef("difficulty"), gamma_d, atol=1e-10)
    assert model.coef("pred") == pytest.approx(0.7, abs=1e-10)
    assert model.intercept == pytest.approx(-1.0, abs=1e-10)
    with pytest.raises(ValueError, match=r"difficulty.*\[T\].*expected \[T, 4\]"):
        model.predict({"pred": pred, "difficulty": [d[:, 0] for d in diff]})
    with pytest.raises(ValueError, match="unknown stream"):
        model.coef("nope")


def test_dynamic_tuning_matches_ols_reference_with_noise():
    rng = np.random.default_rng(8)
    pred = [rng.standard_normal(n) for n in LENGTHS]
    diff = [np.abs(rng.standard_normal(n)) for n in LENGTHS]
    gold = [
        0.5 * p + 0.2 * d + 0.4 * rng.standard_normal(p.size)
        for p, d in zip(pred, diff, strict=True)
    ]
    model = fit_dynamic_tuning(pred, diff, gold, ridge=0.0)
    b0, b = ref_ols([pred, diff], gold)
    assert model.intercept == pytest.approx(b0, abs=1e-10)
    np.testing.assert_allclose(model.coefs, b, atol=1e-10)


# ----------------------------------------------------------------------------- errors


def test_shape_errors():
    rng = np.random.default_rng(9)
    a = [rng.standard_normal(n) for n in (10, 12)]
    gold = [rng.standard_normal(n) for n in (10, 12)]
    with pytest.raises(ValueError, match=r"recording 1: stream 'b' has 11 frames but gold has 12"):
        fit_linear_fusion({"a": a, "b": [np.zeros(10), np.zeros(11)]}, gold)
    with pytest.raises(ValueError, match="stream 'b' has 1 recordings but stream 'a' has 2"):
        fit_linear_fusion({"a": a, "b": [np.zeros(10)]}, gold)
    with pytest.raises(ValueError, match="gold has 1 recordings but the streams have 2"):
        fit_linear_fusion({"a": a}, gold[:1])
    with pytest.raises(ValueError, match=r"gold recordings must be 1-D"):
        fit_linear_fusion({"a": a}, [np.zeros((10, 2)), np.zeros((12, 2))])
    with pytest.raises(ValueError, match=r"stream 'a'\[1\] contains NaN"):
        fit_linear_fusion({"a": [a[0], np.full(12, np.nan)]}, gold)
    with pytest.raises(ValueError, match=r"stream 'a'\[0\] must be \[T\] or \[T, k\]"):
        fit_linear_fusion({"a": [np.zeros((10, 1, 1)), a[1]]}, gold)
    with pytest.raises(ValueError, match="list of per-recording arrays"):
        fit_linear_fusion({"a": np.zeros(10)}, gold)
    with pytest.raises(ValueError, match="no streams"):
        fit_linear_fusion({}, gold)
    with pytest.raises(ValueError, match="ridge"):
        fit_linear_fusion({"a": a}, gold, ridge=-1.0)
    with pytest.raises(ValueError, match=r"pred recordings must be 1-D"):
        fit_dynamic_tuning([np.zeros((10, 2))], [np.zeros(10)], [np.zeros(10)])
    model = fit_linear_fusion({"a": a}, gold)
    with pytest.raises(ValueError, match=r"streams are named \['b'\]; expected \['a'\]"):
        model.predict({"b": a})
    with pytest.raises(ValueError, match="got 2 streams; expected 1"):
        model.predict([a, a])
    with pytest.raises(ValueError, match=r"stream 'a'\[1\] has shape"):
        fit_linear_fusion({"a": [np.zeros((10, 2)), np.zeros((12, 3))]}, gold)
