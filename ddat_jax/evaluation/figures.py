"""Figures as PNG: prediction traces (DDAT paper Fig. 3) and difficulty traces.

The array-level functions (:func:`plot_predictions`, :func:`plot_difficulty`) draw given
series; :func:`prediction_traces` and :func:`difficulty_traces` pick them from a
:class:`~ddat_jax.predictions.Predictions` for one recording.

Figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas attached
directly, so the module neither selects a global backend nor touches ``pyplot``'s state
(safe inside a training process, a notebook, or threads). PNGs are written atomically
(temporary file in the target folder, then ``os.replace``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ddat_jax import atomic
from ddat_jax.predictions import Predictions

__all__ = ["difficulty_traces", "plot_difficulty", "plot_predictions", "prediction_traces"]

_GOLD_STYLE = {"color": "black", "linewidth": 2.0, "label": "gold standard", "zorder": 3}
_DPI = 120


def _series(x, what: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array [T], got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{what} is empty; expected at least one frame")
    if n is not None and a.size != n:
        raise ValueError(f"{what} has {a.size} frames but times has {n}; expected equal lengths")
    return a


def _save_png(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    atomic.write_bytes(path, buf.getvalue())
    return path


def _xlim(t: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(t)), float(np.max(t))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)  # one frame: avoid a singular axis


def _zscore(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return x
    sd = float(np.std(finite))
    mean = float(np.mean(finite))
    # A constant signal is shown as a flat line at 0 instead of dividing by zero.
    return x - mean if sd == 0.0 else (x - mean) / sd


def plot_predictions(
    path: str | os.PathLike,
    times,
    gold,
    preds: Mapping[str, np.ndarray],
    *,
    title: str,
    ylabel: str = "rating",
) -> Path:
    """Gold standard vs the predictions of a few systems for one recording (paper Fig. 3).

    Args:
      path: output ``.png`` path (folders are created).
      times: frame times in seconds, ``[T]``.
      gold: gold standard ``[T]``, or None for an unlabelled recording.
      preds: system label → predictions ``[T]``, drawn in the given order (keep it to a
        few systems, e.g. the STL baseline and the best DDAT / fusion).
      title: figure title (recording, dimension, partition).
      ylabel: y-axis label, e.g. ``"arousal"``.

    Returns:
      The written path.

    Raises:
      ValueError: mismatched lengths, no series at all, or a path not ending in ``.png``.
    """
    t = _series(times, "times")
    if not isinstance(preds, Mapping):
        raise ValueError(f"preds must be a dict label -> [T] array, got {type(preds).__name__}")
    series = {str(k): _series(v, f"preds[{k!r}]", t.size) for k, v in preds.items()}
    g = None if gold is None else _series(gold, "gold", t.size)
    if g is None and not series:
        raise ValueError("nothing to plot: gold is None and preds is empty")

    fig = Figure(figsize=(10, 3.6), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    if g is not None:
        ax.plot(t, g, **_GOLD_STYLE)
    for label, y in series.items():
        ax.plot(t, y, linewidth=1.2, label=label, alpha=0.9)
    ax.set_xlim(*_xlim(t))
    ax.set_xlabel("time [s]")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small", ncols=min(4, len(series) + 1))
    return _save_png(fig, path)


def _draw_raters(ax, t: np.ndarray, r: np.ndarray | None, *, title: str, ylabel: str) -> None:
    """Each rater's trace ``r [T, K]``, their mean and a ±1 std band (or a placeholder)."""
    if r is not None:
        for k in range(r.shape[1]):
            ax.plot(t, r[:, k], linewidth=0.7, alpha=0.6, label=f"rater {k + 1}")
        mean = r.mean(axis=1)
        ax.plot(t, mean, color="black", linewidth=1.8, label="raters' mean")
        if r.shape[1] >= 2:
            sd = np.std(r, axis=1, ddof=1)
            ax.fill_between(t, mean - sd, mean + sd, color="grey", alpha=0.3, label="± 1 std")
        ax.legend(loc="upper right", fontsize="x-small", ncols=min(4, r.shape[1] + 2))
    else:
        ax.text(0.5, 0.5, "no rater traces", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)


def _draw_signals(ax, t: np.ndarray, signals: Mapping[str, np.ndarray], *, normalize) -> None:
    """Difficulty signals ``[T]`` over time, z-scored when ``normalize``."""
    for label, y in signals.items():
        ax.plot(t, _zscore(y) if normalize else y, linewidth=1.0, label=label)
    ax.set_ylabel("difficulty (z-scored)" if normalize else "difficulty")
    ax.set_xlabel("time [s]")
    ax.grid(True, alpha=0.3)
    if signals:
        ax.legend(loc="upper right", fontsize="x-small", ncols=min(4, len(signals)))
    ax.set_xlim(*_xlim(t))


