"""Tests of ddat_jax.stats against hand computations and brute-force enumeration."""

import itertools

import numpy as np
import pytest
import scipy.stats

from ddat_jax import stats


def ref_ccc(p, t):
    p = np.concatenate(p) if isinstance(p, list) else p
    t = np.concatenate(t) if isinstance(t, list) else t
    mp, mt = p.mean(), t.mean()
    cov = np.mean((p - mp) * (t - mt))
    return 2 * cov / (np.var(p) + np.var(t) + (mp - mt) ** 2)


def make_systems(r=7, seed=0, frames=(120, 90, 150)):
    rng = np.random.default_rng(seed)
    t, a, b = [], [], []
    for i in range(r):
        n = frames[i % len(frames)]
        x = np.cumsum(rng.normal(size=n)) * 0.05
        t.append(x)
        a.append(x + 0.3 * rng.normal(size=n))
        b.append(0.8 * x + 0.5 * rng.normal(size=n) + 0.1)
    return a, b, t


# ----------------------------------------------------------------------------- Fisher z


def test_fisher_z_matches_hand_computation():
    c_a, c_b, n_a, n_b = 0.683, 0.652, 67509, 67509
    z = (0.5 * np.log((1 + c_a) / (1 - c_a)) - 0.5 * np.log((1 + c_b) / (1 - c_b))) / np.sqrt(
        1 / (n_a - 3) + 1 / (n_b - 3)
    )
    res = stats.fisher_z_test(c_a, c_b, n_a, n_b)
    assert res.z == pytest.approx(z, rel=1e-12)
    # 1 - cdf(z) underflows to 0 at this frame-level N; cdf(-z) is the same tail, exact
    assert res.p_value == pytest.approx(scipy.stats.norm.cdf(-z), rel=1e-9)
    assert 0 < res.p_value < 1e-20
    assert isinstance(res.z, float)
    small = stats.fisher_z_test(c_a, c_b, 300, 250)
    z_small = (np.arctanh(c_a) - np.arctanh(c_b)) / np.sqrt(1 / 297 + 1 / 247)
    assert small.p_value == pytest.approx(1 - scipy.stats.norm.cdf(z_small), rel=1e-9)


def test_fisher_z_small_sample_and_vectorised():
    res = stats.fisher_z_test(np.array([0.5, 0.4]), 0.3, np.array([20, 50]), 30)
    z = (np.arctanh([0.5, 0.4]) - np.arctanh(0.3)) / np.sqrt(1 / np.array([17, 47]) + 1 / 27)
    np.testing.assert_allclose(res.z, z, rtol=1e-12)
    np.testing.assert_allclose(res.p_value, scipy.stats.norm.sf(z), rtol=1e-12)
    # one-tailed for A > B: swapping the systems gives 1 - p
    swapped = stats.fisher_z_test(0.3, 0.5, 30, 20)
    assert swapped.p_value == pytest.approx(1 - res.p_value[0], rel=1e-12)


def test_fisher_z_edge_cases_and_errors():
    perfect = stats.fisher_z_test(1.0, 0.5, 100, 100)
    assert np.isfinite(perfect.z) and perfect.p_value < 1e-10
    both = stats.fisher_z_test(1.0, 1.0, 100, 100)
    assert both.z == 0.0 and both.p_value == 0.5
    with pytest.raises(ValueError, match="sample sizes > 3"):
        stats.fisher_z_test(0.5, 0.4, 3, 100)
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        stats.fisher_z_test(1.2, 0.4, 30, 100)


# ----------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("metric", ["ccc", "pcc", "rmse", "binary_accuracy"])
def test_resample_statistic_matches_concatenation(metric):
    # The pooled sufficient statistics of a resample (with repeats) must equal the
    # metric computed directly on the concatenated resampled recordings.
    a, _, t = make_systems()
    rows = np.array([[0, 0, 3, 5, 6, 6, 2], [1, 4, 4, 4, 0, 2, 3]])
    table, r = stats._table(a, a, t, ignore_nan=False)
    got = stats._make_statistic(table, metric, "concat")(rows)
    refs = {
        "ccc": ref_ccc,
        "pcc": lambda p, q: scipy.stats.pearsonr(p, q).statistic,
        "rmse": lambda p, q: np.sqrt(np.mean((p - q) ** 2)),
        "binary_accuracy": lambda p, q: np.mean((p > 0) == (q > 0)),
    }
    for k, idx in enumerate(rows):
        p = np.concatenate([a[i] for i in idx])
        q = np.concatenate([t[i] for i in idx])
        assert got[k] == pytest.approx(refs[metric](p, q), rel=1e-11)


