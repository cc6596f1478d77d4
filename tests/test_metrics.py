"""Tests of ddat_jax.metrics against formulas written here and scipy."""

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddat_jax import metrics


def ref_ccc(p, t, ddof_var=0):
    p = np.asarray(p, np.float64)
    t = np.asarray(t, np.float64)
    n = p.size
    mp, mt = p.sum() / n, t.sum() / n
    vp = ((p - mp) ** 2).sum() / (n - ddof_var)
    vt = ((t - mt) ** 2).sum() / (n - ddof_var)
    cov = ((p - mp) * (t - mt)).sum() / n
    return 2 * cov / (vp + vt + (mp - mt) ** 2)


@pytest.fixture
def recordings():
    rng = np.random.default_rng(1)
    t = [np.cumsum(rng.normal(size=n)) * 0.02 + off for n, off in ((300, 0.1), (200, -0.2))]
    t.append(np.sin(np.linspace(0, 9, 250)) * 0.3)
    p = [0.7 * x + 0.1 * rng.normal(size=x.size) + 0.05 for x in t]
    return p, t


def test_ccc_concat_is_avec2016_default(recordings):
    p, t = recordings
    want = ref_ccc(np.concatenate(p), np.concatenate(t))
    assert metrics.ccc(p, t) == pytest.approx(want, rel=1e-12)
    assert metrics.ccc(np.concatenate(p), np.concatenate(t)) == pytest.approx(want, rel=1e-12)


def test_ccc_mean_of_recordings_is_avec2018(recordings):
    p, t = recordings
    per = [ref_ccc(a, b) for a, b in zip(p, t, strict=True)]
    assert metrics.ccc(p, t, aggregate="mean") == pytest.approx(np.mean(per), rel=1e-12)
    np.testing.assert_allclose(metrics.ccc(p, t, aggregate="none"), per, rtol=1e-12)


def test_ccc_matlab_compatible_uses_n_minus_1_variances(recordings):
    p, t = recordings
    got = metrics.ccc(p, t, matlab_compatible=True)
    want = ref_ccc(np.concatenate(p), np.concatenate(t), ddof_var=1)
    assert got == pytest.approx(want, rel=1e-12)
    assert got < metrics.ccc(p, t)  # larger denominator


def test_ccc_matlab_compatible_nan_handling_is_per_variable():
    rng = np.random.default_rng(2)
    t = rng.normal(size=40)
    p = t + rng.normal(size=40)
    p[[3, 7]] = np.nan
    t[[20]] = np.nan
    # CCC_calc.m: nanmean / nanvar per variable, nanmean of the products
    mp, mt = np.nanmean(p), np.nanmean(t)
    vp, vt = np.nanvar(p, ddof=1), np.nanvar(t, ddof=1)
    cov = np.nanmean((p - mp) * (t - mt))
    want = 2 * cov / (vp + vt + (mp - mt) ** 2)
    got = metrics.ccc(p, t, matlab_compatible=True, ignore_nan=True)
    assert got == pytest.approx(want, rel=1e-12)


def test_ignore_nan_drops_pairs_and_default_propagates():
    rng = np.random.default_rng(3)
    t = rng.normal(size=30)
    p = t + rng.normal(size=30)
    p[5] = np.nan
    t[9] = np.nan
    keep = ~(np.isnan(p) | np.isnan(t))
    for fn, ref in (
        (metrics.ccc, ref_ccc),
        (metrics.pcc, lambda a, b: scipy.stats.pearsonr(a, b).statistic),
        (metrics.rmse, lambda a, b: np.sqrt(np.mean((a - b) ** 2))),
    ):
        assert np.isnan(fn(p, t))
        assert fn(p, t, ignore_nan=True) == pytest.approx(ref(p[keep], t[keep]), rel=1e-12)
    assert np.isnan(metrics.binary_accuracy(p, t))


def test_mean_aggregation_nan_recording():
    t = [np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.5, 0.5])]
    p = [np.array([0.1, 0.3, 0.2]), np.array([0.5, 0.5, 0.5])]  # 2nd: 0/0
    assert np.isnan(metrics.ccc(p, t, aggregate="mean"))
    assert metrics.ccc(p, t, aggregate="mean", ignore_nan=True) == pytest.approx(
        ref_ccc(p[0], t[0])
    )


