"""Host-side (NumPy, float64) evaluation metrics for time-continuous emotion recognition.

These are the numbers that go into tables, so they follow the challenge scripts
exactly and are computed in float64 on the host; use :mod:`ddat_jax.losses` for
anything that must be differentiated or traced.

Inputs are either one flat array (a single recording or an already concatenated
partition) or a list/tuple of per-recording arrays (``[array(7501), ...]``).
Predictions and targets must have the same structure and, per recording, the same
shape (arrays are flattened: a ``[recordings, time]`` array counts as *one* flat
recording, so pass ``list(array)`` for per-recording aggregation).

Aggregation over recordings (``aggregate``; say in every table which one you use):

* ``"concat"`` **(default, AVEC 2016)**: one statistic over the concatenation of all
  recordings (the official baseline's ``conc_dev`` evaluation).
* ``"mean"`` (AVEC 2018 GES): the mean of the per-recording statistics.
* ``"none"``: the per-recording values as a float64 array ``[recordings]``.

Undefined values are NaN, never an exception: no (non-NaN) frame at all, or a 0/0
statistic (CCC with both inputs constant and equal, PCC with a constant input).
A constant prediction against varying targets has CCC exactly 0.

NaN in the inputs: with ``ignore_nan=False`` (default) any NaN makes the result NaN;
with ``ignore_nan=True`` frames where either input is NaN are dropped (as in
``audmetric``), except for ``ccc(..., matlab_compatible=True)``, which then follows
MATLAB's per-variable ``nanmean``/``nanvar`` exactly. The AVEC 2018 mean aggregation
uses ``np.nanmean`` over recordings only when ``ignore_nan=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "AGGREGATES",
    "accuracy",
    "binary_accuracy",
    "ccc",
    "macro_f1",
    "pcc",
    "rmse",
    "split_recordings",
]

AGGREGATES = ("concat", "mean", "none")


def _is_recording_list(x) -> bool:
    if isinstance(x, np.ndarray):
        return False
    if not isinstance(x, Sequence | tuple) or isinstance(x, str):
        return False
    return len(x) > 0 and all(np.ndim(r) >= 1 for r in x)


def split_recordings(
    predictions, targets, *, allow_scores: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Normalises flat or per-recording inputs to a list of float64 ``(pred, target)`` pairs.

    Args:
      predictions: a flat array or a list of per-recording arrays.
      targets: same structure as ``predictions``.
      allow_scores: keep the shapes as given (used by the classification metrics, where
        predictions may carry a trailing class axis); otherwise arrays are flattened
        and must have equal shapes.

    Returns:
      A list of ``(predictions, targets)`` NumPy arrays, one per recording.

    Raises:
      ValueError: if the structures or shapes differ, naming the recording.
    """
    pred_is_list = _is_recording_list(predictions)
    targ_is_list = _is_recording_list(targets)
    if pred_is_list != targ_is_list:
        raise ValueError(
            "predictions and targets must both be flat arrays or both be lists of "
            f"per-recording arrays; got {'a list' if pred_is_list else 'an array'} of "
            f"predictions and {'a list' if targ_is_list else 'an array'} of targets"
        )
    if pred_is_list:
        if len(predictions) != len(targets):
            raise ValueError(
                f"got {len(predictions)} prediction recordings but {len(targets)} target recordings"
            )
        pairs = list(zip(predictions, targets, strict=True))
    else:
        pairs = [(predictions, targets)]
    out = []
    for i, (p, t) in enumerate(pairs):
        p = np.asarray(p)
        t = np.asarray(t)
        if not allow_scores:
            p = p.astype(np.float64)
            t = t.astype(np.float64)
            if p.shape != t.shape:
                raise ValueError(
                    f"recording {i}: predictions have shape {p.shape} but targets have "
                    f"shape {t.shape}; they must match"
                )
            p = p.ravel()
            t = t.ravel()
        out.append((p, t))
    return out


