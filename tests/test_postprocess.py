"""Tests for ddat_jax.postprocess against references written here (not the module's output).

References: MATLAB ``medfilt1`` as documented by MathWorks (zero padding; odd window
x(k−(n−1)/2 … k+(n−1)/2), even window x(k−n/2 … k+n/2−1)), a literal transcription of the
AVEC 2016 ``predpostproc_train.m`` window search, and closed-form centring/scaling results.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddat_jax import metrics
from ddat_jax.postprocess import (
    GRIDS,
    AVEC2016Search,
    DDATGrid,
    PostProcessParams,
    apply_postprocess,
    fit_postprocess,
    median_filter_matlab,
    shift_back,
    shift_forward,
)

NO_STEPS = DDATGrid(windows_s=(), shifts_s=())


# ----------------------------------------------------------------------------- references


def ref_medfilt1(x, n):
    """Brute-force MATLAB medfilt1(x, n) with zero padding, in plain Python."""
    x = [float(v) for v in x]
    if n <= 1:
        return np.array(x)
    if n % 2:
        lo, hi = -(n - 1) // 2, (n - 1) // 2
    else:
        lo, hi = -n // 2, n // 2 - 1
    out = []
    for k in range(len(x)):
        win = sorted(x[j] if 0 <= j < len(x) else 0.0 for j in range(k + lo, k + hi + 1))
        m = len(win)
        out.append(win[m // 2] if m % 2 else 0.5 * (win[m // 2 - 1] + win[m // 2]))
    return np.array(out)


def ref_medfilt1_fast(x, n):
    """Same semantics via explicit padding and ``np.median`` (for long signals in tests)."""
    if n <= 1:
        return np.asarray(x, float).copy()
    left = n // 2 if n % 2 == 0 else (n - 1) // 2
    right = n - 1 - left
    p = np.concatenate([np.zeros(left), np.asarray(x, float), np.zeros(right)])
    return np.median(np.lib.stride_tricks.sliding_window_view(p, n), axis=-1)


def ref_ccc(p, g):
    p, g = np.asarray(p, float), np.asarray(g, float)
    cov = np.mean((p - p.mean()) * (g - g.mean()))
    return 2 * cov / (np.var(p) + np.var(g) + (p.mean() - g.mean()) ** 2)


def ref_pcc(p, g):
    return float(np.corrcoef(p, g)[0, 1])


def ref_shift_forward(x, d):
    x = list(x)
    return np.array([x[0]] * min(d, len(x)) + x[: max(len(x) - d, 0)])


def cat(xs):
    return np.concatenate(xs)


def smooth_signals(rng, n_rec, length, width=60, mean=0.0):
    out = []
    for _ in range(n_rec):
        z = rng.standard_normal(length + width)
        s = np.convolve(z, np.ones(width) / np.sqrt(width), mode="valid")[:length]
        out.append(s + mean)
    return out


def matlab_round(v):
    return math.floor(v + 0.5)


def ref_predpostproc_window(pred, ref, nw, perc_impr=2):
    """Literal transcription of the window part of predpostproc_train.m (1-based → 0-based).

    Returns (best_param(1), CCC_save(2)). The relative gain uses |old| (equal to MATLAB for
    positive CCCs, which is all this test feeds it).
    """

    def ccc_calc(p):
        return ref_ccc(p, ref)

    def medfilt(w):
        return ref_medfilt1_fast(pred, w)

    def impr(new, old):
        return 100 * (new - old) / abs(old)

    raw = ccc_calc(pred)
    best_ccc = raw
    new_val = [raw] + [ccc_calc(medfilt(matlab_round(k * nw / 3))) for k in (1, 2, 3)]
    indw = sorted(range(4), key=lambda i: -new_val[i])  # stable, like MATLAB sort
    val = [new_val[i] for i in indw]
    if indw[0] != 0 and impr(val[0], new_val[0]) > perc_impr:
        indw = [matlab_round(i * nw / 3) for i in indw[:2]]
        new_indw = [indw[0], matlab_round(np.mean(indw)), indw[1]]
        new_val = [val[0], ccc_calc(medfilt(new_indw[1])), val[1]]
        if impr(new_val[1], max(new_val[0], new_val[2])) > perc_impr:
            while True:
                order = sorted(range(3), key=lambda i: -new_val[i])
                val = [new_val[i] for i in order]
                new_indw = [
                    new_indw[order[0]],
                    matlab_round(np.mean([new_indw[order[0]], new_indw[order[1]]])),
                    new_indw[order[1]],
                ]
                new_val = [val[0], ccc_calc(medfilt(new_indw[1])), val[1]]
                if impr(new_val[1], max(new_val[0], new_val[2])) > perc_impr:
                    continue
                if impr(new_val[1], max(new_val[0], new_val[2])) > 0:
                    return new_indw[1], new_val[1]
                return new_indw[0], val[0]
        if impr(new_val[1], max(new_val[0], new_val[2])) > 0:
            return new_indw[1], new_val[1]
        return indw[0], val[0]
    return 0, best_ccc


# ----------------------------------------------------------------------------- median filter


def test_median_filter_hand_example_odd_and_even():
    x = np.array([1.0, 5.0, 2.0, 8.0, 3.0])
    # n = 3, zero padded: [0 1 5 | 1 5 2 | 5 2 8 | 2 8 3 | 8 3 0]
    np.testing.assert_array_equal(median_filter_matlab(x, 3), [1, 2, 5, 3, 3])
    # n = 4, window x(k-2 … k+1): {0,0,1,5} {0,1,5,2} {1,5,2,8} {5,2,8,3} {2,8,3,0}
    np.testing.assert_array_equal(median_filter_matlab(x, 4), [0.5, 1.5, 3.5, 4.0, 2.5])
    np.testing.assert_array_equal(median_filter_matlab(x, 1), x)
    np.testing.assert_array_equal(median_filter_matlab(x, 0), x)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 11, 12, 31, 64])
@pytest.mark.parametrize("length", [1, 2, 7, 40, 121])
def test_median_filter_matches_bruteforce(n, length):
    rng = np.random.default_rng(n * 1000 + length)
    x = rng.standard_normal(length) + 0.3
    np.testing.assert_allclose(median_filter_matlab(x, n), ref_medfilt1(x, n), rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        st.integers(1, 60),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
    ),
    n=st.integers(0, 70),
)
def test_median_filter_property_bruteforce(x, n):
    np.testing.assert_allclose(median_filter_matlab(x, n), ref_medfilt1(x, n), atol=1e-9, rtol=0)


def test_median_filter_long_signal_large_windows():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(7501)
    for n in (167, 250, 333, 500):
        np.testing.assert_allclose(median_filter_matlab(x, n), ref_medfilt1_fast(x, n), atol=1e-12)


def test_median_filter_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        median_filter_matlab(np.zeros((3, 2)), 3)
    with pytest.raises(ValueError, match="window"):
        median_filter_matlab(np.zeros(3), -1)
    with pytest.raises(ValueError, match="window"):
        median_filter_matlab(np.zeros(3), 2.5)


def test_median_per_recording_vs_concatenated():
    rng = np.random.default_rng(1)
    preds = [rng.standard_normal(30) + 2, rng.standard_normal(25) - 2]
    p_rec = PostProcessParams(window=5, per_recording=True)
    p_cat = PostProcessParams(window=5, per_recording=False)
    got_rec = apply_postprocess(preds, p_rec)
    got_cat = apply_postprocess(preds, p_cat)
    for got, x in zip(got_rec, preds, strict=True):
        np.testing.assert_allclose(got, ref_medfilt1(x, 5), atol=1e-12)
    np.testing.assert_allclose(cat(got_cat), ref_medfilt1(cat(preds), 5), atol=1e-12)
    assert [g.size for g in got_cat] == [30, 25]
    # The override on apply wins over the stored flag.
    np.testing.assert_allclose(
        cat(apply_postprocess(preds, p_rec, per_recording=False)), cat(got_cat)
    )


# ----------------------------------------------------------------------------- shifts


def test_shift_hand_examples():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(shift_forward(x, 2), [1, 1, 1, 2, 3])
    np.testing.assert_array_equal(shift_back(x, 2), [3, 4, 5, 5, 5])
    np.testing.assert_array_equal(shift_forward(x, 0), x)
    np.testing.assert_array_equal(shift_forward(x, 9), [1] * 5)
    np.testing.assert_array_equal(shift_back(x, 9), [5] * 5)
    with pytest.raises(ValueError, match="shift"):
        shift_forward(x, -1)


@settings(max_examples=50, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-5, 5)), d=st.integers(0, 50)
)
def test_shift_forward_property(x, d):
    np.testing.assert_array_equal(shift_forward(x, d), ref_shift_forward(x, d))


def test_shift_is_per_recording():
    preds = [np.arange(1.0, 6.0), np.arange(10.0, 14.0)]
    got = apply_postprocess(preds, PostProcessParams(shift=2, per_recording=False))
    np.testing.assert_array_equal(got[0], [1, 1, 1, 2, 3])
    np.testing.assert_array_equal(got[1], [10, 10, 10, 11])


@pytest.mark.parametrize("k", [3, 6, 11])
def test_fitted_shift_recovers_lead(k):
    """pred[t] = gold[t + k] (the prediction runs k frames ahead) → fitted shift = k."""
    rng = np.random.default_rng(k)
    golds = smooth_signals(rng, 4, 600, width=20)
    preds = [shift_back(g, k) for g in golds]  # pred[t] = gold[min(t + k, T - 1)]
    grid = DDATGrid(windows_s=(), shifts_s=GRIDS["ddat"].shifts_s)
    params = fit_postprocess(preds, golds, grids=grid)
    assert params.shift == k
    # The opposite direction (prediction lagging) cannot be fixed by a forward shift.
    lagging = [shift_forward(g, k) for g in golds]
    assert fit_postprocess(lagging, golds, grids=grid).shift == 0


# ----------------------------------------------------------------------------- centring/scaling


def test_centring_and_scaling_closed_form():
    """pred = 0.5·gold + 0.3 + noise, zero-mean gold: bias = −mean(pred), scale = σ_g/σ_p."""
    rng = np.random.default_rng(2)
    golds = smooth_signals(rng, 3, 800)
    mu = cat(golds).mean()
    golds = [g - mu for g in golds]
    preds = [0.5 * g + 0.3 + 0.1 * rng.standard_normal(g.size) for g in golds]
    params, hist = fit_postprocess(preds, golds, grids=NO_STEPS, return_history=True)
    p, g = cat(preds), cat(golds)
    assert params.window == 0 and params.shift == 0
    assert params.bias == pytest.approx(g.mean() - p.mean(), abs=1e-12)
    assert params.scale == pytest.approx(np.std(g, ddof=1) / np.std(p, ddof=1), rel=1e-12)
    out = cat(apply_postprocess(preds, params))
    assert out.mean() == pytest.approx(g.mean(), abs=1e-12)
    assert out.std() == pytest.approx(g.std(), rel=1e-12)
    # Equal means and variances: the CCC after equals the PCC before.
    assert ref_ccc(out, g) == pytest.approx(ref_pcc(p, g), abs=1e-12)
    assert hist["final"] == pytest.approx(ref_ccc(out, g), abs=1e-12)
    assert hist["raw"] == pytest.approx(ref_ccc(p, g), abs=1e-12)


def test_noise_free_affine_prediction_recovers_gold():
    rng = np.random.default_rng(3)
    golds = [g - 0.0 for g in smooth_signals(rng, 2, 500)]
    mu = cat(golds).mean()
    golds = [g - mu for g in golds]
    preds = [0.5 * g + 0.3 for g in golds]
    params = fit_postprocess(preds, golds, grids=NO_STEPS)
    assert params.bias == pytest.approx(-0.3, abs=1e-12)
    assert params.scale == pytest.approx(2.0, rel=1e-12)
    for got, g in zip(apply_postprocess(preds, params), golds, strict=True):
        np.testing.assert_allclose(got, g, atol=1e-12)


def test_scaling_that_lowers_ccc_is_rejected():
    """Scaling is about zero: with a large gold mean it moves the mean away and is refused."""
    rng = np.random.default_rng(4)
    golds = [g + 10.0 for g in smooth_signals(rng, 3, 600)]
    preds = [1.5 * (g - 10.0) + 10.0 + 0.05 * rng.standard_normal(g.size) for g in golds]
    params = fit_postprocess(preds, golds, grids=NO_STEPS)
    p, g = cat(preds), cat(golds)
    centred = p + (g.mean() - p.mean())
    scaled = centred * (g.std() / centred.std())
    assert ref_ccc(scaled, g) < ref_ccc(centred, g)  # the construction does what it claims
    assert params.scale == 1.0
    assert params.bias == pytest.approx(g.mean() - p.mean(), abs=1e-12)


def test_perfect_prediction_gives_identity_params():
    """pred = gold (white noise): every step lowers or keeps the CCC, so none is used."""
    rng = np.random.default_rng(5)
    golds = [rng.standard_normal(300) for _ in range(3)]
    preds = [g.copy() for g in golds]
    for grids in ("ddat", "avec2016"):
        params = fit_postprocess(preds, golds, grids=grids)
        assert params == PostProcessParams(), grids


def test_median_window_is_best_of_grid():
    rng = np.random.default_rng(6)
    golds = smooth_signals(rng, 3, 700, width=40)
    preds = []
    for g in golds:
        spikes = np.where(rng.random(g.size) < 0.08, rng.normal(0, 4, g.size), 0.0)
        preds.append(g + spikes)
    grid = DDATGrid(shifts_s=())
    params, hist = fit_postprocess(preds, golds, grids=grid, return_history=True)
    scores = {
        n: ref_ccc(cat([ref_medfilt1_fast(p, n) for p in preds]), cat(golds))
        for n in (3, 5, 7, 9, 11)
    }
    best = max(scores, key=scores.get)
    assert scores[best] > ref_ccc(cat(preds), cat(golds))
    assert params.window == best
    assert hist["median"] == pytest.approx(scores[best], abs=1e-12)


def test_fit_on_dev_apply_to_test_equals_manual_transforms():
    rng = np.random.default_rng(7)
    dev_g = smooth_signals(rng, 3, 500, width=30, mean=0.1)
    dev_p = [0.6 * shift_back(g, 4) + 0.2 + 0.3 * rng.standard_normal(g.size) for g in dev_g]
    params = fit_postprocess(dev_p, dev_g)
    assert params.window > 0 and params.bias != 0 and params.scale != 1 and params.shift > 0
    test_p = [rng.standard_normal(n) for n in (321, 410)]
    got = apply_postprocess(test_p, params)
    for out, x in zip(got, test_p, strict=True):
        want = ref_medfilt1(x, params.window)
        want = (want + params.bias) * params.scale
        want = ref_shift_forward(want, params.shift)
        np.testing.assert_allclose(out, want, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_rec=st.integers(1, 3), per_recording=st.booleans())
def test_greedy_never_lowers_dev_ccc_and_history_matches_apply(seed, n_rec, per_recording):
    rng = np.random.default_rng(seed)
    golds = smooth_signals(rng, n_rec, 120, width=10, mean=rng.normal())
    preds = [
        rng.normal() * shift_back(g, int(rng.integers(0, 8)))
        + rng.normal()
        + rng.uniform(0, 1) * rng.standard_normal(g.size)
        for g in golds
    ]
    params, hist = fit_postprocess(preds, golds, per_recording=per_recording, return_history=True)
    steps = [hist[k] for k in ("raw", "median", "centre", "scale", "final")]
    assert all(b >= a for a, b in zip(steps, steps[1:], strict=False))
    out = apply_postprocess(preds, params)
    assert hist["final"] == pytest.approx(ref_ccc(cat(out), cat(golds)), abs=1e-10)


def test_identity_params_apply_is_identity():
    preds = [np.array([1.0, -2.0, 3.5]), np.array([0.25])]
    got = apply_postprocess(preds, PostProcessParams())
    for a, b in zip(got, preds, strict=True):
        np.testing.assert_array_equal(a, b)


def test_custom_ccc_fn_is_used():
    rng = np.random.default_rng(8)
    golds = smooth_signals(rng, 2, 200)
    preds = [0.5 * g + 1.0 + 0.2 * rng.standard_normal(g.size) for g in golds]
    # A score that never improves: no step is kept.
    assert fit_postprocess(preds, golds, ccc_fn=lambda p, g: 0.0) == PostProcessParams()


# ----------------------------------------------------------------------------- AVEC 2016 search


def test_avec_two_percent_rule():
    """A filter raising the CCC by less than 2 % relative is not used (DDAT's grid takes it)."""
    rng = np.random.default_rng(9)
    t = np.arange(3000)
    golds = [np.sin(2 * np.pi * t / 1500 + ph) for ph in (0.0, 1.0, 2.0)]
    preds = [g + 0.1 * rng.standard_normal(t.size) for g in golds]
    p, g = cat(preds), cat(golds)
    raw = ref_ccc(p, g)
    filt = ref_ccc(cat([ref_medfilt1_fast(x, 167) for x in preds]), g)
    assert raw < filt < 1.02 * raw
    params = fit_postprocess(preds, golds, grids=AVEC2016Search(delays_s=(0.0,)))
    assert params.window == 0


@pytest.mark.parametrize(
    ("period", "noise", "seed"),
    [(1500, 0.5, 0), (600, 1.0, 1), (300, 1.5, 2), (200, 2.0, 3), (900, 0.8, 4)],
)
def test_avec_window_search_matches_matlab_transcription(period, noise, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(2500)
    golds = [np.sin(2 * np.pi * t / period + ph) for ph in (0.0, 2.0)]
    preds = [g + noise * rng.standard_normal(t.size) for g in golds]
    # The AVEC baseline filters the concatenated partition.
    want_w, want_c = ref_predpostproc_window(cat(preds), cat(golds), 500)
    params, hist = fit_postprocess(
        preds,
        golds,
        grids=AVEC2016Search(delays_s=(0.0,)),
        per_recording=False,
        return_history=True,
    )
    assert params.window == want_w
    assert hist["median"] == pytest.approx(want_c, abs=1e-12)


@pytest.mark.parametrize("nw", [30, 60, 240])
@pytest.mark.parametrize("width", [10, 20, 40])
@pytest.mark.parametrize(("noise", "perc"), [(1.0, 2.0), (3.0, 2.0), (1.0, 0.2), (3.0, 0.2)])
def test_avec_window_bisection_matches_matlab_transcription(nw, width, noise, perc):
    """Smaller Nw and gain thresholds reach the bisection loop (5+ filters tried)."""
    rng = np.random.default_rng(1)
    golds = [
        np.convolve(g, np.ones(width) / width, "same")
        for g in smooth_signals(rng, 2, 2500, width=width)
    ]
    preds = [g + noise * g.std() * rng.standard_normal(g.size) for g in golds]
    want_w, want_c = ref_predpostproc_window(cat(preds), cat(golds), nw, perc)
    grid = AVEC2016Search(max_window_s=nw * 0.04, min_rel_gain=perc / 100, delays_s=(0.0,))
    params, hist = fit_postprocess(
        preds, golds, grids=grid, per_recording=False, return_history=True
    )
    assert params.window == want_w
    assert hist["median"] == pytest.approx(want_c, abs=1e-12)


def test_avec_delay_search_and_early_stopping():
    """pred leads gold by 20 frames (0.8 s) → delay 0.8 s chosen; stops 3 delays later."""
    rng = np.random.default_rng(10)
    golds = smooth_signals(rng, 3, 1500, width=80)
    preds = [shift_back(g, 20) for g in golds]
    params, hist = fit_postprocess(preds, golds, grids="avec2016", return_history=True)
    assert params.shift == 20
    assert list(hist["delay_scores"]) == [0, 10, 20, 30, 40, 50]
    # Each delay's score is the B2 CCC against the gold shifted back by that delay.
    want_20 = ref_ccc(cat(preds), cat([shift_back(g, 20) for g in golds]))
    assert hist["delay_scores"][20] >= want_20 - 1e-12
    assert hist["final"] == pytest.approx(
        ref_ccc(cat(apply_postprocess(preds, params)), cat(golds)), abs=1e-12
    )


# ----------------------------------------------------------------------------- params and errors


def test_params_json_roundtrip():
    p = PostProcessParams(window=7, bias=-0.25, scale=1.75, shift=3, per_recording=False)
    d = json.loads(json.dumps(p.to_dict()))
    assert PostProcessParams.from_dict(d) == p
    with pytest.raises(ValueError, match="unknown"):
        PostProcessParams.from_dict({**d, "extra": 1})
    with pytest.raises(ValueError, match="missing"):
        PostProcessParams.from_dict({k: v for k, v in d.items() if k != "bias"})


@pytest.mark.parametrize(
    "kwargs",
    [{"window": -1}, {"shift": 1.5}, {"bias": float("nan")}, {"scale": "2"}, {"window": True}],
)
def test_params_validation(kwargs):
    with pytest.raises(ValueError, match="PostProcessParams"):
        PostProcessParams(**kwargs)


def test_input_errors():
    g = [np.zeros(5), np.zeros(6)]
    with pytest.raises(ValueError, match="recording 1.*4 frames.*6"):
        fit_postprocess([np.zeros(5), np.zeros(4)], g)
    with pytest.raises(ValueError, match="1 recordings but golds has 2"):
        fit_postprocess([np.zeros(5)], g)
    with pytest.raises(ValueError, match="ddat"):
        fit_postprocess(g, g, grids="avec2018")
    with pytest.raises(ValueError, match=r"preds\[0\].*NaN"):
        fit_postprocess([np.array([np.nan, 1.0])], [np.zeros(2)])
    with pytest.raises(ValueError, match="list of per-recording"):
        fit_postprocess(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"preds\[0\].*1-D"):
        apply_postprocess([np.zeros((2, 2))], PostProcessParams())
    with pytest.raises(ValueError, match="frame_period"):
        fit_postprocess(g, g, frame_period=0)


def test_undefined_ccc_never_wins():
    """Constant prediction = constant gold: every CCC is 0/0 (NaN); nothing is applied."""
    preds = [np.ones(50), np.ones(40)]
    golds = [np.ones(50), np.ones(40)]
    params, hist = fit_postprocess(preds, golds, return_history=True)
    assert params == PostProcessParams()
    assert math.isnan(hist["raw"]) and math.isnan(hist["final"])
    params = fit_postprocess(preds, golds, grids="avec2016")
    assert params.window == 0 and params.bias == 0.0 and params.scale == 1.0


def test_matlab_compatible_score():
    """CCC_calc.m's N-1 variances / N covariance, passed as ccc_fn, is the score reported."""
    rng = np.random.default_rng(11)
    golds = smooth_signals(rng, 2, 300)
    preds = [0.5 * g + 0.4 * rng.standard_normal(g.size) for g in golds]
    p, g = cat(preds), cat(golds)
    cov = np.mean((p - p.mean()) * (g - g.mean()))
    want = 2 * cov / (np.var(p, ddof=1) + np.var(g, ddof=1) + (p.mean() - g.mean()) ** 2)
    _, hist = fit_postprocess(
        preds,
        golds,
        ccc_fn=functools.partial(metrics.ccc, matlab_compatible=True),
        return_history=True,
    )
    assert hist["raw"] == pytest.approx(want, abs=1e-12)
