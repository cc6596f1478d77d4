"""Preprocessing: standardisation, annotation-delay compensation and batching.

Follows the AVEC 2016 baseline: features are standardised with the statistics of the training
partition (``nanmean``/``nanstd``), NaN features are set to 0 after standardising; the labels
are shifted back in time by the annotation delay, per recording, dropping the first frames
and repeating the last value at the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ddat_jax.data.corpus import Corpus, Recording

__all__ = [
    "STANDARDISE_MODES",
    "fit_standardiser",
    "shift_back",
    "shift_corpus_labels",
    "shift_labels",
    "standardise",
    "to_batch",
]

STANDARDISE_MODES = ("online", "per_recording")
_MIN_STD = 1e-8


def fit_standardiser(
    recordings: Sequence[Recording], *, ddof: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and standard deviation of every feature over all frames.

    Two passes in float64 (mean, then squared deviations) over the recordings, as if they
    were concatenated. A feature that is NaN everywhere gets mean 0 and std 1; a constant
    feature (std below 1e-8) gets std 1, so standardising never divides by zero.

    Args:
        recordings: the recordings to fit on (usually the training partition).
        ddof: delta degrees of freedom of the std (1 as MATLAB ``nanstd``).

    Returns:
        ``(mean [F], std [F])`` float32.
    """
    if not recordings:
        raise ValueError("fit_standardiser: expected at least one recording")
    num_f = recordings[0].features.shape[1]
    count = np.zeros(num_f)
    total = np.zeros(num_f)
    for rec in recordings:
        x = np.asarray(rec.features, dtype=np.float64)
        if x.shape[1] != num_f:
            raise ValueError(f"{rec.name}: expected {num_f} features, found {x.shape[1]}")
        ok = ~np.isnan(x)
        count += ok.sum(axis=0)
        total += np.where(ok, x, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.zeros(num_f), where=count > 0)
    sq = np.zeros(num_f)
    for rec in recordings:
        d = np.asarray(rec.features, dtype=np.float64) - mean
        sq += np.where(np.isnan(d), 0.0, d * d).sum(axis=0)
    denom = count - ddof
    var = np.divide(sq, denom, out=np.zeros(num_f), where=denom > 0)
    std = np.sqrt(var)
    std = np.where(std > _MIN_STD, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def _apply(rec: Recording, mean: np.ndarray, std: np.ndarray) -> Recording:
    x = (np.asarray(rec.features, dtype=np.float64) - mean) / std
    x = np.where(np.isnan(x), 0.0, x).astype(np.float32)
    return dataclasses.replace(rec, features=x)


def standardise(
    corpus: Corpus,
    *,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    fit_partition: str = "train",
    mode: str = "online",
    ddof: int = 1,
) -> Corpus:
    """Standardises the features of every recording; NaN -> 0 afterwards.

    Args:
        corpus: the corpus.
        stats: ``(mean [F], std [F])``; fitted on ``fit_partition`` when None.
        fit_partition: the partition whose statistics are used (``online`` mode).
        mode: ``online`` (one set of statistics, AVEC's default) or ``per_recording`` (each
            recording with its own statistics, AVEC's choice for some physiological and video
            features).
        ddof: delta degrees of freedom of the fitted std.

    Returns:
        A new corpus with float32 features free of NaN.
    """
    if mode not in STANDARDISE_MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {list(STANDARDISE_MODES)}")
    if mode == "per_recording":
        parts = {
            p: [_apply(r, *fit_standardiser([r], ddof=ddof)) for r in recs]
            for p, recs in corpus.partitions.items()
        }
        return dataclasses.replace(corpus, partitions=parts)
    if stats is None:
        if fit_partition not in corpus.partitions:
            raise ValueError(
                f"unknown partition {fit_partition!r}: expected one of {list(corpus.partitions)}"
            )
        stats = fit_standardiser(corpus.partitions[fit_partition], ddof=ddof)
    mean = np.asarray(stats[0], dtype=np.float64)
    std = np.asarray(stats[1], dtype=np.float64)
    if mean.shape != (corpus.num_features,) or std.shape != (corpus.num_features,):
        raise ValueError(
            f"stats: expected mean and std of shape ({corpus.num_features},), got "
            f"{mean.shape} and {std.shape}"
        )
    std = np.where(std > _MIN_STD, std, 1.0)
    parts = {p: [_apply(r, mean, std) for r in recs] for p, recs in corpus.partitions.items()}
    return dataclasses.replace(corpus, partitions=parts)


def shift_back(x: np.ndarray, frames: int) -> np.ndarray:
    """Advances ``x`` along its first axis by ``frames``: ``out[t] = x[min(t + frames, T - 1)]``.

    The AVEC 2016 annotation-delay rule (``add_gs.m`` of the official baseline): the first
    ``frames`` values are dropped and the last value is repeated ``frames`` times at the end,
    so the length is unchanged; ``frames >= T`` gives the last value everywhere. This is the
    one implementation of the shift-back in ddat_jax (labels here, the post-processing's
    delay search too).

    Args:
        x: ``[T, ...]`` signal.
        frames: the shift in frames, ``>= 0``.

    Returns:
        The shifted copy, same shape and dtype.
    """
    x = np.asarray(x)
    frames = int(frames)
    if frames < 0:
        raise ValueError(f"shift_back: frames must be >= 0, got {frames}")
    if x.ndim == 0:
        raise ValueError("shift_back: expected an array with a time axis, got a scalar")
    if x.shape[0] == 0:
        return x.copy()
    return x[np.minimum(np.arange(x.shape[0]) + frames, x.shape[0] - 1)]


def shift_labels(x: np.ndarray, frames: int) -> np.ndarray:
    """Shifts labels back in time by ``frames`` (annotation-delay compensation).

    The label of frame ``t + frames`` is assigned to frame ``t``: the first ``frames`` values
    are dropped and the last value is repeated ``frames`` times at the end (AVEC 2016 rule,
    :func:`shift_back`), so the length is unchanged.

    Args:
        x: labels ``[T]`` or ``[T, K]``.
        frames: the delay in frames, ``0 <= frames < T``.

    Returns:
        The shifted labels, same shape and dtype (a copy).
    """
    x = np.asarray(x)
    frames = int(frames)
    if frames < 0:
        raise ValueError(f"shift_labels: frames must be >= 0, got {frames}")
    if x.ndim not in (1, 2):
        raise ValueError(f"shift_labels: expected [T] or [T, K], got shape {x.shape}")
    if frames >= x.shape[0]:
        raise ValueError(
            f"shift_labels: cannot shift {x.shape[0]} frames by {frames} (expected fewer)"
        )
    return shift_back(x, frames)


def shift_corpus_labels(corpus: Corpus, frames: int) -> Corpus:
    """Applies :func:`shift_labels` to the gold standard, ratings and PU of every recording."""

    def shift(rec: Recording) -> Recording:
        return dataclasses.replace(
            rec,
            gold=None if rec.gold is None else shift_labels(rec.gold, frames),
            ratings=None if rec.ratings is None else shift_labels(rec.ratings, frames),
            pu=None if rec.pu is None else shift_labels(rec.pu, frames),
        )

    parts = {p: [shift(r) for r in recs] for p, recs in corpus.partitions.items()}
    return dataclasses.replace(corpus, partitions=parts)


def to_batch(recordings: Sequence[Recording], *, pad_to: int | None = None) -> dict:
    """Stacks whole recordings into padded arrays with a mask (never truncates).

    Features are copied as they are: standardise first so that no NaN reaches a model.

    Args:
        recordings: N recordings with the same number of features.
        pad_to: time length of the batch; at least the longest recording (default).

    Returns:
        A dict with ``x [N, Tmax, F]`` float32, ``y [N, Tmax]`` float32 (gold standard),
        ``pu [N, Tmax]`` float32, ``mask [N, Tmax]`` bool (True on real frames),
        ``lengths [N]`` int32, ``names`` (list of N str), ``labelled [N]`` bool (the recording
        has a gold standard), ``has_labels`` (bool: every recording has one) and ``has_pu``
        (bool: every recording has a PU). Padding and missing labels are 0.
    """
    if not recordings:
        raise ValueError("to_batch: expected at least one recording")
    lengths = np.array([r.features.shape[0] for r in recordings], dtype=np.int32)
    num_f = recordings[0].features.shape[1]
    t_max = int(lengths.max())
    if pad_to is not None:
        if pad_to < t_max:
            raise ValueError(
                f"to_batch: pad_to={pad_to} is shorter than the longest recording ({t_max} "
                "frames); recordings are never truncated"
            )
        t_max = int(pad_to)
    n = len(recordings)
    x = np.zeros((n, t_max, num_f), dtype=np.float32)
    y = np.zeros((n, t_max), dtype=np.float32)
    pu = np.zeros((n, t_max), dtype=np.float32)
    mask = np.zeros((n, t_max), dtype=bool)
    labelled = np.zeros(n, dtype=bool)
    has_pu = True
    for i, rec in enumerate(recordings):
        length = int(lengths[i])
        if rec.features.shape[1] != num_f:
            raise ValueError(
                f"to_batch: {rec.name} has {rec.features.shape[1]} features, expected {num_f}"
            )
        x[i, :length] = rec.features
        mask[i, :length] = True
        if rec.gold is not None:
            y[i, :length] = rec.gold
            labelled[i] = True
        if rec.pu is not None:
            pu[i, :length] = rec.pu
        else:
            has_pu = False
    return {
        "x": x,
        "y": y,
        "pu": pu,
        "mask": mask,
        "lengths": lengths,
        "names": [r.name for r in recordings],
        "labelled": labelled,
        "has_labels": bool(labelled.all()),
        "has_pu": has_pu,
    }
