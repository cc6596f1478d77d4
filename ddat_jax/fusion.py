"""Late fusion by linear regression, and DDAT's dynamic tuning, fitted on dev.

Late fusion (DDAT paper, Sec. III-E, Eq. 11): the predictions ``y_i`` of several streams
(modalities and/or models) are combined as

.. math::  y_t = \\varepsilon + \\sum_i \\gamma_i \\, y_{i,t},

with ``ε`` and ``γ_i`` estimated on the development partition and applied to test. The AVEC
2016 baseline does the same with Weka ``LinearRegression -S 1 -C -R 1.0E-8``
(``multimodal_pred.m``, step 6 of the AVEC 2016 baseline): no attribute selection,
no collinear-attribute elimination, ridge ``1e-8``. Weka (``LinearRegression.doRegression``)
standardises every attribute (mean, sample std), solves
``(ZᵀZ + ridge·I) β = Zᵀy`` without penalising the intercept, and maps ``β`` back to the
original scale; :func:`fit_linear_fusion` does the same (``standardize=True``), solved as
the augmented least-squares problem ``[Z; √ridge·I] β ≈ [y − ȳ; 0]`` with
``numpy.linalg.lstsq``. With ``ridge=0`` it is ordinary least squares.

Dynamic tuning (Eq. 12): each stream is re-fitted with its difficulty signal ``d``,

.. math::  y'_{i,t} = \\varepsilon + \\gamma_i \\, y_{i,t} + \\gamma_d \\, d_{i,t},

where ``d`` is the RE scalar ``E_t`` or the PU ``u_t`` (a ``[T]`` stream), or a vector
``e_t`` (a ``[T, r]`` stream, one coefficient per column). :func:`fit_dynamic_tuning` is
:func:`fit_linear_fusion` on the two streams ``pred`` and ``difficulty``.

Data layout: a stream is a ``list`` of per-recording arrays ``[T_i]`` or ``[T_i, k]``;
every stream and the gold standard have the same recordings with the same lengths. All
frames of all recordings are pooled for the regression.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LinearFusion", "fit_dynamic_tuning", "fit_linear_fusion"]

Streams = Sequence[Sequence[np.ndarray]] | Mapping[str, Sequence[np.ndarray]]


@dataclass(frozen=True)
class LinearFusion:
    """A fitted linear combination ``y = intercept + Σ_j coefs[j] · column_j``.

    Attributes:
        intercept: ``ε``.
        coefs: one coefficient per column, streams in order, the columns of a ``[T, k]``
            stream consecutive (``γ_i``; ``γ_d`` for dynamic tuning).
        names: stream names, in order.
        widths: columns per stream (1 for a ``[T]`` stream; ``k`` for ``[T, k]``).
        vector: per stream, whether it was given as ``[T, k]`` (kept so that
            :meth:`predict` accepts the same shapes it was fitted on).
    """

    intercept: float
    coefs: tuple[float, ...]
    names: tuple[str, ...]
    widths: tuple[int, ...]
    vector: tuple[bool, ...]

    def __post_init__(self):
        object.__setattr__(self, "intercept", float(self.intercept))
        object.__setattr__(self, "coefs", tuple(float(c) for c in self.coefs))
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "vector", tuple(bool(v) for v in self.vector))
        if not (len(self.names) == len(self.widths) == len(self.vector)):
            raise ValueError(
                f"names, widths and vector must have one entry per stream; got "
                f"{len(self.names)}, {len(self.widths)}, {len(self.vector)}"
            )
        if sum(self.widths) != len(self.coefs):
            raise ValueError(
                f"coefs has {len(self.coefs)} entries but the widths {self.widths} "
                f"sum to {sum(self.widths)}"
            )
        if not all(math.isfinite(c) for c in (self.intercept, *self.coefs)):
            raise ValueError("intercept and coefs must be finite")

    def coef(self, name: str) -> np.ndarray:
        """The coefficients of stream ``name``: shape ``[]`` for ``[T]``, ``[k]`` for ``[T, k]``."""
        if name not in self.names:
            raise ValueError(f"unknown stream {name!r}; streams: {list(self.names)}")
        i = self.names.index(name)
        start = sum(self.widths[:i])
        c = np.asarray(self.coefs[start : start + self.widths[i]])
        return c if self.vector[i] else c[0]

    def predict(self, streams: Streams) -> list[np.ndarray]:
        """Applies the fusion, e.g. to test.

        Args:
            streams: a dict keyed by :attr:`names` (any order) or a list in the order of
                :attr:`names`; each a list of per-recording ``[T_i]`` (or ``[T_i, k]``)
                arrays, shaped as at fitting time.

        Returns:
            A list of ``[T_i]`` float64 arrays.
        """
        names, cols, vector = _as_streams(streams, self.names)
        for name, c, vec, width, want_vec in zip(
            names, cols, vector, self.widths, self.vector, strict=True
        ):
            if c[0].shape[1] != width or vec != want_vec:
                got = f"[T, {c[0].shape[1]}]" if vec else "[T]"
                want = f"[T, {width}]" if want_vec else "[T]"
                raise ValueError(f"stream {name!r} has recordings shaped {got}; expected {want}")
        n_rec = _check_lengths(names, cols, None)
        coefs = np.asarray(self.coefs)
        out = []
        for r in range(n_rec):
            x = np.concatenate([c[r] for c in cols], axis=1)
            out.append(self.intercept + x @ coefs)
        return out

    def to_dict(self) -> dict:
        """Returns a JSON-serialisable dict."""
        return {
            "intercept": self.intercept,
            "coefs": list(self.coefs),
            "names": list(self.names),
            "widths": list(self.widths),
            "vector": list(self.vector),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> LinearFusion:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ``ValueError``."""
        expected = {"intercept", "coefs", "names", "widths", "vector"}
        if set(d) != expected:
            raise ValueError(
                f"LinearFusion.from_dict expects keys {sorted(expected)}; "
                f"missing {sorted(expected - set(d))}, unknown {sorted(set(d) - expected)}"
            )
        return cls(
            intercept=d["intercept"],
            coefs=tuple(d["coefs"]),
            names=tuple(d["names"]),
            widths=tuple(d["widths"]),
            vector=tuple(d["vector"]),
        )


