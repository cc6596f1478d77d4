"""Difficulty signals vs the per-frame improvement over a baseline (DDAT Table III).

.. math::
    \\Delta c_t = |\\hat y^{bs}_t - y_t| - |\\hat y^{sys}_t - y_t|

is positive where the system is closer to the gold standard than the baseline. A table row
``PCC(S, Δc)`` correlates signal ``S`` (an extras entry of a system, e.g. the RE scalar
``E_t`` or the predicted PU ``u_t``) with that system's ``Δc``; rows ``PCC(S1, S2)``
correlate the signals with each other. Every PCC is pooled over all frames of all
recordings of the partition (``metrics.pcc(..., aggregate="concat")``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ddat_jax import metrics
from ddat_jax.predictions import Predictions

__all__ = ["difficulty_table", "improvement", "scalar_signal"]


def improvement(
    baseline: Sequence[np.ndarray], system: Sequence[np.ndarray], gold: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Per-frame ``Δc = |baseline − gold| − |system − gold|``, per recording ``[T_r]``."""
    return [np.abs(b - g) - np.abs(s - g) for b, s, g in zip(baseline, system, gold, strict=True)]


def scalar_signal(preds: Predictions, label: str, partition: str, key: str) -> list[np.ndarray]:
    """Extras ``key`` of system ``label`` as per-recording ``[T_r]`` (``[T_r, 1]`` squeezed).

    Raises:
      ValueError: the extra is missing or a vector ``[T_r, k>1]`` (reduce it first, e.g.
        the RE vector to the scalar ``E_t`` with ``ddat_jax.methods.ddat.difficulty.re_scalar``).
    """
    out = []
    for a in preds[label].extra(partition, key):
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1:
            raise ValueError(
                f"{label!r}/{partition!r} extras[{key!r}] must be a per-frame scalar [T], got "
                f"shape {a.shape}; reduce an RE vector to the scalar E_t first"
            )
        out.append(a)
    return out


def difficulty_table(
    preds: Predictions,
    *,
    baseline: str,
    signals: Mapping[str, tuple[str, str]],
    partition: str,
    which: str = "pred",
    dim: str | None = None,
) -> pd.DataFrame:
    """PCCs among difficulty signals and the improvement ``Δc`` over a baseline.

    Args:
      preds: the systems; ``partition`` must be labelled.
      baseline: label of the baseline system (``ŷ_bs``, e.g. ``"STL"``).
      signals: signal name → ``(system label, extras key)``: the signal is that system's
        extra, and ``Δc`` is that system's improvement over ``baseline``. E.g.
        ``{"RE": ("DDAT-RE sum", "difficulty"), "PU": ("DDAT-PU", "difficulty")}``.
      partition: the partition to analyse.
      which: ``"pred"`` (default) or ``"pred_pp"``.
      dim: the dimension; None with a single dimension.

    Returns:
      DataFrame indexed by ``"pair"``: ``"PCC(S, Δc)"`` per signal, then ``"PCC(S1, S2)"``
      per pair of signals; columns ``"PCC"``, ``"frames"``, ``"recordings"``.
    """
    if not signals:
        raise ValueError("difficulty_table needs at least one signal")
    gold = preds.gold(partition, dim=dim)
    base = preds.series(baseline, partition, which, dim=dim)
    values: dict[str, list[np.ndarray]] = {}
    index, pccs = [], []
    for name, (label, key) in signals.items():
        values[name] = scalar_signal(preds, label, partition, key)
        delta = improvement(base, preds.series(label, partition, which, dim=dim), gold)
        index.append(f"PCC({name}, Δc)")
        pccs.append(metrics.pcc(values[name], delta, aggregate="concat"))
    for a, b in itertools.combinations(values, 2):
        index.append(f"PCC({a}, {b})")
        pccs.append(metrics.pcc(values[a], values[b], aggregate="concat"))
    n = len(pccs)
    df = pd.DataFrame(
        {"PCC": pccs, "frames": [sum(g.size for g in gold)] * n, "recordings": [len(gold)] * n},
        index=pd.Index(index, name="pair"),
    )
    sources = "; ".join(f"{k} = extras '{key}' of {lab}" for k, (lab, key) in signals.items())
    df.attrs["legend"] = (
        f"PCC pooled over all frames of all recordings of the {partition} partition. "
        f"Δc = |ŷ_bs − y| − |ŷ − y| per frame, baseline {baseline} (positive: the system "
        f"closer to the gold standard); in PCC(S, Δc), ŷ is the system that holds S. {sources}."
    )
    df.attrs["formats"] = {"PCC": ".3f", "frames": "d", "recordings": "d"}
    return df
