"""Annotation delay estimated from data: the label shift that a ridge baseline likes best.

Raters react to what they see seconds late, so the gold standard lags the features. The
right delay differs by corpus and by dimension (RECOLA about 2.4 s at 40 ms frames, SEWA
about 4 s at 100 ms). :func:`estimate_delay` fits, for every candidate shift ``d`` of the
labels back in time (the AVEC 2016 rule of :func:`ddat_jax.data.preprocess.shift_back`),
a ridge regression from the train-standardised features to the shifted train gold, and
scores it by the CCC over the concatenated dev partition; the shift with the best dev CCC
(over a small grid of ridge penalties) is the estimate, and the whole curve is returned.

Cost: ``X^T X`` and its eigendecomposition once, then per shift one ``X^T y`` and one
dev prediction per penalty, so hundreds of shifts take seconds.

``config.data.delay_s = "auto"`` runs this inside
:func:`ddat_jax.data.prepare.prepare_corpus` (before the labels are shifted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ddat_jax import metrics
from ddat_jax.data import preprocess
from ddat_jax.data.corpus import Corpus

__all__ = ["ALPHAS", "DelayEstimate", "delay_curve", "estimate_delay", "ridge_dev_ccc"]

ALPHAS = (1e0, 1e1, 1e2, 1e3, 1e4, 1e5)


@dataclasses.dataclass(frozen=True)
class DelayEstimate:
    """Result of :func:`estimate_delay`.

    Attributes:
      delay_s: the estimated delay in seconds (a whole number of frames).
      frames: the same in frames.
      curve: one row per shift: ``shift_s``, ``frames``, ``dev_ccc`` (best over the
        penalties) and ``alpha`` (the penalty that reached it).
    """

    delay_s: float
    frames: int
    curve: pd.DataFrame


def _stack(recs, trim: int) -> np.ndarray:
    """Features of the frames ``[0, T - trim)`` of every recording, concatenated."""
    return np.concatenate([np.asarray(r.features[: r.num_frames - trim], np.float64) for r in recs])


def _labels(recs, shift: int, trim: int) -> np.ndarray:
    """Gold of frames ``[shift, T - trim + shift)``: the labels ``shift`` frames later."""
    return np.concatenate(
        [np.asarray(r.gold[shift : r.num_frames - trim + shift], np.float64) for r in recs]
    )


def _checked(corpus: Corpus, fit: str, score: str) -> Corpus:
    for part in (fit, score):
        recs = corpus.partitions.get(part) or []
        if not recs or not all(r.has_labels for r in recs):
            raise ValueError(
                f"delay estimation needs labelled recordings in partition {part!r} "
                f"(partitions: {list(corpus.partitions)})"
            )
    return preprocess.standardise(corpus, fit_partition=fit)


def delay_curve(
    corpus: Corpus,
    shifts_frames: Sequence[int],
    *,
    alphas: Sequence[float] = ALPHAS,
    fit: str = "train",
    score: str = "dev",
) -> pd.DataFrame:
    """Dev CCC of a ridge baseline for every label shift (frames) in ``shifts_frames``.

    Every shift is fitted and scored on the same frames, ``[0, T - max shift)`` of each
    recording (the labels of frame ``t + shift``), so no padded label favours short shifts.

    Args:
      corpus: as loaded (labels not shifted; features standardised here with ``fit``
        statistics, NaN -> 0).
      shifts_frames: candidate shifts, each ``>= 0`` and shorter than every recording.
      alphas: ridge penalties tried per shift (the best on ``score`` is kept).
      fit, score: the partitions fitted on and scored on.

    Returns:
      DataFrame with ``shift_s``, ``frames``, ``dev_ccc``, ``alpha`` per shift.
    """
    corpus = _checked(corpus, fit, score)
    shifts = [int(k) for k in shifts_frames]
    trim = max(shifts)  # every shift is scored on the same frames: no padded labels
    x_tr = _stack(corpus.partitions[fit], trim)
    x_dev = _stack(corpus.partitions[score], trim)
    mean = x_tr.mean(axis=0)
    x_tr, x_dev = x_tr - mean, x_dev - mean
    evals, evecs = np.linalg.eigh(x_tr.T @ x_tr)
    dev_proj = x_dev @ evecs  # [N_dev, F]
    rows = []
    for k in shifts:
        y_tr = _labels(corpus.partitions[fit], k, trim)
        y_dev = _labels(corpus.partitions[score], k, trim)
        b = evecs.T @ (x_tr.T @ (y_tr - y_tr.mean()))
        best = (-np.inf, float("nan"))
        for a in alphas:
            pred = dev_proj @ (b / (np.maximum(evals, 0.0) + float(a))) + y_tr.mean()
            c = metrics.ccc(pred, y_dev)
            if np.isfinite(c) and c > best[0]:
                best = (float(c), float(a))
        rows.append(
            {
                "shift_s": round(k * corpus.frame_period, 6),
                "frames": k,
                "dev_ccc": best[0],
                "alpha": best[1],
            }
        )
    return pd.DataFrame(rows)


def estimate_delay(
    corpus: Corpus,
    *,
    max_s: float = 8.0,
    step_s: float | None = None,
    alphas: Sequence[float] = ALPHAS,
) -> DelayEstimate:
    """The label shift in ``[0, max_s]`` that maximises a ridge baseline's dev CCC.

    Args:
      corpus: as loaded (labels not yet shifted).
      max_s: largest shift tried (seconds); capped below the shortest recording.
      step_s: spacing of the shifts (seconds); default one frame.
      alphas: ridge penalties (best per shift).

    Returns:
      A :class:`DelayEstimate` (the first of equal maxima).
    """
    fp = corpus.frame_period
    step = max(1, int(round((step_s or fp) / fp)))
    shortest = min(r.num_frames for recs in corpus.partitions.values() for r in recs)
    top = min(int(round(max_s / fp)), shortest - 1)
    if top < 0 or max_s < 0:
        raise ValueError(f"max_s must be >= 0 seconds, got {max_s}")
    curve = delay_curve(corpus, range(0, top + 1, step), alphas=alphas)
    i = int(np.argmax(curve["dev_ccc"].to_numpy()))
    frames = int(curve["frames"].iloc[i])
    return DelayEstimate(round(frames * fp, 6), frames, curve)


def ridge_dev_ccc(corpus: Corpus, delay_s: float, *, alphas: Sequence[float] = ALPHAS) -> float:
    """Dev CCC of the ridge baseline with labels shifted by ``delay_s`` (calibration)."""
    frames = int(round(delay_s / corpus.frame_period))
    return float(delay_curve(corpus, [frames], alphas=alphas)["dev_ccc"].iloc[0])