def plot_difficulty(
    path: str | os.PathLike,
    times,
    *,
    difficulty: Mapping[str, np.ndarray],
    ratings: np.ndarray | None,
    pu: np.ndarray | None,
    title: str,
    normalize: bool = True,
    ylabel: str = "rating",
) -> Path:
    """Difficulty signal(s) over time under the raters' traces and spread (two panels).

    Top panel: each rater's trace (thin), their mean and a ±1 standard deviation band
    (the annotated perception uncertainty). Bottom panel, sharing the time axis: the
    difficulty signals (e.g. RE scalar ``E_t``, predicted PU ``u_t``), the predicted PU
    ``pu`` and, with two or more raters, the annotated PU (std over raters, ddof=1).

    Args:
      path: output ``.png`` path.
      times: frame times in seconds, ``[T]``.
      difficulty: label → difficulty signal ``[T]``.
      ratings: rater traces ``[T, K]``, or None.
      pu: predicted perception uncertainty ``[T]``, or None.
      title: figure title.
      normalize: z-score every bottom-panel signal (their scales differ by orders of
        magnitude: a squared RE sum vs a PU); a constant signal is drawn at 0.
      ylabel: y-axis label of the top panel, e.g. ``"arousal"``.

    Returns:
      The written path.

    Raises:
      ValueError: mismatched lengths, ``ratings`` not ``[T, K]``, nothing to plot, or a
        path not ending in ``.png``.
    """
    t = _series(times, "times")
    if not isinstance(difficulty, Mapping):
        raise ValueError(
            f"difficulty must be a dict label -> [T] array, got {type(difficulty).__name__}"
        )
    signals = {str(k): _series(v, f"difficulty[{k!r}]", t.size) for k, v in difficulty.items()}
    if pu is not None:
        signals["PU (predicted)"] = _series(pu, "pu", t.size)
    r = None
    if ratings is not None:
        r = np.asarray(ratings, dtype=np.float64)
        if r.ndim == 1:
            r = r[:, None]
        if r.ndim != 2 or r.shape[0] != t.size or r.shape[1] == 0:
            raise ValueError(f"ratings must be [T={t.size}, K>=1], got shape {np.shape(ratings)}")
        if r.shape[1] >= 2:
            signals["PU (raters' std)"] = np.std(r, axis=1, ddof=1)
    if not signals and r is None:
        raise ValueError("nothing to plot: no difficulty signal, ratings or pu")

    fig = Figure(figsize=(10, 5.6), dpi=_DPI, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    _draw_raters(top, t, r, title=title, ylabel=ylabel)
    _draw_signals(bottom, t, signals, normalize=normalize)
    return _save_png(fig, path)


# ------------------------------------------------------------------- over Predictions


def _reference(preds: Predictions, partition: str):
    s = next((s for s in preds.systems.values() if partition in s.partitions), None)
    if s is None:
        raise ValueError(f"no system has partition {partition!r}")
    return s


def _recording_index(preds: Predictions, partition: str, recording: int | str) -> int:
    names = _reference(preds, partition).names(partition)
    if isinstance(recording, str):
        if recording not in names:
            raise ValueError(f"no recording {recording!r} in {partition!r}; have {list(names)}")
        return names.index(recording)
    if not 0 <= recording < len(names):
        raise ValueError(f"recording index {recording} out of range for {partition!r}")
    return int(recording)


def prediction_traces(
    preds: Predictions,
    path: str | os.PathLike,
    *,
    partition: str,
    recording: int | str = 0,
    labels: Sequence[str] | None = None,
    which: str = "pred_pp",
    dim: str | None = None,
    title: str | None = None,
) -> Path:
    """Gold standard and the systems' predictions ``[T]`` over time for one recording.

    Args:
      preds: the predictions.
      path: output ``.png``.
      partition: e.g. ``"dev"``.
      recording: index or name of the recording within the partition.
      labels: systems to draw (keep it to a few); default all that have ``partition``.
      which: ``"pred_pp"`` (default) or ``"pred"``.
      dim: the dimension; None with a single dimension.
      title: default ``"<dim>, <partition>: <recording>"``.
    """
    i = _recording_index(preds, partition, recording)
    if labels is None:
        labels = [k for k in preds.labels if partition in preds[k].partitions]
    series = {k: preds.series(k, partition, which, dim=dim)[i] for k in labels}
    gold = preds.gold(partition, dim=dim)[i] if preds.has_gold(partition) else None
    d = preds.dims[preds.dim_index(dim)]
    rec = _reference(preds, partition).partitions[partition][i]
    times = np.arange(rec.num_frames) * preds.frame_period
    title = title or f"{d}, {partition}: {rec.name}"
    return plot_predictions(path, times, gold, series, title=title, ylabel=d)


def difficulty_traces(
    preds: Predictions,
    path: str | os.PathLike,
    *,
    partition: str,
    signals: Mapping[str, tuple[str, str]],
    recording: int | str = 0,
    ratings: np.ndarray | None = None,
    pu: np.ndarray | None = None,
    dim: str | None = None,
    title: str | None = None,
    normalize: bool = True,
) -> Path:
    """Difficulty signals (extras) of one recording over time, under the raters' traces.

    Args:
      preds: the predictions.
      path: output ``.png``.
      partition: e.g. ``"dev"``.
      signals: legend label → ``(system label, extras key)`` of a ``[T]`` signal.
      recording: index or name of the recording.
      ratings: the recording's rater traces ``[T, K]`` (not part of Predictions), or None.
      pu: the recording's predicted perception uncertainty ``[T]``, or None.
      dim: y-axis label's dimension; None with a single dimension.
      title: default ``"difficulty signals, <recording>"``.
      normalize: z-score the signals (see :func:`plot_difficulty`).
    """
    i = _recording_index(preds, partition, recording)
    curves = {name: preds[k].extra(partition, key)[i] for name, (k, key) in signals.items()}
    rec = _reference(preds, partition).partitions[partition][i]
    times = np.arange(rec.num_frames) * preds.frame_period
    d = preds.dims[preds.dim_index(dim)]
    title = title or f"difficulty signals, {rec.name}"
    return plot_difficulty(
        path,
        times,
        difficulty=curves,
        ratings=ratings,
        pu=pu,
        title=title,
        normalize=normalize,
        ylabel=d,
    )