def _aggregate(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    fn: Callable[[np.ndarray, np.ndarray], float],
    aggregate: str,
    ignore_nan: bool,
):
    if aggregate == "concat":
        p = np.concatenate([p for p, _ in pairs])
        t = np.concatenate([t for _, t in pairs])
        return float(fn(p, t))
    if aggregate in ("mean", "none"):
        values = np.array([fn(p, t) for p, t in pairs], dtype=np.float64)
        if aggregate == "none":
            return values
        if ignore_nan:
            if np.all(np.isnan(values)):
                return float("nan")
            return float(np.nanmean(values))
        return float(np.mean(values))
    raise ValueError(f"unknown aggregate {aggregate!r}; valid: {', '.join(AGGREGATES)}")


def _drop_nan(p: np.ndarray, t: np.ndarray, ignore_nan: bool):
    if ignore_nan:
        keep = ~(np.isnan(p) | np.isnan(t))
        return p[keep], t[keep]
    return p, t


def _deviations(x: np.ndarray, mean: float) -> np.ndarray:
    # A constant input has exactly zero deviations (the summed mean may differ from the
    # constant by an ulp), so a constant prediction scores exactly CCC = 0.
    valid = x[~np.isnan(x)]
    if valid.size and valid.min() == valid.max():
        return np.where(np.isnan(x), np.nan, 0.0)
    return x - mean


def _matlab_nanvar(x: np.ndarray) -> float:
    # MATLAB var/nanvar normalise by N-1, except N = 1 (normalised by N, giving 0).
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return float("nan")
    d = _deviations(x, np.mean(x))
    return float(np.sum(d * d) / (n - 1 if n > 1 else 1))


def _ccc_one(p: np.ndarray, t: np.ndarray, *, matlab_compatible: bool, ignore_nan: bool):
    # CCC is invariant to scaling both inputs by one factor; dividing by the largest magnitude
    # keeps the second moments out of the underflow (and overflow) range.
    with np.errstate(invalid="ignore"):
        scale = max(np.nanmax(np.abs(p), initial=0.0), np.nanmax(np.abs(t), initial=0.0))
    if np.isfinite(scale) and scale > 0.0:
        p, t = p / scale, t / scale
    if matlab_compatible and ignore_nan:
        # Reproduces CCC_calc.m: nanmean / nanvar per variable, nanmean of the products.
        if np.all(np.isnan(p)) or np.all(np.isnan(t)):
            return float("nan")
        mp = np.nanmean(p)
        mt = np.nanmean(t)
        vp = _matlab_nanvar(p)
        vt = _matlab_nanvar(t)
        prod = _deviations(p, mp) * _deviations(t, mt)
        prod = prod[~np.isnan(prod)]
        if prod.size == 0:
            return float("nan")
        cov = float(np.mean(prod))
    else:
        p, t = _drop_nan(p, t, ignore_nan)
        n = p.size
        if n == 0:
            return float("nan")
        mp = float(np.mean(p))
        mt = float(np.mean(t))
        dp = _deviations(p, mp)
        dt = _deviations(t, mt)
        cov = float(np.mean(dp * dt))
        if matlab_compatible:
            ddof = 1 if n > 1 else 0
            vp = float(np.sum(dp * dp) / (n - ddof))
            vt = float(np.sum(dt * dt) / (n - ddof))
        else:
            vp = float(np.mean(dp * dp))
            vt = float(np.mean(dt * dt))
    denom = vp + vt + (mp - mt) ** 2
    if np.isnan(denom) or np.isnan(cov):
        return float("nan")
    if denom == 0.0:
        # Both inputs constant. Equal constants: undefined (NaN). Different constants whose
        # squared difference underflows to 0: CCC 0, as for any two different constants.
        return float("nan") if mp == mt else 0.0
    return 2.0 * cov / denom


