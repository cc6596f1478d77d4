"""Late fusion by linear regression and dynamic tuning over :class:`Predictions` (DDAT Table IV).

A *stream* is one system of the predictions (e.g. ``"audio/DDAT-RE sum"`` when several
runs' systems are merged). A *member* of a fusion row is a stream label, or the label
followed by ``":dt"`` for its dynamically tuned version ``y' = ε + γ·y + γ_d·d``
(:func:`ddat_jax.fusion.fit_dynamic_tuning` with the stream's difficulty extra, fitted on
``fit_partition``, once per stream). A row with several members is one simple linear
regression ``y = ε + Σ γ_i y_i`` over its members (:func:`ddat_jax.fusion.fit_linear_fusion`,
fitted on ``fit_partition`` and applied to every partition); a one-member row reports that
member as it is (a raw stream, or a tuned stream).

The paper's Table IV rows (``A``, ``V``, ``G`` the feature sets): ``P_re`` =
``[A/RE, V/RE, G/RE]``; ``P_re + P_bs`` = those and ``[A/STL, V/STL, G/STL]`` in one flat
regression; ``P_re,dt`` = ``[A/RE:dt, V/RE:dt, G/RE:dt]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from ddat_jax.evaluation.tables import CCC_LEGEND, ccc_columns, check_which
from ddat_jax.fusion import LinearFusion, fit_dynamic_tuning, fit_linear_fusion
from ddat_jax.predictions import Predictions, SystemPredictions

__all__ = ["DT_SUFFIX", "FusionResult", "fusion_table", "parse_rows"]

DT_SUFFIX = ":dt"


class FusionResult(NamedTuple):
    """Result of :func:`fusion_table`.

    Attributes:
      table: one row per fusion row (see :func:`fusion_table`).
      fusions: row label → fitted :class:`~ddat_jax.fusion.LinearFusion` (None for a
        one-member row, which is not re-fitted).
      tunings: stream label → its fitted dynamic tuning (streams used with ``:dt`` only).
      predictions: the fused rows as :class:`Predictions` (one dim, the fused one;
        ``pred`` = ``pred_pp`` = the fused ``[T_r, 1]``; gold as the members').
    """

    table: pd.DataFrame
    fusions: dict[str, LinearFusion | None]
    tunings: dict[str, LinearFusion]
    predictions: Predictions


def parse_rows(
    rows: Mapping[str, Sequence[str]], labels: Sequence[str]
) -> dict[str, list[tuple[str, bool]]]:
    """Row label → ``[(stream label, tuned?)]``; checks members exist and do not repeat."""
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError("rows must be a non-empty dict: row label -> list of members")
    for key in labels:
        if key.endswith(DT_SUFFIX):
            raise ValueError(f"stream key {key!r} must not end with {DT_SUFFIX!r}")
    out = {}
    for label, members in rows.items():
        if isinstance(members, str) or not isinstance(members, Sequence) or not members:
            raise ValueError(f"rows[{label!r}] must be a non-empty list of members")
        parsed = []
        for m in map(str, members):
            tuned = m.endswith(DT_SUFFIX)
            key = m[: -len(DT_SUFFIX)] if tuned else m
            if key not in labels:
                raise ValueError(f"unknown member {m!r}; streams: {list(labels)} (+ {DT_SUFFIX!r})")
            parsed.append((key, tuned))
        if len(set(parsed)) != len(parsed):
            raise ValueError(f"rows[{label!r}] lists a member twice: {list(members)}")
        out[str(label)] = parsed
    return out


class _Streams:
    """Per-recording member series ``[T_r]`` of one dim; fits each tuning once."""

    def __init__(self, preds, *, which, dim, fit_partition, difficulty, ridge, standardize):
        self.preds, self.which, self.dim, self.fit = preds, which, dim, fit_partition
        self.difficulty, self.ridge, self.standardize = difficulty, ridge, standardize
        self.tunings: dict[str, LinearFusion] = {}

    def _signal(self, key: str, part: str) -> list[np.ndarray]:
        try:
            return self.preds[key].extra(part, self.difficulty)
        except ValueError as e:
            raise ValueError(f"{key}{DT_SUFFIX} needs a difficulty signal: {e}") from None

    def tuning(self, key: str) -> LinearFusion:
        if key not in self.tunings:
            if not self.preds.has_gold(self.fit):
                raise ValueError(f"stream {key!r} has no labels on {self.fit!r} to fit on")
            self.tunings[key] = fit_dynamic_tuning(
                self.preds.series(key, self.fit, self.which, dim=self.dim),
                self._signal(key, self.fit),
                self.preds.gold(self.fit, dim=self.dim),
                ridge=self.ridge,
                standardize=self.standardize,
            )
        return self.tunings[key]

    def get(self, key: str, tuned: bool, part: str) -> list[np.ndarray]:
        pred = self.preds.series(key, part, self.which, dim=self.dim)
        if not tuned:
            return pred
        difficulty = self._signal(key, part)
        return self.tuning(key).predict({"pred": pred, "difficulty": difficulty})


def _fuse_row(streams: _Streams, label: str, members, partitions):
    """Fits one row on the fit partition; returns (fusion | None, {partition: [T_r] list})."""
    tokens = [_token(k, t) for k, t in members]
    fit = streams.fit
    if not streams.preds.has_gold(fit):
        raise ValueError(f"row {label!r}: no labels on {fit!r} to fit on")
    if not all(fit in streams.preds[k].partitions for k, _ in members):
        raise ValueError(f"row {label!r}: a member has no partition {fit!r}")
    fusion = None
    if len(members) > 1:
        fit_streams = {_token(k, t): streams.get(k, t, fit) for k, t in members}
        fit_gold = streams.preds.gold(fit, dim=streams.dim)
        fusion = fit_linear_fusion(
            fit_streams, fit_gold, ridge=streams.ridge, standardize=streams.standardize
        )
    fused = {}
    for p in partitions:
        if not all(p in streams.preds[k].partitions for k, _ in members):
            continue
        outs = {_token(k, t): streams.get(k, t, p) for k, t in members}
        fused[p] = fusion.predict(outs) if fusion is not None else outs[tokens[0]]
    return fusion, fused


def _fused_system(preds: Predictions, label: str, fused, dim: str | None) -> SystemPredictions:
    d = preds.dim_index(dim)
    ref = {p: next(s for s in preds.systems.values() if p in s.partitions) for p in fused}
    parts = {
        p: {
            "names": ref[p].names(p),
            "pred": xs,
            "gold": ref[p].series(p, "gold", dim=d) if preds.has_gold(p) else None,
        }
        for p, xs in fused.items()
    }
    return SystemPredictions.from_arrays(label, (preds.dims[d],), parts)


def fusion_table(
    preds: Predictions,
    rows: Mapping[str, Sequence[str]],
    *,
    which: str = "pred_pp",
    dim: str | None = None,
    fit_partition: str = "dev",
    difficulty: str = "difficulty",
    ridge: float = 1e-8,
    standardize: bool = True,
) -> FusionResult:
    """Late fusion and dynamic tuning, fitted on ``fit_partition``, scored by CCC.

    Args:
      preds: the streams (systems); ``:dt`` members need extras ``difficulty``
        (``[T_r]`` or ``[T_r, k]``) on the fit partition and every scored partition.
      rows: row label → members (module docstring); rows follow the dict order.
      which: ``"pred_pp"`` (default) or ``"pred"``.
      dim: the dimension to fuse; None with a single dimension.
      fit_partition: partition the regressions are fitted on (needs labels).
      difficulty: extras key of the difficulty signal used by ``:dt``.
      ridge: ridge of the regressions (Weka ``-R``).
      standardize: see :func:`ddat_jax.fusion.fit_linear_fusion`.

    Returns:
      A :class:`FusionResult`; its table is indexed by ``"fusion"`` with columns
      ``"members"``, ``"streams"``, per partition ``"P CCC"`` and ``"P CCC (rec. mean)"``
      (NaN without labels or when a member lacks ``P``), and ``"fitted on"``.
    """
    check_which(which)
    members_of = parse_rows(rows, preds.labels)
    partitions = preds.partition_names()
    if fit_partition not in partitions:
        raise ValueError(f"fit_partition {fit_partition!r} is not among {list(partitions)}")
    streams = _Streams(
        preds,
        which=which,
        dim=dim,
        fit_partition=fit_partition,
        difficulty=difficulty,
        ridge=ridge,
        standardize=standardize,
    )
    table_rows, fusions, systems = [], {}, {}
    for label, members in members_of.items():
        fusions[label], fused = _fuse_row(streams, label, members, partitions)
        systems[label] = _fused_system(preds, label, fused, dim)
        row = {"members": " + ".join(_token(k, t) for k, t in members), "streams": len(members)}
        out = Predictions({label: systems[label]}, preds.frame_period)
        scores = ccc_columns(out, label, which="pred")
        row |= {c: scores.get(c, math.nan) for p in partitions for c in _ccc_names(p)}
        row["fitted on"] = fit_partition
        table_rows.append(row)
    df = pd.DataFrame(table_rows, index=pd.Index(list(members_of), name="fusion"))
    df.attrs["legend"] = _legend(which, ridge, fit_partition)
    df.attrs["formats"] = {c: ".3f" for c in df.columns if "CCC" in c}
    return FusionResult(df, fusions, streams.tunings, Predictions(systems, preds.frame_period))


def _token(key: str, tuned: bool) -> str:
    return key + (DT_SUFFIX if tuned else "")


def _ccc_names(p: str) -> tuple[str, str]:
    return f"{p} CCC", f"{p} CCC (rec. mean)"


def _legend(which: str, ridge: float, fit_partition: str) -> str:
    return (
        f"Late fusion of {which} predictions by one simple linear regression over the "
        f"listed members (y = ε + Σ γ_i y_i; ridge {ridge:g}), fitted on {fit_partition} "
        "and applied unchanged to every partition; a single-member row is not re-fitted. "
        f"'{DT_SUFFIX}' = dynamically tuned stream y' = ε + γ·y + γ_d·d (d its difficulty "
        f"signal), fitted on {fit_partition}. {CCC_LEGEND}"
    )
