"""Training targets derived from the raters: perception-uncertainty (PU) scaling.

The soft-prediction paper rescales the PU (std over raters, ddof 1) "by z-normalisation to
the range [0, 1]", which cannot be both. Here:

* ``"minmax"`` **(default)**: ``(σ − min) / (max − min)`` with the minimum and maximum of
  the *train* partition; train lies in [0, 1], dev/test may leave it slightly.
* ``"zscore"``: ``(σ − mean) / std`` with train statistics (population std).
* ``"none"``: the raw std over raters.

Predictions are scored on the scale the model was trained on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["PU_SCALINGS", "PUScaler", "fit_pu_scaler"]

PU_SCALINGS = ("minmax", "zscore", "none")
_EPS = 1e-12


@dataclasses.dataclass(frozen=True)
class PUScaler:
    """``scaled = (σ − offset) / scale`` (fitted by :func:`fit_pu_scaler`)."""

    kind: str
    offset: float
    scale: float

    def __call__(self, pu: np.ndarray) -> np.ndarray:
        """Scales ``[T]`` (or any shape) PU values; float32."""
        return ((np.asarray(pu, np.float64) - self.offset) / self.scale).astype(np.float32)

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """Back to the std over raters."""
        return np.asarray(scaled, np.float64) * self.scale + self.offset


def fit_pu_scaler(train_pu: Sequence[np.ndarray], kind: str = "minmax") -> PUScaler:
    """Fits the PU scaling on the train partition's per-recording PU traces.

    Args:
      train_pu: per-recording ``[T_r]`` PU of the train partition.
      kind: ``"minmax"``, ``"zscore"`` or ``"none"``.

    Returns:
      The :class:`PUScaler`; a constant PU gets scale 1 (never divides by zero).

    Raises:
      ValueError: an unknown ``kind``, no values, or a non-finite value.
    """
    if kind not in PU_SCALINGS:
        raise ValueError(f"unknown PU scaling {kind!r}; valid: {list(PU_SCALINGS)}")
    values = np.concatenate([np.ravel(np.asarray(p, np.float64)) for p in train_pu] or [[]])
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("PU scaling needs finite train PU values (std over raters)")
    if kind == "none":
        return PUScaler(kind, 0.0, 1.0)
    if kind == "minmax":
        lo, hi = float(values.min()), float(values.max())
        return PUScaler(kind, lo, hi - lo if hi - lo > _EPS else 1.0)
    std = float(values.std())
    return PUScaler(kind, float(values.mean()), std if std > _EPS else 1.0)