def test_ccc_edge_cases():
    t = np.linspace(-0.5, 0.5, 11)
    assert metrics.ccc(np.full(11, 0.3), t) == 0.0  # constant prediction: exactly 0
    assert metrics.ccc(t, t) == pytest.approx(1.0, abs=1e-15)
    assert np.isnan(metrics.ccc(np.full(5, 0.2), np.full(5, 0.2)))  # 0 / 0
    assert metrics.ccc(np.full(5, 0.2), np.full(5, -0.1)) == 0.0
    assert np.isnan(metrics.ccc(np.array([]), np.array([])))
    assert metrics.ccc([1.0], [2.0]) == 0.0  # length 1 (flat list of scalars)
    assert metrics.ccc(np.array([1.0]), np.array([2.0]), matlab_compatible=True) == 0.0
    assert np.isnan(metrics.ccc(np.array([np.nan, np.nan]), np.ones(2), ignore_nan=True))


def test_pcc_matches_scipy_and_constant_is_nan(recordings):
    p, t = recordings
    want = scipy.stats.pearsonr(np.concatenate(p), np.concatenate(t)).statistic
    assert metrics.pcc(p, t) == pytest.approx(want, rel=1e-12)
    per = [scipy.stats.pearsonr(a, b).statistic for a, b in zip(p, t, strict=True)]
    assert metrics.pcc(p, t, aggregate="mean") == pytest.approx(np.mean(per), rel=1e-12)
    assert np.isnan(metrics.pcc(np.ones(4), np.arange(4.0)))


def test_rmse(recordings):
    p, t = recordings
    cp, ct = np.concatenate(p), np.concatenate(t)
    assert metrics.rmse(p, t) == pytest.approx(np.sqrt(np.mean((cp - ct) ** 2)), rel=1e-12)
    per = [np.sqrt(np.mean((a - b) ** 2)) for a, b in zip(p, t, strict=True)]
    assert metrics.rmse(p, t, aggregate="mean") == pytest.approx(np.mean(per), rel=1e-12)


def test_binary_accuracy_sign_classes():
    # classes: negative [-1, 0], positive (0, 1]; 0 is negative
    p = np.array([0.1, -0.2, 0.0, 0.5, -0.4])
    t = np.array([0.2, 0.0, -0.1, -0.3, 0.6])
    assert metrics.binary_accuracy(p, t) == pytest.approx(3 / 5)
    per = metrics.binary_accuracy([p[:2], p[2:]], [t[:2], t[2:]], aggregate="none")
    np.testing.assert_allclose(per, [1.0, 1 / 3])


def test_accuracy_and_macro_f1_by_hand():
    t = np.array([0, 0, 1, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 2, 2])
    # class 0: tp1 fp0 fn1 -> 2/3; class 1: tp2 fp1 fn1 -> 4/6; class 2: tp1 fp1 fn0 -> 2/3
    assert metrics.macro_f1(p, t) == pytest.approx(2 / 3)
    assert metrics.accuracy(p, t) == pytest.approx(4 / 6)
    scores = np.eye(3)[p] * 2.0 - 0.5  # logits: argmax gives p
    assert metrics.accuracy(scores, t) == pytest.approx(4 / 6)
    # explicit labels with an absent class score 0 for it
    assert metrics.macro_f1(p, t, labels=[0, 1, 2, 3]) == pytest.approx(0.5)
    # per-recording lists are concatenated
    assert metrics.macro_f1([p[:3], p[3:]], [t[:3], t[3:]]) == pytest.approx(2 / 3)
    # predicted-only class counts (sklearn's union of labels)
    assert metrics.macro_f1(np.array([0, 1]), np.array([0, 0])) == pytest.approx(1 / 3)


def test_input_errors():
    with pytest.raises(ValueError, match="recording 1: predictions have shape"):
        metrics.ccc([np.ones(3), np.ones(4)], [np.ones(3), np.ones(5)])
    with pytest.raises(ValueError, match="both be flat arrays or both be lists"):
        metrics.ccc([np.ones(3)], np.ones(3))
    with pytest.raises(ValueError, match="2 prediction recordings but 1"):
        metrics.ccc([np.ones(3), np.ones(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="unknown aggregate 'avg'; valid: concat, mean, none"):
        metrics.ccc(np.ones(3), np.ones(3), aggregate="avg")
    with pytest.raises(ValueError, match="recording 0: 2 predicted labels for 3 targets"):
        metrics.accuracy(np.array([0, 1]), np.array([0, 1, 1]))


_vec = hnp.arrays(np.float64, (12,), elements=st.floats(-5, 5, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(p=_vec, t=_vec)
def test_property_ccc_bounded_symmetric(p, t):
    c = metrics.ccc(p, t)
    if np.isnan(c):  # only the 0/0 case
        assert np.ptp(p) == 0 and np.ptp(t) == 0 and p[0] == t[0]
        return
    assert -1 - 1e-12 <= c <= 1 + 1e-12
    assert c == pytest.approx(metrics.ccc(t, p), abs=1e-12)
    cm = metrics.ccc(p, t, matlab_compatible=True)
    assert abs(cm) <= abs(c) + 1e-12  # N-1 variances only shrink |CCC|