def ccc(
    predictions,
    targets,
    *,
    aggregate: str = "concat",
    matlab_compatible: bool = False,
    ignore_nan: bool = False,
):
    r"""Lin's concordance correlation coefficient for evaluation.

    .. math::
        \rho_c = \frac{2\,\sigma_{pt}}{\sigma_p^2 + \sigma_t^2 + (\mu_p - \mu_t)^2}

    By default with population (``1/N``) statistics, as in ``audmetric`` and the AVEC
    2018 GES scripts. ``matlab_compatible=True`` reproduces the official AVEC 2016
    ``CCC_calc.m``: ``N-1`` variances (MATLAB ``nanvar``; ``N`` when ``N = 1``) with an
    ``N`` covariance (``nanmean`` of the products); combined with ``ignore_nan=True``
    it also copies MATLAB's per-variable NaN skipping.

    Args:
      predictions: flat array or list of per-recording arrays.
      targets: same structure as ``predictions``.
      aggregate: ``"concat"`` (AVEC 2016, default), ``"mean"`` (AVEC 2018) or ``"none"``.
      matlab_compatible: use the official AVEC 2016 MATLAB normalisation.
      ignore_nan: drop NaN frames instead of returning NaN.

    Returns:
      A Python float (an array ``[recordings]`` for ``aggregate="none"``); NaN when
      undefined (no frames; both inputs constant and equal).

    References:
      Lin, Biometrics 45(1), 1989. Valstar et al., AVEC 2016. Ringeval et al., AVEC 2018.
    """
    pairs = split_recordings(predictions, targets)

    def fn(p, t):
        return _ccc_one(p, t, matlab_compatible=matlab_compatible, ignore_nan=ignore_nan)

    return _aggregate(pairs, fn, aggregate, ignore_nan)


def _pcc_one(p, t, ignore_nan):
    p, t = _drop_nan(p, t, ignore_nan)
    if p.size == 0 or np.isnan(p).any() or np.isnan(t).any():
        return float("nan")
    dp = _deviations(p, np.mean(p))
    dt = _deviations(t, np.mean(t))
    denom = np.sqrt(np.sum(dp * dp)) * np.sqrt(np.sum(dt * dt))
    if denom == 0.0:
        return float("nan")
    return float(np.clip(np.sum(dp * dt) / denom, -1.0, 1.0))


def pcc(predictions, targets, *, aggregate: str = "concat", ignore_nan: bool = False):
    r"""Pearson's correlation coefficient, :math:`\sigma_{pt} / (\sigma_p \sigma_t)`.

    NaN when either input is constant (as ``scipy.stats.pearsonr``) or empty.

    Args:
      predictions: flat array or list of per-recording arrays.
      targets: same structure as ``predictions``.
      aggregate: ``"concat"`` (default), ``"mean"`` or ``"none"``.
      ignore_nan: drop NaN frames instead of returning NaN.

    Returns:
      A Python float, or an array ``[recordings]`` for ``aggregate="none"``.
    """
    pairs = split_recordings(predictions, targets)
    return _aggregate(pairs, lambda p, t: _pcc_one(p, t, ignore_nan), aggregate, ignore_nan)


def _rmse_one(p, t, ignore_nan):
    p, t = _drop_nan(p, t, ignore_nan)
    if p.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((p - t) ** 2)))


def rmse(predictions, targets, *, aggregate: str = "concat", ignore_nan: bool = False):
    r"""Root mean squared error, :math:`\sqrt{\frac1N \sum_i (p_i - t_i)^2}`.

    Args:
      predictions: flat array or list of per-recording arrays.
      targets: same structure as ``predictions``.
      aggregate: ``"concat"`` (default), ``"mean"`` (mean of per-recording RMSEs) or
        ``"none"``.
      ignore_nan: drop NaN frames instead of returning NaN.

    Returns:
      A Python float, or an array ``[recordings]`` for ``aggregate="none"``.
    """
    pairs = split_recordings(predictions, targets)
    return _aggregate(pairs, lambda p, t: _rmse_one(p, t, ignore_nan), aggregate, ignore_nan)