def test_bootstrap_is_seeded_and_centred_on_observed():
    a, b, t = make_systems()
    r1 = stats.paired_bootstrap(a, b, t, n_resamples=500, seed=3)
    r2 = stats.paired_bootstrap(a, b, t, n_resamples=500, seed=3)
    r3 = stats.paired_bootstrap(a, b, t, n_resamples=500, seed=4)
    np.testing.assert_array_equal(r1.bootstrap_distribution, r2.bootstrap_distribution)
    assert r1.confidence_interval == r2.confidence_interval
    assert not np.array_equal(r1.bootstrap_distribution, r3.bootstrap_distribution)
    assert r1.difference == pytest.approx(ref_ccc(a, t) - ref_ccc(b, t), rel=1e-12)
    low, high = r1.confidence_interval
    assert 0 < low < r1.difference < high  # A is clearly better here
    assert r1.n_recordings == 7
    assert r1.bootstrap_distribution.shape == (500,)
    # percentile interval == quantiles of the bootstrap distribution
    q = np.quantile(r1.bootstrap_distribution, [0.025, 0.975])
    np.testing.assert_allclose(r1.confidence_interval, q, rtol=1e-10)


def test_bootstrap_other_methods_and_mean_aggregate():
    a, b, t = make_systems()
    res = stats.paired_bootstrap(a, b, t, aggregate="mean", method="BCa", n_resamples=300)
    per_a = [ref_ccc(x, y) for x, y in zip(a, t, strict=True)]
    per_b = [ref_ccc(x, y) for x, y in zip(b, t, strict=True)]
    assert res.difference == pytest.approx(np.mean(per_a) - np.mean(per_b), rel=1e-12)
    assert res.confidence_interval[0] < res.difference < res.confidence_interval[1]


# ----------------------------------------------------------------------------- permutation


def brute_force_swaps(a, b, t, value):
    r = len(t)
    out = []
    for swap in itertools.product([False, True], repeat=r):
        aa = [b[i] if s else a[i] for i, s in enumerate(swap)]
        bb = [a[i] if s else b[i] for i, s in enumerate(swap)]
        out.append(value(aa, t) - value(bb, t))
    return np.array(out)


def test_permutation_exact_matches_brute_force_concat():
    a, b, t = make_systems(r=6)
    res = stats.paired_permutation_test(a, b, t)
    null = brute_force_swaps(a, b, t, ref_ccc)
    obs = ref_ccc(a, t) - ref_ccc(b, t)
    assert res.exact and res.null_distribution.size == 2**6
    assert res.difference == pytest.approx(obs, rel=1e-12)
    np.testing.assert_allclose(np.sort(res.null_distribution), np.sort(null), rtol=1e-10)
    assert res.p_value == pytest.approx(np.mean(null >= obs - 1e-12))
    assert res.p_value == pytest.approx(1 / 64)  # the smallest attainable value


def test_permutation_mean_aggregate_is_sign_flip_of_differences():
    a, b, t = make_systems(r=6, seed=5)
    # make the systems close so the p-value is not at its floor
    b = [0.5 * (x + y) for x, y in zip(a, b, strict=True)]
    d = np.array([ref_ccc(x, y) - ref_ccc(z, y) for x, z, y in zip(a, b, t, strict=True)])
    flips = np.array(list(itertools.product([1, -1], repeat=6)))
    null = (flips * d).mean(axis=1)
    res = stats.paired_permutation_test(a, b, t, aggregate="mean", alternative="two-sided")
    want = np.mean(np.abs(null) >= abs(d.mean()) - 1e-12)
    assert res.difference == pytest.approx(d.mean(), rel=1e-12)
    assert res.p_value == pytest.approx(want)


def test_permutation_rmse_lower_is_better_and_seeded_random_mode():
    a, b, t = make_systems(r=12)
    res = stats.paired_permutation_test(a, b, t, metric="rmse", alternative="less")
    assert res.difference < 0 and res.p_value == pytest.approx(1 / 2**12)
    r1 = stats.paired_permutation_test(a, b, t, n_resamples=200, seed=1)
    r2 = stats.paired_permutation_test(a, b, t, n_resamples=200, seed=1)
    assert not r1.exact
    np.testing.assert_array_equal(r1.null_distribution, r2.null_distribution)
    assert r1.p_value == r2.p_value


def test_recording_level_input_errors():
    a, b, t = make_systems(r=3)
    with pytest.raises(ValueError, match="unknown metric 'mae'; valid: ccc, pcc, rmse"):
        stats.paired_bootstrap(a, b, t, metric="mae")
    with pytest.raises(ValueError, match="recording 1: predictions_a"):
        stats.paired_permutation_test(a, [b[0], b[1][:-1], b[2]], t)
    bad = [x.copy() for x in a]
    bad[2][4] = np.nan
    with pytest.raises(ValueError, match="recording 2 contains NaN"):
        stats.paired_bootstrap(bad, b, t)
    res = stats.paired_permutation_test(bad, b, t, ignore_nan=True)
    keep = ~np.isnan(bad[2])
    b2 = [b[0], b[1], b[2][keep]]
    t2 = [t[0], t[1], t[2][keep]]
    a2 = [a[0], a[1], bad[2][keep]]
    assert res.difference == pytest.approx(ref_ccc(a2, t2) - ref_ccc(b2, t2), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2 recordings"):
        stats.paired_bootstrap(a[:1], b[:1], t[:1])
