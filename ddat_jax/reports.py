"""Legacy: result tables of the DDAT experiment over nested dicts (paper Tables I–IV).

Superseded by :mod:`ddat_jax.evaluation` over the typed
:class:`~ddat_jax.predictions.Predictions` (``ccc_table``, ``fusion_table``,
``difficulty_table``, ``write_table``; ``ddat_jax.predictions.write_predictions``), which
produce the same tables on the same inputs (``tests/test_reports.py`` checks it). Kept
until the DDAT pipeline has moved there; ``write_table``, ``to_markdown`` and ``slugify``
are already the evaluation layer's.

Host-side pandas/NumPy code that turns the predictions of trained systems into the
paper's tables, writes them as CSV + Markdown, and writes the per-recording predictions.
Every number comes from :mod:`ddat_jax.metrics`, :mod:`ddat_jax.stats` and
:mod:`ddat_jax.fusion`; nothing here re-implements a metric.

Input format (plain dicts)
--------------------------
``systems: dict[str, dict[str, dict]]`` -- system label (``"STL"``, ``"MTL-RE"``,
``"DDAT-RE sum"``, …) → partition (``"dev"``, ``"test"``) → ::

    {"names":   list[str],               # recording names, e.g. ["dev_1", ...]
     "pred":    list[np.ndarray [T_r]],  # raw model predictions, one array per recording
     "pred_pp": list[np.ndarray [T_r]],  # post-processed predictions (or None)
     "gold":    list[np.ndarray [T_r]] | None}   # None where labels are withheld (AVEC test)

Row order of every table is the dict order. :func:`fusion_table` takes the same format
with one more optional key, ``"difficulty"`` (a list of ``[T_r]`` or ``[T_r, r]``
arrays: the stream's RE scalar / PU, or the RE vector).

``comparisons: dict[str, dict[str, str]]`` -- system → ``{role: baseline system}``, e.g.
``{"DDAT-RE sum": {"mtl": "MTL-RE", "stl": "STL"}, "MTL-RE": {"stl": "STL"}}``. Each role
has a significance mark (:data:`DEFAULT_MARKS`: ``*`` vs MTL, ``†`` vs STL).

CCC aggregation
---------------
``CCC`` columns are the AVEC 2016 statistic: one CCC over the concatenation of all
recordings of the partition (``metrics.ccc(..., aggregate="concat")``, population
statistics). ``CCC (rec. mean)`` columns are the AVEC 2018 statistic, the mean of the
per-recording CCCs. Each table carries a legend saying so (``df.attrs["legend"]``),
which :func:`write_table` puts under the Markdown table.

Significance
------------
The paper marks "DDAT significantly better than MTL" with a one-tailed Fisher r-to-z test
on the CCCs with ``N`` = number of frames (:func:`ddat_jax.stats.fisher_z_test`; the
paper's mark glyph is lost in the text extraction, we use ``*``; the paper's text also
claims significance over the baseline, for which we add ``†``). Frames are strongly
autocorrelated and both systems are scored on the same targets, so that test overstates
significance; each table therefore also reports the one-sided paired permutation test over
recordings (:func:`ddat_jax.stats.paired_permutation_test`, ``aggregate="concat"``).
``mark_by`` chooses which test drives the marks (``"fisher"``, the paper's, by default).
Tests are run on test when both systems have test labels, otherwise on dev; the column
``sig. partition`` says which.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ddat_jax import atomic, metrics, stats
from ddat_jax.evaluation.io import check_file_stem, slugify, to_markdown, write_table
from ddat_jax.fusion import LinearFusion, fit_dynamic_tuning, fit_linear_fusion

__all__ = [
    "DEFAULT_MARKS",
    "DT_SUFFIX",
    "MARK_BY",
    "FusionResult",
    "difficulty_analysis",
    "fusion_table",
    "results_table",
    "slugify",
    "to_markdown",
    "write_predictions",
    "write_table",
]

DEFAULT_MARKS = {"mtl": "*", "stl": "†"}
MARK_BY = ("fisher", "permutation", "both")
WHICH = ("pred", "pred_pp")
DT_SUFFIX = ":dt"

CCC_LEGEND = (
    "CCC: one concordance correlation coefficient over the concatenation of all "
    "recordings of the partition (AVEC 2016; population statistics). "
    "CCC (rec. mean): mean of the per-recording CCCs (AVEC 2018). "
    "n/a: not available (no labels for that partition, or no such test)."
)


# ------------------------------------------------------------------------------- validation


def _recordings(x, what: str) -> list[np.ndarray]:
    if isinstance(x, np.ndarray) or isinstance(x, str | bytes) or not isinstance(x, Sequence):
        raise ValueError(f"{what} must be a list of per-recording arrays, got {type(x).__name__}")
    if not x:
        raise ValueError(f"{what} is empty; expected at least one recording")
    out = []
    for r, a in enumerate(x):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"{what}[{r}] must be a 1-D array [T], got shape {a.shape}")
        out.append(a)
    return out


def _check_same_lengths(a: list[np.ndarray], b: list[np.ndarray], what_a: str, what_b: str):
    if len(a) != len(b):
        raise ValueError(f"{what_a} has {len(a)} recordings but {what_b} has {len(b)}")
    for r, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.shape != y.shape:
            raise ValueError(
                f"recording {r}: {what_a} has {x.shape[0]} frames but {what_b} has "
                f"{y.shape[0]}; expected equal lengths"
            )


class _Part(NamedTuple):
    names: list[str]
    pred: list[np.ndarray] | None
    pred_pp: list[np.ndarray] | None
    gold: list[np.ndarray] | None
    difficulty: list[np.ndarray] | None


def _parse_part(part, what: str, *, with_difficulty: bool = False) -> _Part:
    if not isinstance(part, Mapping):
        raise ValueError(
            f"{what} must be a dict with keys names, pred, pred_pp, gold; got {type(part).__name__}"
        )
    allowed = {"names", "pred", "pred_pp", "gold"} | ({"difficulty"} if with_difficulty else set())
    unknown = set(part) - allowed
    if unknown:
        raise ValueError(f"{what} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "names" not in part:
        raise ValueError(f"{what} lacks 'names' (the list of recording names)")
    names = part["names"]
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"{what}['names'] must be a list of str, got {type(names).__name__}")
    names = [str(n) for n in names]
    if not names:
        raise ValueError(f"{what}['names'] is empty; expected at least one recording")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}['names'] has duplicates: {names}")

    def get(key):
        x = part.get(key)
        if x is None:
            return None
        recs = _recordings(x, f"{what}[{key!r}]")
        if len(recs) != len(names):
            raise ValueError(
                f"{what}[{key!r}] has {len(recs)} recordings but 'names' has {len(names)}"
            )
        return recs

    pred, pred_pp, gold = get("pred"), get("pred_pp"), get("gold")
    ref = next(((k, v) for k, v in (("gold", gold), ("pred", pred)) if v is not None), None)
    if ref is not None:
        for key, v in (("pred", pred), ("pred_pp", pred_pp), ("gold", gold)):
            if v is not None:
                _check_same_lengths(v, ref[1], f"{what}[{key!r}]", f"{what}[{ref[0]!r}]")
    difficulty = None
    if with_difficulty and part.get("difficulty") is not None:
        d = part["difficulty"]
        if isinstance(d, np.ndarray) or isinstance(d, str) or not isinstance(d, Sequence):
            raise ValueError(f"{what}['difficulty'] must be a list of per-recording arrays")
        difficulty = [np.asarray(a, dtype=np.float64) for a in d]
        if len(difficulty) != len(names):
            raise ValueError(
                f"{what}['difficulty'] has {len(difficulty)} recordings but 'names' has "
                f"{len(names)}"
            )
    return _Part(names, pred, pred_pp, gold, difficulty)


def _parse_systems(systems, *, with_difficulty: bool = False) -> dict[str, dict[str, _Part]]:
    if not isinstance(systems, Mapping) or not systems:
        raise ValueError("systems must be a non-empty dict: system -> partition -> dict")
    out = {}
    for label, parts in systems.items():
        if not isinstance(parts, Mapping) or not parts:
            raise ValueError(
                f"systems[{label!r}] must be a non-empty dict partition -> "
                "{names, pred, pred_pp, gold}"
            )
        out[str(label)] = {
            str(p): _parse_part(v, f"systems[{label!r}][{p!r}]", with_difficulty=with_difficulty)
            for p, v in parts.items()
        }
    return out


def _partitions(parsed: Mapping[str, Mapping[str, _Part]]) -> list[str]:
    seen: list[str] = []
    for parts in parsed.values():
        for p in parts:
            if p not in seen:
                seen.append(p)
    return seen


def _check_which(which: str) -> None:
    if which not in WHICH:
        raise ValueError(f"unknown which={which!r}; valid: {', '.join(WHICH)}")


def _preds(part: _Part, which: str, what: str) -> list[np.ndarray]:
    preds = getattr(part, which)
    if preds is None:
        raise ValueError(f"{what} has no {which!r} predictions (needed for which={which!r})")
    return preds


def _all_finite(*lists) -> bool:
    return all(np.all(np.isfinite(a)) for xs in lists for a in xs)


def _ccc_pair(preds, gold) -> tuple[float, float]:
    return (
        metrics.ccc(preds, gold, aggregate="concat"),
        metrics.ccc(preds, gold, aggregate="mean"),
    )


def _same_gold(a: _Part, b: _Part) -> bool:
    if a.names != b.names or a.gold is None or b.gold is None:
        return False
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a.gold, b.gold, strict=True))


# -------------------------------------------------------------------------- Tables I and II


def results_table(
    systems: Mapping[str, Mapping[str, Mapping]],
    *,
    which: str = "pred",
    comparisons: Mapping[str, Mapping[str, str]] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 9999,
    seed: int = 0,
    marks: Mapping[str, str] | None = None,
    mark_by: str = "fisher",
    sig_partition: str | None = None,
) -> pd.DataFrame:
    """Tables I (``which="pred"``) and II (``which="pred_pp"``): CCC per system and partition.

    Args:
      systems: system → partition → ``{"names", "pred", "pred_pp", "gold"}`` (module
        docstring); rows follow the dict order.
      which: ``"pred"`` (before post-processing, Table I) or ``"pred_pp"`` (after, Table II).
      comparisons: system → ``{role: baseline system}``; roles must be keys of ``marks``.
        Systems without an entry get no test.
      alpha: significance level of the marks (one-tailed, "system better than baseline").
      n_resamples: random swaps of the permutation test when ``2**R`` exceeds it (else the
        test is exact over all ``2**R`` swaps).
      seed: seed of the permutation test.
      marks: role → mark; default :data:`DEFAULT_MARKS` (``*`` vs MTL, ``†`` vs STL).
      mark_by: which p-value must be below ``alpha`` for a mark: ``"fisher"`` (the paper's
        Fisher r-to-z test, default), ``"permutation"`` or ``"both"``.
      sig_partition: partition to test on; ``None`` picks ``"test"`` when both systems have
        test labels, else ``"dev"``.

    Returns:
      A DataFrame indexed by system (index name ``"system"``) with columns, per partition
      ``P`` (in order of first appearance): ``"P CCC"`` (concatenated, AVEC 2016) and
      ``"P CCC (rec. mean)"`` (AVEC 2018), NaN without labels; then per role ``R``:
      ``"vs R"`` (baseline name), ``"R Fisher z"``, ``"R Fisher p"``, ``"R perm. p"``;
      then ``"sig. partition"``, ``"sig. frames"`` (the Fisher ``N``), ``"sig. recordings"``
      and ``"marks"``. ``df.attrs["legend"]`` states the aggregation, the tests and the
      marks; ``df.attrs["formats"]`` holds Markdown number formats for :func:`write_table`.

    Raises:
      ValueError: malformed ``systems``/``comparisons``, unknown roles or options, or a
        baseline scored on different recordings or gold standard than its system.
    """
    _check_which(which)
    if mark_by not in MARK_BY:
        raise ValueError(f"unknown mark_by={mark_by!r}; valid: {', '.join(MARK_BY)}")
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    marks = dict(DEFAULT_MARKS if marks is None else marks)
    comparisons = {} if comparisons is None else comparisons
    parsed = _parse_systems(systems)
    partitions = _partitions(parsed)

    if not isinstance(comparisons, Mapping):
        raise ValueError("comparisons must be a dict system -> {role: baseline system}")
    roles: list[str] = []
    for system, cmp in comparisons.items():
        if system not in parsed:
            raise ValueError(
                f"comparisons names system {system!r}, which is not in systems ({list(parsed)})"
            )
        if not isinstance(cmp, Mapping):
            raise ValueError(f"comparisons[{system!r}] must be a dict role -> baseline system")
        for role, base in cmp.items():
            if role not in marks:
                raise ValueError(
                    f"comparisons[{system!r}] uses role {role!r}; valid roles (keys of "
                    f"marks): {list(marks)}"
                )
            if base not in parsed:
                raise ValueError(
                    f"comparisons[{system!r}][{role!r}] = {base!r} is not in systems "
                    f"({list(parsed)})"
                )
            if base == system:
                raise ValueError(f"comparisons[{system!r}][{role!r}]: a system vs itself")
            if role not in roles:
                roles.append(role)
    roles.sort(key=list(marks).index)

    rows = []
    for system, parts in parsed.items():
        row: dict[str, object] = {}
        for p in partitions:
            part = parts.get(p)
            c, m = math.nan, math.nan
            if part is not None and part.gold is not None:
                c, m = _ccc_pair(_preds(part, which, f"systems[{system!r}][{p!r}]"), part.gold)
            row[f"{p} CCC"] = c
            row[f"{p} CCC (rec. mean)"] = m
        sig_part, n_frames, n_rec, row_marks = None, math.nan, math.nan, ""
        cmp = comparisons.get(system, {})
        for role in roles:
            base = cmp.get(role)
            row[f"vs {role}"] = base if base is not None else ""
            row[f"{role} Fisher z"] = math.nan
            row[f"{role} Fisher p"] = math.nan
            row[f"{role} perm. p"] = math.nan
            if base is None:
                continue
            part_name = sig_partition
            if part_name is None:
                has_test = all(
                    "test" in parsed[s] and parsed[s]["test"].gold is not None
                    for s in (system, base)
                )
                part_name = "test" if has_test else "dev"
            a, b = parsed[system].get(part_name), parsed[base].get(part_name)
            if a is None or b is None or a.gold is None or b.gold is None:
                raise ValueError(
                    f"cannot test {system!r} against {base!r} on {part_name!r}: one of them has "
                    "no such partition or no labels for it"
                )
            if not _same_gold(a, b):
                raise ValueError(
                    f"{system!r} and {base!r} must be scored on the same recordings and gold "
                    f"standard on {part_name!r}; their names or gold differ"
                )
            if sig_part is not None and sig_part != part_name:
                raise ValueError(f"{system!r}: comparisons on different partitions")
            sig_part = part_name
            pa = _preds(a, which, f"systems[{system!r}][{part_name!r}]")
            pb = _preds(b, which, f"systems[{base!r}][{part_name!r}]")
            n_frames = int(sum(g.size for g in a.gold))
            n_rec = len(a.gold)
            if not _all_finite(pa, pb, a.gold):
                continue  # a NaN prediction (diverged run) has no defined CCC: no test, no mark
            ca = metrics.ccc(pa, a.gold, aggregate="concat")
            cb = metrics.ccc(pb, b.gold, aggregate="concat")
            p_fisher = math.nan
            if np.isfinite(ca) and np.isfinite(cb) and n_frames > 3:
                z, p_fisher = stats.fisher_z_test(ca, cb, n_frames, n_frames)
                row[f"{role} Fisher z"] = z
                row[f"{role} Fisher p"] = p_fisher
            p_perm = math.nan
            if n_rec >= 2:
                p_perm = stats.paired_permutation_test(
                    pa,
                    pb,
                    a.gold,
                    metric="ccc",
                    aggregate="concat",
                    alternative="greater",
                    n_resamples=n_resamples,
                    seed=seed,
                ).p_value
                row[f"{role} perm. p"] = p_perm
            significant = {
                "fisher": p_fisher < alpha,
                "permutation": p_perm < alpha,
                "both": p_fisher < alpha and p_perm < alpha,
            }[mark_by]
            if significant:  # NaN compares False: an undefined test never marks
                row_marks += marks[role]
        row["sig. partition"] = sig_part if sig_part is not None else ""
        row["sig. frames"] = n_frames
        row["sig. recordings"] = n_rec
        row["marks"] = row_marks
        rows.append(row)

    df = pd.DataFrame(rows, index=pd.Index(list(parsed), name="system"))
    df = df.astype({"sig. frames": "Int64", "sig. recordings": "Int64"})
    stage = "before" if which == "pred" else "after"
    mark_text = "; ".join(
        f"{marks[r]}: significantly better than the {r.upper()} baseline named in 'vs {r}'"
        for r in roles
    )
    test_text = {
        "fisher": "the one-tailed Fisher r-to-z test on the CCCs with N = frames (as the paper)",
        "permutation": "the one-sided paired permutation test over recordings",
        "both": "both the Fisher r-to-z test and the permutation test",
    }[mark_by]
    legend = (
        f"Predictions {stage} post-processing ({which}). {CCC_LEGEND} "
        "Significance on the partition in 'sig. partition' (test where labelled, else dev): "
        "'Fisher p' = one-tailed Fisher r-to-z test of the concatenated CCCs with "
        "N = 'sig. frames' frames (overstates significance: frames are autocorrelated and "
        "paired); 'perm. p' = one-sided paired permutation test swapping the two systems' "
        f"predictions per recording (concatenated CCC, {n_resamples} resamples or exact). "
    )
    if roles:
        legend += f"Marks at p < {alpha:g} by {test_text}: {mark_text}."
    df.attrs["legend"] = legend
    df.attrs["formats"] = {
        **{c: ".3f" for c in df.columns if "CCC" in c},
        **{c: ".2f" for c in df.columns if c.endswith("Fisher z")},
        **{c: ".3g" for c in df.columns if c.endswith(" p")},
        "sig. frames": "d",
        "sig. recordings": "d",
    }
    return df


# ------------------------------------------------------------------------------- Table III


def _scalar_signal(x, what: str) -> list[np.ndarray]:
    recs = []
    for r, a in enumerate(x):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1:
            raise ValueError(
                f"{what}[{r}] must be a per-frame scalar [T], got shape {a.shape}; reduce an RE "
                "vector to the scalar E_t first (ddat_jax.ddat.difficulty.re_scalar)"
            )
        recs.append(a)
    return recs


def difficulty_analysis(
    re: Sequence[np.ndarray] | None,
    pu: Sequence[np.ndarray] | None,
    pred_baseline: Sequence[np.ndarray],
    pred_ddat: Sequence[np.ndarray] | Mapping[str, Sequence[np.ndarray]],
    gold: Sequence[np.ndarray],
) -> pd.DataFrame:
    """Table III for one partition: PCCs among RE, PU and the per-frame improvement Δc.

    .. math::
        \\Delta c_t = |\\hat y^{bs}_t - y_t| - |\\hat y^{DDAT}_t - y_t|

    (positive where DDAT is closer to the gold standard). Each PCC is pooled over all
    frames of all recordings (``metrics.pcc(..., aggregate="concat")``).

    Args:
      re: per-recording RE scalar ``E_t`` (list of ``[T_r]``), or None.
      pu: per-recording (predicted) perception uncertainty ``u_t``, or None.
      pred_baseline: per-recording baseline (STL) predictions ``ŷ_bs``.
      pred_ddat: per-recording DDAT predictions ``ŷ_DDAT`` -- one list used for both rows,
        or ``{"re": list, "pu": list}`` so that PCC(RE, Δc) uses the RE-based DDAT system
        and PCC(PU, Δc) the PU-based one, as in the paper.
      gold: per-recording gold standard ``y``.

    Returns:
      A DataFrame indexed by ``"PCC(RE, Δc)"``, ``"PCC(PU, Δc)"``, ``"PCC(RE, PU)"`` (rows
      whose signal is None are left out) with columns ``"PCC"`` (pooled over frames),
      ``"frames"`` and ``"recordings"``.

    Raises:
      ValueError: if recordings or lengths differ, a signal is not ``[T]``, or both ``re``
        and ``pu`` are None.
    """
    if re is None and pu is None:
        raise ValueError("difficulty_analysis needs re, pu or both; got neither")
    gold_l = _recordings(gold, "gold")
    base = _recordings(pred_baseline, "pred_baseline")
    _check_same_lengths(base, gold_l, "pred_baseline", "gold")
    if isinstance(pred_ddat, Mapping):
        unknown = set(pred_ddat) - {"re", "pu"}
        if unknown:
            raise ValueError(
                f"pred_ddat as a dict takes keys 're' and 'pu'; got unknown {sorted(unknown)}"
            )
        ddat = {k: _recordings(v, f"pred_ddat[{k!r}]") for k, v in pred_ddat.items()}
    else:
        one = _recordings(pred_ddat, "pred_ddat")
        ddat = {"re": one, "pu": one}
    for k, v in ddat.items():
        _check_same_lengths(v, gold_l, f"pred_ddat[{k!r}]", "gold")
    signals = {}
    for key, x in (("re", re), ("pu", pu)):
        if x is None:
            continue
        if isinstance(x, np.ndarray) or not isinstance(x, Sequence):
            raise ValueError(f"{key} must be a list of per-recording arrays")
        sig = _scalar_signal(x, key)
        _check_same_lengths(sig, gold_l, key, "gold")
        signals[key] = sig

    def delta_c(pred_d):
        return [np.abs(b - g) - np.abs(d - g) for b, d, g in zip(base, pred_d, gold_l, strict=True)]

    rows, index = [], []
    for key, label in (("re", "RE"), ("pu", "PU")):
        if key in signals:
            if key not in ddat:
                raise ValueError(f"pred_ddat has no {key!r} entry but {key} is given")
            index.append(f"PCC({label}, Δc)")
            rows.append(metrics.pcc(signals[key], delta_c(ddat[key]), aggregate="concat"))
    if "re" in signals and "pu" in signals:
        index.append("PCC(RE, PU)")
        rows.append(metrics.pcc(signals["re"], signals["pu"], aggregate="concat"))
    n_frames = int(sum(g.size for g in gold_l))
    df = pd.DataFrame(
        {"PCC": rows, "frames": [n_frames] * len(rows), "recordings": [len(gold_l)] * len(rows)},
        index=pd.Index(index, name="pair"),
    )
    df.attrs["legend"] = (
        "PCC pooled over all frames of all recordings of the partition. "
        "Δc = |ŷ_bs − y| − |ŷ_DDAT − y| per frame (positive: DDAT closer to the gold "
        "standard); RE = reconstruction-error scalar E_t, PU = predicted perception "
        "uncertainty u_t."
    )
    df.attrs["formats"] = {"PCC": ".3f", "frames": "d", "recordings": "d"}
    return df


# -------------------------------------------------------------------------------- Table IV


class FusionResult(NamedTuple):
    """Result of :func:`fusion_table`.

    Attributes:
      table: DataFrame, one row per fusion row (see :func:`fusion_table`).
      fusions: row label → the fitted :class:`~ddat_jax.fusion.LinearFusion` (None for a
        single-member row, which is not re-fitted).
      tunings: stream key → its fitted dynamic tuning (only streams used with ``:dt``).
      predictions: row label → partition → list of per-recording ``[T_r]`` fused
        predictions (for :func:`write_predictions` or :func:`ddat_jax.figures.plot_predictions`).
    """

    table: pd.DataFrame
    fusions: dict[str, LinearFusion | None]
    tunings: dict[str, LinearFusion]
    predictions: dict[str, dict[str, list[np.ndarray]]]


def fusion_table(
    streams: Mapping[str, Mapping[str, Mapping]],
    rows: Mapping[str, Sequence[str]],
    *,
    which: str = "pred_pp",
    fit_partition: str = "dev",
    ridge: float = 1e-8,
    standardize: bool = True,
) -> FusionResult:
    """Table IV: late fusion by linear regression and dynamic tuning, fitted on dev.

    A *stream* is one system on one feature set (e.g. ``"audio/DDAT-RE sum"``). A *member*
    of a row is a stream key, or the key followed by ``":dt"`` for its dynamically tuned
    version ``y' = ε + γ·y + γ_d·d`` (:func:`~ddat_jax.fusion.fit_dynamic_tuning` with the
    stream's ``"difficulty"``, fitted on ``fit_partition``, once per stream). A row with
    several members is one simple linear regression ``y = ε + Σ γ_i y_i`` over all its
    members (:func:`~ddat_jax.fusion.fit_linear_fusion`, fitted on ``fit_partition`` and
    applied to every partition); a row with one member reports that member as it is (a
    raw stream, or a tuned stream -- the paper's per-stream dynamic tuning, Fig. 2).

    The paper's Table IV rows map to members as follows (``A``, ``V``, ``G`` the three
    feature sets): ``P_re`` = ``[A/RE, V/RE, G/RE]``; ``P_re + P_bs`` = those and
    ``[A/STL, V/STL, G/STL]`` fused in one regression (flat, not a fusion of fusions);
    ``P_re,dt`` = ``[A/RE:dt, V/RE:dt, G/RE:dt]``.

    Args:
      streams: stream key → partition → ``{"names", "pred", "pred_pp", "gold",
        "difficulty"}`` (the ``systems`` format plus ``"difficulty"``: per-recording
        ``[T_r]`` RE scalar / PU or ``[T_r, r]`` RE vector, needed on every partition
        for ``:dt`` members). Keys must not end with ``":dt"``.
      rows: row label → member list; table rows follow the dict order.
      which: ``"pred_pp"`` (default, post-processed predictions) or ``"pred"``.
      fit_partition: partition the fusion and tuning weights are fitted on (needs labels).
      ridge: ridge of the regressions (Weka ``-R``; see :func:`~ddat_jax.fusion.fit_linear_fusion`).
      standardize: see :func:`~ddat_jax.fusion.fit_linear_fusion`.

    Returns:
      A :class:`FusionResult`. Its table is indexed by row label (index name ``"fusion"``)
      with columns ``"members"``, ``"streams"`` (member count), per partition ``P``:
      ``"P CCC"`` and ``"P CCC (rec. mean)"`` (NaN without labels), and ``"fitted on"``.

    Raises:
      ValueError: unknown members, members on different recordings or gold standards, no
        labels on ``fit_partition``, or ``:dt`` without a difficulty signal.
    """
    _check_which(which)
    parsed = _parse_systems(streams, with_difficulty=True)
    for key in parsed:
        if key.endswith(DT_SUFFIX):
            raise ValueError(f"stream key {key!r} must not end with {DT_SUFFIX!r}")
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError("rows must be a non-empty dict: row label -> list of members")
    partitions = _partitions(parsed)
    if fit_partition not in partitions:
        raise ValueError(f"fit_partition {fit_partition!r} is not among {partitions}")

    def split_member(m: str) -> tuple[str, bool]:
        tuned = m.endswith(DT_SUFFIX)
        key = m[: -len(DT_SUFFIX)] if tuned else m
        if key not in parsed:
            raise ValueError(f"unknown member {m!r}; streams: {list(parsed)} (+ {DT_SUFFIX!r})")
        return key, tuned

    def members_of(label, members) -> list[tuple[str, bool]]:
        if isinstance(members, str) or not isinstance(members, Sequence) or not members:
            raise ValueError(f"rows[{label!r}] must be a non-empty list of members")
        out = [split_member(str(m)) for m in members]
        if len(set(out)) != len(out):
            raise ValueError(f"rows[{label!r}] lists a member twice: {list(members)}")
        return out

    row_members = {str(label): members_of(label, m) for label, m in rows.items()}

    def part_of(key: str, p: str) -> _Part:
        part = parsed[key].get(p)
        if part is None:
            raise ValueError(f"stream {key!r} has no partition {p!r}")
        return part

    def gold_of(keys: Sequence[str], p: str) -> tuple[list[str], list[np.ndarray] | None]:
        first = part_of(keys[0], p)
        for k in keys[1:]:
            other = part_of(k, p)
            if other.names != first.names:
                raise ValueError(
                    f"streams {keys[0]!r} and {k!r} have different recordings on {p!r}: "
                    f"{first.names} vs {other.names}"
                )
            if (first.gold is None) != (other.gold is None) or (
                first.gold is not None and not _same_gold(first, other)
            ):
                raise ValueError(f"streams {keys[0]!r} and {k!r} differ in their gold on {p!r}")
        return first.names, first.gold

    tunings: dict[str, LinearFusion] = {}

    def member_pred(key: str, tuned: bool, p: str) -> list[np.ndarray]:
        part = part_of(key, p)
        pred = _preds(part, which, f"streams[{key!r}][{p!r}]")
        if not tuned:
            return pred
        if part.difficulty is None:
            raise ValueError(f"{key}{DT_SUFFIX} needs streams[{key!r}][{p!r}]['difficulty']")
        if key not in tunings:
            fit = part_of(key, fit_partition)
            if fit.gold is None:
                raise ValueError(f"stream {key!r} has no labels on {fit_partition!r} to fit on")
            if fit.difficulty is None:
                raise ValueError(
                    f"{key}{DT_SUFFIX} needs streams[{key!r}][{fit_partition!r}]['difficulty']"
                )
            tunings[key] = fit_dynamic_tuning(
                _preds(fit, which, f"streams[{key!r}][{fit_partition!r}]"),
                fit.difficulty,
                fit.gold,
                ridge=ridge,
                standardize=standardize,
            )
        return tunings[key].predict({"pred": pred, "difficulty": part.difficulty})

    table_rows, fusions, predictions = [], {}, {}
    for label, members in row_members.items():
        keys = [k for k, _ in members]
        tokens = [k + (DT_SUFFIX if t else "") for k, t in members]
        _, fit_gold = gold_of(keys, fit_partition)
        if fit_gold is None:
            raise ValueError(f"row {label!r}: no labels on {fit_partition!r} to fit on")
        fusion = None
        if len(members) > 1:
            fit_streams = {
                tok: member_pred(k, t, fit_partition)
                for tok, (k, t) in zip(tokens, members, strict=True)
            }
            fusion = fit_linear_fusion(
                fit_streams,
                fit_gold,
                ridge=ridge,
                standardize=standardize,
            )
        fusions[label] = fusion
        predictions[label] = {}
        row: dict[str, object] = {"members": " + ".join(tokens), "streams": len(members)}
        for p in partitions:
            if not all(p in parsed[k] for k in keys):
                row[f"{p} CCC"] = row[f"{p} CCC (rec. mean)"] = math.nan
                continue
            _, gold = gold_of(keys, p)
            outs = {tok: member_pred(k, t, p) for tok, (k, t) in zip(tokens, members, strict=True)}
            fused = fusion.predict(outs) if fusion is not None else outs[tokens[0]]
            predictions[label][p] = fused
            c = m = math.nan
            if gold is not None:
                c, m = _ccc_pair(fused, gold)
            row[f"{p} CCC"], row[f"{p} CCC (rec. mean)"] = c, m
        row["fitted on"] = fit_partition
        table_rows.append(row)

    df = pd.DataFrame(table_rows, index=pd.Index(list(row_members), name="fusion"))
    df.attrs["legend"] = (
        f"Late fusion of {which} predictions by one simple linear regression over the "
        f"listed members (y = ε + Σ γ_i y_i; ridge {ridge:g}), fitted on {fit_partition} "
        "and applied unchanged to every partition; a single-member row is not re-fitted. "
        f"'{DT_SUFFIX}' = dynamically tuned stream y' = ε + γ·y + γ_d·d (d its difficulty "
        f"signal), fitted on {fit_partition}. {CCC_LEGEND}"
    )
    df.attrs["formats"] = {c: ".3f" for c in df.columns if "CCC" in c}
    return FusionResult(df, fusions, tunings, predictions)


# ---------------------------------------------------------------------------------- writing


# One copy of the writers: the evaluation layer's (identical output).
_check_file_stem = check_file_stem


def write_predictions(
    systems: Mapping[str, Mapping[str, Mapping]],
    predictions_dir: str | os.PathLike,
    *,
    frame_period: float = 0.04,
) -> list[Path]:
    """Writes one CSV per system, partition and recording, atomically.

    Layout: ``<predictions_dir>/<slugify(system)>/<partition>/<name>.csv`` with columns
    ``time`` (seconds, ``frame · frame_period`` from 0), ``prediction`` (``pred``),
    ``prediction_pp`` (``pred_pp``) and ``gold``; a missing ``pred_pp`` or ``gold``
    (e.g. unlabelled test) is written as empty cells (NaN when read by pandas), so every
    file has the same columns.

    Args:
      systems: system → partition → ``{"names", "pred", "pred_pp", "gold"}``.
      predictions_dir: output folder (the workdir's ``predictions/``).
      frame_period: seconds per frame (AVEC 2016: 0.04).

    Returns:
      The written paths, in order.

    Raises:
      ValueError: malformed ``systems``, a system without ``pred``, two labels with the same
        slug, unsafe recording or partition names, or a non-positive ``frame_period``.
    """
    if not (
        isinstance(frame_period, int | float) and math.isfinite(frame_period) and frame_period > 0
    ):
        raise ValueError(f"frame_period must be a positive number of seconds, got {frame_period!r}")
    parsed = _parse_systems(systems)
    slugs: dict[str, str] = {}
    for label in parsed:
        s = slugify(label)
        if s in slugs:
            raise ValueError(f"systems {slugs[s]!r} and {label!r} share the folder name {s!r}")
        slugs[s] = label
    root = Path(predictions_dir)
    written = []
    for slug, label in slugs.items():
        for p, part in parsed[label].items():
            p = _check_file_stem(p, "partition name")
            pred = _preds(part, "pred", f"systems[{label!r}][{p!r}]")
            for r, name in enumerate(part.names):
                name = _check_file_stem(name, "recording name")
                n = pred[r].size
                nan = np.full(n, np.nan)
                frame = pd.DataFrame(
                    {
                        "time": np.round(np.arange(n) * float(frame_period), 9),
                        "prediction": pred[r],
                        "prediction_pp": nan if part.pred_pp is None else part.pred_pp[r],
                        "gold": nan if part.gold is None else part.gold[r],
                    }
                )
                path = root / slug / p / f"{name}.csv"
                atomic.write_text(path, frame.to_csv(index=False, lineterminator="\n"))
                written.append(path)
    return written