def _as_recording(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (1, 2):
        raise ValueError(f"{what} must be [T] or [T, k], got shape {a.shape}")
    if a.shape[0] == 0 or (a.ndim == 2 and a.shape[1] == 0):
        raise ValueError(f"{what} is empty (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or Inf")
    return a


def _as_partition(xs, what: str) -> tuple[list[np.ndarray], bool]:
    """Validates a stream; returns its recordings as ``[T_i, k]`` and whether it was 2-D."""
    if isinstance(xs, np.ndarray):
        raise ValueError(
            f"{what} must be a list of per-recording arrays, got one array of shape "
            f"{xs.shape}; wrap a single recording as [array]"
        )
    if isinstance(xs, str | bytes):
        raise ValueError(f"{what} must be a list of per-recording arrays, got a string")
    try:
        xs = list(xs)
    except TypeError as err:
        raise ValueError(f"{what} must be a list of per-recording arrays") from err
    if not xs:
        raise ValueError(f"{what} is empty; expected at least one recording")
    recs = [_as_recording(x, f"{what}[{r}]") for r, x in enumerate(xs)]
    for r, x in enumerate(recs[1:], start=1):
        if x.ndim != recs[0].ndim or x.shape[1:] != recs[0].shape[1:]:
            raise ValueError(
                f"{what}[{r}] has shape {x.shape} but {what}[0] has {recs[0].shape}; every "
                "recording of a stream needs the same number of columns"
            )
    vector = recs[0].ndim == 2
    return [x if vector else x[:, None] for x in recs], vector


def _as_streams(streams, expected_names=None):
    """Returns ``(names, cols, vector)``: cols[i] is stream i as a list of ``[T_r, k_i]``."""
    if isinstance(streams, Mapping):
        names = tuple(str(k) for k in streams)
        values = list(streams.values())
        if expected_names is not None:
            if sorted(names) != sorted(expected_names):
                raise ValueError(
                    f"streams are named {sorted(names)}; expected {sorted(expected_names)}"
                )
            values = [values[names.index(n)] for n in expected_names]
            names = tuple(expected_names)
    else:
        if isinstance(streams, np.ndarray):
            raise ValueError(
                "streams must be a list of streams (each a list of per-recording arrays) or a "
                f"dict name -> stream, got one array of shape {streams.shape}"
            )
        values = list(streams)
        if expected_names is None:
            names = tuple(f"stream{i}" for i in range(len(values)))
        else:
            if len(values) != len(expected_names):
                raise ValueError(
                    f"got {len(values)} streams; expected {len(expected_names)} "
                    f"({list(expected_names)})"
                )
            names = tuple(expected_names)
    if not values:
        raise ValueError("no streams given; expected at least one")
    parsed = [_as_partition(v, f"stream {n!r}") for n, v in zip(names, values, strict=True)]
    return names, [p[0] for p in parsed], tuple(p[1] for p in parsed)


def _check_lengths(names, cols, gold) -> int:
    n_rec = len(cols[0])
    for name, c in zip(names, cols, strict=True):
        if len(c) != n_rec:
            raise ValueError(
                f"stream {name!r} has {len(c)} recordings but stream {names[0]!r} has {n_rec}"
            )
    if gold is not None and len(gold) != n_rec:
        raise ValueError(f"gold has {len(gold)} recordings but the streams have {n_rec}")
    for r in range(n_rec):
        t = cols[0][r].shape[0] if gold is None else gold[r].shape[0]
        ref = f"stream {names[0]!r}" if gold is None else "gold"
        for name, c in zip(names, cols, strict=True):
            if c[r].shape[0] != t:
                raise ValueError(
                    f"recording {r}: stream {name!r} has {c[r].shape[0]} frames but {ref} "
                    f"has {t}; expected equal lengths"
                )
    return n_rec


def fit_linear_fusion(
    streams: Streams,
    gold: Sequence[np.ndarray],
    *,
    ridge: float = 1e-8,
    standardize: bool = True,
) -> LinearFusion:
    """Fits ``y = ε + Σ γ_i y_i`` by (ridge-stabilised) least squares over all frames.

    Args:
        streams: a dict name → stream, or a list of streams (named ``stream0``, …); a stream
            is a list of per-recording ``[T_i]`` or ``[T_i, k]`` arrays.
        gold: per-recording gold standard, a list of ``[T_i]`` arrays.
        ridge: added to the diagonal of ``ZᵀZ`` (Weka ``-R``; default ``1e-8`` as in the AVEC
            2016 baseline); 0 gives ordinary least squares. The intercept is not penalised.
        standardize: regress on standardised columns (``(x − mean) / std``, sample std) as
            Weka does, so ``ridge`` acts on standardised coefficients; ``False`` penalises
            the raw coefficients (the columns are still centred for the intercept). A
            constant column is left unscaled and gets coefficient 0 (or the minimum-norm
            solution when ``ridge = 0``).

    Returns:
        The fitted :class:`LinearFusion`.
    """
    if not (isinstance(ridge, int | float) and math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    names, cols, vector = _as_streams(streams)
    if len(set(names)) != len(names):
        raise ValueError(f"stream names must be unique, got {list(names)}")
    gold, gold_is_2d = _as_partition(gold, "gold")
    if gold_is_2d:
        raise ValueError(f"gold recordings must be 1-D [T], got shape {gold[0].shape}")
    _check_lengths(names, cols, gold)

    x = np.concatenate([np.concatenate(rec, axis=1) for rec in zip(*cols, strict=True)], axis=0)
    y = np.concatenate([g[:, 0] for g in gold])
    n, k = x.shape
    mean_x, mean_y = x.mean(axis=0), y.mean()
    z = x - mean_x
    if standardize and n > 1:
        sd = x.std(axis=0, ddof=1)
        sd = np.where(sd > 0.0, sd, 1.0)  # constant column: leave it (all zeros) unscaled
    else:
        sd = np.ones(k)
    z = z / sd
    if ridge > 0:
        a = np.concatenate([z, math.sqrt(ridge) * np.eye(k)], axis=0)
        b = np.concatenate([y - mean_y, np.zeros(k)])
    else:
        a, b = z, y - mean_y
    beta, *_ = np.linalg.lstsq(a, b, rcond=None)
    coefs = beta / sd
    intercept = mean_y - float(coefs @ mean_x)
    return LinearFusion(
        intercept=intercept,
        coefs=tuple(coefs),
        names=names,
        widths=tuple(c[0].shape[1] for c in cols),
        vector=vector,
    )


def fit_dynamic_tuning(
    pred: Sequence[np.ndarray],
    difficulty: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    *,
    ridge: float = 1e-8,
    standardize: bool = True,
) -> LinearFusion:
    """Fits DDAT's dynamic tuning ``y'_t = ε + γ·y_t + γ_d·d_t`` for one stream (Eq. 12).

    Args:
        pred: per-recording predictions of the stream, a list of ``[T_i]`` arrays.
        difficulty: per-recording difficulty, ``[T_i]`` (RE scalar ``E_t`` or PU ``u_t``) or
            ``[T_i, r]`` (RE vector ``e_t``; one ``γ_d`` per column).
        gold: per-recording gold standard, a list of ``[T_i]`` arrays.
        ridge: see :func:`fit_linear_fusion`.
        standardize: see :func:`fit_linear_fusion`.

    Returns:
        A :class:`LinearFusion` with streams ``("pred", "difficulty")``; apply it with
        ``model.predict({"pred": p, "difficulty": d})``. ``model.coef("pred")`` is ``γ`` and
        ``model.coef("difficulty")`` is ``γ_d``.
    """
    pred_recs, pred_is_2d = _as_partition(pred, "pred")
    if pred_is_2d:
        raise ValueError(f"pred recordings must be 1-D [T], got shape {pred_recs[0].shape}")
    return fit_linear_fusion(
        {"pred": pred, "difficulty": difficulty}, gold, ridge=ridge, standardize=standardize
    )
