"""Significance tests for comparing two systems' CCC (host-side, NumPy/SciPy).

Which test to use
-----------------
* :func:`fisher_z_test` -- the test the DDAT paper (and the soft-prediction paper)
  uses: Fisher's r-to-z transform with the *frame* count as ``N``. It assumes the
  ``N`` frames are independent draws from a bivariate normal and that the two
  coefficients come from **independent** samples. Neither holds for two systems
  scored on the same continuously annotated recordings: consecutive 40 ms frames are
  strongly autocorrelated (the effective sample size is orders of magnitude below
  67 509), and both systems are evaluated on the same targets. The test therefore
  overstates significance; use it to reproduce the paper's tables, not to decide.
* :func:`paired_bootstrap` -- a confidence interval for ``metric(A) - metric(B)``
  obtained by resampling **recordings** with replacement (a cluster bootstrap, paired
  because both systems are always scored on the same resampled recordings). It keeps
  the within-recording dependence intact. With few recordings (9 in AVEC 2016 dev)
  percentile intervals are somewhat too narrow; report the number of recordings.
* :func:`paired_permutation_test` -- a one- or two-sided p-value for "A and B are
  exchangeable" by swapping the two systems' predictions **per recording** (a paired
  sign-flip test when the statistic is the mean of per-recording differences). It
  is exact (all ``2**R`` swaps enumerated) when ``2**R <= n_resamples``; its smallest
  attainable p-value is ``1 / 2**R`` (0.0020 for 9 recordings), so with few
  recordings only large, consistent improvements can reach significance.

Both recording-level procedures compute the statistic from per-recording sufficient
statistics (count, means, centred second moments, cross-moment, squared error), so
the concatenated (AVEC 2016) CCC of any resample is exact and vectorised, and they
use :func:`scipy.stats.bootstrap` / :func:`scipy.stats.permutation_test` for the
resampling and the interval/p-value logic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.stats

__all__ = [
    "METRICS",
    "BootstrapResult",
    "FisherZResult",
    "PermutationResult",
    "fisher_z_test",
    "paired_bootstrap",
    "paired_permutation_test",
]


class FisherZResult(NamedTuple):
    """Result of :func:`fisher_z_test` (floats, or arrays when the inputs broadcast)."""

    z: float | np.ndarray
    p_value: float | np.ndarray


class BootstrapResult(NamedTuple):
    """Result of :func:`paired_bootstrap`.

    Attributes:
      difference: observed ``metric(A) - metric(B)`` on all recordings.
      confidence_interval: ``(low, high)`` of the difference.
      standard_error: bootstrap standard error of the difference.
      bootstrap_distribution: the resampled differences ``[n_resamples]``.
      n_recordings: number of recordings resampled.
    """

    difference: float
    confidence_interval: tuple[float, float]
    standard_error: float
    bootstrap_distribution: np.ndarray
    n_recordings: int


class PermutationResult(NamedTuple):
    """Result of :func:`paired_permutation_test`.

    Attributes:
      difference: observed ``metric(A) - metric(B)``.
      p_value: p-value for ``alternative``.
      null_distribution: the statistic under the swaps.
      exact: whether all ``2**R`` swaps were enumerated.
      n_recordings: number of recordings.
    """

    difference: float
    p_value: float
    null_distribution: np.ndarray
    exact: bool
    n_recordings: int


def fisher_z_test(c_a, c_b, n_a, n_b) -> FisherZResult:
    r"""One-tailed Fisher r-to-z test of "A > B", as in the DDAT paper (Sec. IV-B).

    .. math::
        z = \frac{\operatorname{atanh}(c_A) - \operatorname{atanh}(c_B)}
                 {\sqrt{1/(N_A - 3) + 1/(N_B - 3)}},\qquad p = 1 - \Phi(z).

    The paper applies it to CCCs in place of Pearson's r, with ``N`` the number of
    frames. See the module docstring for why frame-level ``N`` overstates
    significance; prefer :func:`paired_permutation_test` over recordings.

    Coefficients are clipped to ``[-1 + u, 1 - u]`` (``u`` = one ulp below 1) so that
    a perfect coefficient gives a large finite ``z`` instead of ``inf - inf``.

    Args:
      c_a: coefficient(s) of system A (broadcastable arrays allowed).
      c_b: coefficient(s) of system B.
      n_a: sample size behind ``c_a``; must exceed 3.
      n_b: sample size behind ``c_b``; must exceed 3.

    Returns:
      ``FisherZResult(z, p_value)``; ``p_value`` is one-tailed for ``c_a > c_b``
      (``scipy.stats.norm.sf(z)``). Floats for scalar inputs.

    Raises:
      ValueError: if a sample size is not above 3 or a coefficient is outside [-1, 1].
    """
    c_a = np.asarray(c_a, dtype=np.float64)
    c_b = np.asarray(c_b, dtype=np.float64)
    n_a = np.asarray(n_a, dtype=np.float64)
    n_b = np.asarray(n_b, dtype=np.float64)
    if np.any(n_a <= 3) or np.any(n_b <= 3):
        raise ValueError(f"fisher_z_test needs sample sizes > 3; got n_a={n_a}, n_b={n_b}")
    if np.any(np.abs(c_a) > 1) or np.any(np.abs(c_b) > 1):
        raise ValueError(f"coefficients must lie in [-1, 1]; got c_a={c_a}, c_b={c_b}")
    top = np.nextafter(1.0, 0.0)
    za = np.arctanh(np.clip(c_a, -top, top))
    zb = np.arctanh(np.clip(c_b, -top, top))
    z = (za - zb) / np.sqrt(1.0 / (n_a - 3.0) + 1.0 / (n_b - 3.0))
    p = scipy.stats.norm.sf(z)
    if np.ndim(z) == 0:
        return FisherZResult(float(z), float(p))
    return FisherZResult(z, np.asarray(p))


# --------------------------------------------------------------------------------------
# Per-recording sufficient statistics.
# Columns: n, mean_p, mean_t, M2_p = sum (p - mean_p)^2, M2_t, C = sum (p - mean_p)(t - mean_t),
# SSE = sum (p - t)^2, sign_hits = #frames with (p > 0) == (t > 0).
_N, _MP, _MT, _M2P, _M2T, _C, _SSE, _HITS = range(8)


def _recording_stats(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    n = p.size
    mp = p.mean()
    mt = t.mean()
    dp = p - mp
    dt = t - mt
    return np.array(
        [
            n,
            mp,
            mt,
            dp @ dp,
            dt @ dt,
            dp @ dt,
            np.sum((p - t) ** 2),
            np.sum((p > 0) == (t > 0)),
        ],
        dtype=np.float64,
    )


def _combine(stats: np.ndarray) -> np.ndarray:
    """Pools rows of ``stats`` ``[..., rows, 8]`` into ``[..., 8]`` (Chan et al.'s update)."""
    n = stats[..., _N]
    n_tot = n.sum(-1)
    mp = (n * stats[..., _MP]).sum(-1) / n_tot
    mt = (n * stats[..., _MT]).sum(-1) / n_tot
    ep = stats[..., _MP] - mp[..., None]
    et = stats[..., _MT] - mt[..., None]
    out = np.empty(stats.shape[:-2] + (8,), dtype=np.float64)
    out[..., _N] = n_tot
    out[..., _MP] = mp
    out[..., _MT] = mt
    out[..., _M2P] = (stats[..., _M2P] + n * ep * ep).sum(-1)
    out[..., _M2T] = (stats[..., _M2T] + n * et * et).sum(-1)
    out[..., _C] = (stats[..., _C] + n * ep * et).sum(-1)
    out[..., _SSE] = stats[..., _SSE].sum(-1)
    out[..., _HITS] = stats[..., _HITS].sum(-1)
    return out


def _ccc_from_stats(s):
    denom = s[..., _M2P] + s[..., _M2T] + s[..., _N] * (s[..., _MP] - s[..., _MT]) ** 2
    return 2.0 * s[..., _C] / denom


def _pcc_from_stats(s):
    return s[..., _C] / np.sqrt(s[..., _M2P] * s[..., _M2T])


def _rmse_from_stats(s):
    return np.sqrt(s[..., _SSE] / s[..., _N])


def _binary_accuracy_from_stats(s):
    return s[..., _HITS] / s[..., _N]


METRICS = {
    "ccc": _ccc_from_stats,
    "pcc": _pcc_from_stats,
    "rmse": _rmse_from_stats,
    "binary_accuracy": _binary_accuracy_from_stats,
}
_AGGREGATES = ("concat", "mean")


def _table(predictions_a, predictions_b, targets, ignore_nan):
    """Stacks per-recording stats: rows ``0..R-1`` for system A, ``R..2R-1`` for B."""
    lists = []
    for name, x in (
        ("predictions_a", predictions_a),
        ("predictions_b", predictions_b),
        ("targets", targets),
    ):
        if hasattr(x, "ndim") and x.ndim >= 2:  # [recordings, time] array
            x = list(x)
        if not isinstance(x, Sequence) or isinstance(x, str):
            raise ValueError(
                f"{name} must be a list of per-recording arrays (or a [recordings, time] "
                f"array); got {type(x).__name__}"
            )
        lists.append(x)
    predictions_a, predictions_b, targets = lists
    r = len(targets)
    if len(predictions_a) != r or len(predictions_b) != r:
        raise ValueError(
            f"got {len(predictions_a)} and {len(predictions_b)} prediction recordings for "
            f"{r} target recordings"
        )
    if r < 2:
        raise ValueError(f"recording-level tests need at least 2 recordings; got {r}")
    rows_a, rows_b = [], []
    for i, (pa, pb, t) in enumerate(zip(predictions_a, predictions_b, targets, strict=True)):
        pa = np.asarray(pa, dtype=np.float64).ravel()
        pb = np.asarray(pb, dtype=np.float64).ravel()
        t = np.asarray(t, dtype=np.float64).ravel()
        if not pa.shape == pb.shape == t.shape:
            raise ValueError(
                f"recording {i}: predictions_a {pa.shape}, predictions_b {pb.shape} and "
                f"targets {t.shape} must have the same length"
            )
        bad = np.isnan(pa) | np.isnan(pb) | np.isnan(t)
        if bad.any():
            if not ignore_nan:
                raise ValueError(
                    f"recording {i} contains NaN; pass ignore_nan=True to drop those frames "
                    "(from both systems)"
                )
            pa, pb, t = pa[~bad], pb[~bad], t[~bad]
        if t.size == 0:
            raise ValueError(f"recording {i} has no (non-NaN) frames")
        rows_a.append(_recording_stats(pa, t))
        rows_b.append(_recording_stats(pb, t))
    return np.stack(rows_a + rows_b), r


def _make_statistic(table: np.ndarray, metric: str, aggregate: str):
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    if aggregate not in _AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; valid: {', '.join(_AGGREGATES)}")
    fn = METRICS[metric]
    per_row = fn(table)

    def value(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.intp)
        if aggregate == "concat":
            return fn(_combine(table[rows]))
        return per_row[rows].mean(-1)

    return value


def paired_bootstrap(
    predictions_a: Sequence,
    predictions_b: Sequence,
    targets: Sequence,
    *,
    metric: str = "ccc",
    aggregate: str = "concat",
    n_resamples: int = 9999,
    confidence_level: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
    ignore_nan: bool = False,
) -> BootstrapResult:
    """Paired cluster bootstrap over recordings of ``metric(A) - metric(B)``.

    Each resample draws ``R`` recordings with replacement and scores **both** systems
    on the same drawn recordings (with ``aggregate="concat"``, on their
    concatenation, exactly as :func:`ddat_jax.metrics.ccc`; population statistics).
    The interval comes from :func:`scipy.stats.bootstrap`.

    Args:
      predictions_a: per-recording predictions of system A, ``[array(T_r), ...]``.
      predictions_b: per-recording predictions of system B.
      targets: per-recording targets.
      metric: one of :data:`METRICS` (``ccc``, ``pcc``, ``rmse``, ``binary_accuracy``).
      aggregate: ``"concat"`` (AVEC 2016, default) or ``"mean"`` of per-recording values.
      n_resamples: bootstrap resamples.
      confidence_level: e.g. 0.95.
      method: ``"percentile"`` (default), ``"basic"`` or ``"BCa"`` (scipy's names).
      seed: seed of the NumPy generator; the same seed gives the same result.
      ignore_nan: drop frames where any of the three inputs is NaN (else NaN raises).

    Returns:
      A :class:`BootstrapResult`.
    """
    table, r = _table(predictions_a, predictions_b, targets, ignore_nan)
    value = _make_statistic(table, metric, aggregate)

    def statistic(idx, axis=-1):
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        return value(idx) - value(idx + r)

    observed = float(statistic(np.arange(r)))
    res = scipy.stats.bootstrap(
        (np.arange(r),),
        statistic,
        n_resamples=n_resamples,
        vectorized=True,
        confidence_level=confidence_level,
        method=method,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return BootstrapResult(
        difference=observed,
        confidence_interval=(float(ci.low), float(ci.high)),
        standard_error=float(res.standard_error),
        bootstrap_distribution=np.asarray(res.bootstrap_distribution),
        n_recordings=r,
    )


def paired_permutation_test(
    predictions_a: Sequence,
    predictions_b: Sequence,
    targets: Sequence,
    *,
    metric: str = "ccc",
    aggregate: str = "concat",
    alternative: str = "greater",
    n_resamples: int = 9999,
    seed: int = 0,
    ignore_nan: bool = False,
) -> PermutationResult:
    """Paired permutation (sign-flip) test over recordings of ``metric(A) - metric(B)``.

    Under the null hypothesis the two systems are exchangeable within each recording,
    so each recording's A and B predictions are swapped independently (``2**R``
    possibilities). With ``aggregate="mean"`` this is exactly the sign-flip test of
    the per-recording differences ``d_r = metric_r(A) - metric_r(B)``; with
    ``"concat"`` the statistic is recomputed on the concatenation after the swaps.
    Uses :func:`scipy.stats.permutation_test` with ``permutation_type="samples"``,
    which enumerates all swaps when ``2**R <= n_resamples`` (exact test).

    Args:
      predictions_a: per-recording predictions of system A.
      predictions_b: per-recording predictions of system B.
      targets: per-recording targets.
      metric: one of :data:`METRICS`.
      aggregate: ``"concat"`` (default) or ``"mean"``.
      alternative: ``"greater"`` (default: A has the higher metric -- use ``"less"`` for
        RMSE, where lower is better) or ``"two-sided"``.
      n_resamples: random swaps when the exact enumeration is larger than this.
      seed: seed of the NumPy generator (only matters when not exact).
      ignore_nan: drop frames where any input is NaN (else NaN raises).

    Returns:
      A :class:`PermutationResult`.
    """
    table, r = _table(predictions_a, predictions_b, targets, ignore_nan)
    value = _make_statistic(table, metric, aggregate)

    def statistic(x, y, axis=-1):
        x = np.moveaxis(np.asarray(x), axis, -1)
        y = np.moveaxis(np.asarray(y), axis, -1)
        return value(x) - value(y)

    res = scipy.stats.permutation_test(
        (np.arange(r), np.arange(r) + r),
        statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative=alternative,
        rng=np.random.default_rng(seed),
    )
    return PermutationResult(
        difference=float(res.statistic),
        p_value=float(res.pvalue),
        null_distribution=np.asarray(res.null_distribution),
        exact=bool(2**r <= n_resamples),
        n_recordings=r,
    )