def _binary_accuracy_one(p, t, ignore_nan):
    p, t = _drop_nan(p, t, ignore_nan)
    if p.size == 0 or np.isnan(p).any() or np.isnan(t).any():
        return float("nan")
    return float(np.mean((p > 0) == (t > 0)))


def binary_accuracy(predictions, targets, *, aggregate: str = "concat", ignore_nan: bool = False):
    """Accuracy of the sign, as in the SEW paper: classes negative ``[-1, 0]``, positive ``(0, 1]``.

    A frame counts as correct when ``(prediction > 0) == (target > 0)``; zero is
    negative. Returned as a fraction in ``[0, 1]`` (the paper reports percent).

    Args:
      predictions: flat array or list of per-recording arrays.
      targets: same structure as ``predictions``.
      aggregate: ``"concat"`` (default), ``"mean"`` or ``"none"``.
      ignore_nan: drop NaN frames instead of returning NaN.

    Returns:
      A Python float, or an array ``[recordings]`` for ``aggregate="none"``.

    References:
      Rajan, Brutti & Cavallaro, *Robust latent representations via cross-modal
      translation and alignment* (SEW), ICASSP 2021, Sec. 4.1.
    """
    pairs = split_recordings(predictions, targets)
    return _aggregate(
        pairs, lambda p, t: _binary_accuracy_one(p, t, ignore_nan), aggregate, ignore_nan
    )


def _class_labels(predictions, targets) -> tuple[np.ndarray, np.ndarray]:
    pairs = split_recordings(predictions, targets, allow_scores=True)
    preds, targs = [], []
    for i, (p, t) in enumerate(pairs):
        t = np.asarray(t).ravel()
        if p.ndim == 2 and p.shape[0] == t.size and p.shape[1] > 1:
            p = np.argmax(p, axis=-1)  # scores / logits [n, classes]
        p = np.asarray(p).ravel()
        if p.shape != t.shape:
            raise ValueError(
                f"recording {i}: {p.size} predicted labels for {t.size} targets; pass "
                "labels [n] or scores [n, classes]"
            )
        preds.append(p)
        targs.append(t)
    return np.concatenate(preds), np.concatenate(targs)


def accuracy(predictions, targets) -> float:
    """Classification accuracy over all samples (recordings are concatenated).

    Args:
      predictions: labels ``[n]`` or scores ``[n, classes]`` (arg-maxed), flat or per
        recording.
      targets: integer labels ``[n]``, same structure.

    Returns:
      The fraction of correct labels; NaN for empty input.
    """
    p, t = _class_labels(predictions, targets)
    if t.size == 0:
        return float("nan")
    return float(np.mean(p == t))


def macro_f1(predictions, targets, *, labels: Sequence | None = None) -> float:
    r"""Unweighted mean over classes of :math:`F_1 = 2\,TP / (2\,TP + FP + FN)`.

    Classes are ``labels`` if given, otherwise the sorted union of the labels present
    in ``predictions`` and ``targets`` (scikit-learn's default). A class with
    ``2 TP + FP + FN = 0`` (only possible with explicit ``labels``) scores 0, like
    scikit-learn's ``zero_division=0``.

    Args:
      predictions: labels ``[n]`` or scores ``[n, classes]``, flat or per recording.
      targets: integer labels ``[n]``, same structure.
      labels: optional classes to average over.

    Returns:
      The macro-F1 in ``[0, 1]``; NaN for empty input without ``labels``.
    """
    p, t = _class_labels(predictions, targets)
    classes = np.union1d(p, t) if labels is None else np.asarray(labels)
    if classes.size == 0:
        return float("nan")
    scores = []
    for c in classes:
        tp = np.sum((p == c) & (t == c))
        fp = np.sum((p == c) & (t != c))
        fn = np.sum((p != c) & (t == c))
        denom = 2 * tp + fp + fn
        scores.append(0.0 if denom == 0 else 2 * tp / denom)
    return float(np.mean(scores))
