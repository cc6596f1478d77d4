"""Score tables over :class:`~ddat_jax.predictions.Predictions`: CCC with significance, RMSE.

Every number comes from :mod:`ddat_jax.metrics` and :mod:`ddat_jax.stats`; nothing here
re-implements a metric. Rows follow the systems' table order; columns follow the
partitions in order of first appearance. One table covers one dimension (``dim``; None
when the predictions have a single one).

CCC aggregation: ``"P CCC"`` is the AVEC 2016 statistic, one CCC over the concatenation of
all recordings of partition ``P`` (population statistics); ``"P CCC (rec. mean)"`` is the
AVEC 2018 statistic, the mean of the per-recording CCCs.

Significance (:func:`ccc_table`): ``comparisons`` names, per row, a baseline per role
(``{"DDAT-RE sum": {"mtl": "MTL-RE", "stl": "STL"}}``). Per role the table reports the
one-tailed Fisher r-to-z test on the two concatenated CCCs with ``N`` = frames (the
paper's test; it overstates significance as frames are autocorrelated and paired) and the
one-sided paired permutation test over recordings. ``mark_by`` picks the test that sets the
marks (:data:`DEFAULT_MARKS`: ``*`` vs MTL, ``†`` vs STL). The test runs on ``test`` when
both systems have test labels, else on ``dev`` (column ``sig. partition``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ddat_jax import metrics, stats
from ddat_jax.predictions import Predictions

__all__ = [
    "CCC_LEGEND",
    "DEFAULT_MARKS",
    "MARK_BY",
    "WHICH",
    "ccc_columns",
    "ccc_table",
    "check_comparisons",
    "compare_pair",
    "dims_table",
    "rmse_table",
    "significance_columns",
]

DEFAULT_MARKS = {"mtl": "*", "stl": "†"}
MARK_BY = ("fisher", "permutation", "both")
WHICH = ("pred", "pred_pp")

CCC_LEGEND = (
    "CCC: one concordance correlation coefficient over the concatenation of all "
    "recordings of the partition (AVEC 2016; population statistics). "
    "CCC (rec. mean): mean of the per-recording CCCs (AVEC 2018). "
    "n/a: not available (no labels for that partition, or no such test)."
)

_TEST_TEXT = {
    "fisher": "the one-tailed Fisher r-to-z test on the CCCs with N = frames (as the paper)",
    "permutation": "the one-sided paired permutation test over recordings",
    "both": "both the Fisher r-to-z test and the permutation test",
}


def check_which(which: str) -> None:
    """Raises ValueError unless ``which`` is ``"pred"`` or ``"pred_pp"``."""
    if which not in WHICH:
        raise ValueError(f"unknown which={which!r}; valid: {', '.join(WHICH)}")


def ccc_columns(
    preds: Predictions, label: str, *, which: str = "pred", dim: str | None = None
) -> dict[str, float]:
    """``{"P CCC": concat CCC, "P CCC (rec. mean)": mean CCC}`` of one system, per partition.

    Scores ``preds.series(label, P, which)`` (per recording ``[T_r]``) against the gold;
    NaN where the system lacks ``P`` or ``P`` is unlabelled.
    """
    row = {}
    for p in preds.partition_names():
        c = m = math.nan
        if p in preds[label].partitions and preds.has_gold(p):
            x, gold = preds.series(label, p, which, dim=dim), preds.gold(p, dim=dim)
            c = metrics.ccc(x, gold, aggregate="concat")
            m = metrics.ccc(x, gold, aggregate="mean")
        row[f"{p} CCC"], row[f"{p} CCC (rec. mean)"] = c, m
    return row


def check_comparisons(
    preds: Predictions, comparisons: Mapping[str, Mapping[str, str]], marks: Mapping[str, str]
) -> list[str]:
    """Validates ``comparisons`` (row → {role: baseline}); returns the roles in marks order."""
    if not isinstance(comparisons, Mapping):
        raise ValueError("comparisons must be a dict system -> {role: baseline system}")
    labels, roles = list(preds.labels), []
    for system, cmp in comparisons.items():
        if system not in labels:
            raise ValueError(
                f"comparisons names system {system!r}, which is not in systems ({labels})"
            )
        if not isinstance(cmp, Mapping):
            raise ValueError(f"comparisons[{system!r}] must be a dict role -> baseline system")
        for role, base in cmp.items():
            if role not in marks:
                raise ValueError(
                    f"comparisons[{system!r}] uses role {role!r}; valid roles (keys of "
                    f"marks): {list(marks)}"
                )
            if base not in labels:
                raise ValueError(
                    f"comparisons[{system!r}][{role!r}] = {base!r} is not in systems ({labels})"
                )
            if base == system:
                raise ValueError(f"comparisons[{system!r}][{role!r}]: a system vs itself")
            if role not in roles:
                roles.append(role)
    return sorted(roles, key=list(marks).index)


def _sig_partition(preds: Predictions, system: str, base: str, chosen: str | None) -> str:
    def labelled(p: str) -> bool:
        return preds.has_gold(p) and all(p in preds[s].partitions for s in (system, base))

    part = chosen if chosen is not None else ("test" if labelled("test") else "dev")
    if not labelled(part):
        raise ValueError(
            f"cannot test {system!r} against {base!r} on {part!r}: one of them has "
            "no such partition or no labels for it"
        )
    return part


def compare_pair(pa, pb, gold, *, n_resamples: int, seed: int) -> dict[str, float]:
    """Fisher r-to-z test and paired permutation test of "A better than B" on one partition.

    Args:
      pa, pb: per-recording predictions ``[T_r]`` of system A and baseline B.
      gold: per-recording gold ``[T_r]``.

    Returns:
      ``{"z", "fisher_p", "perm_p"}``; NaN where a test is undefined (a CCC that is NaN,
      ``N <= 3`` frames for Fisher, fewer than 2 recordings for the permutation test).
    """
    n_frames = int(sum(g.size for g in gold))
    out = {"z": math.nan, "fisher_p": math.nan, "perm_p": math.nan}
    ca = metrics.ccc(pa, gold, aggregate="concat")
    cb = metrics.ccc(pb, gold, aggregate="concat")
    if np.isfinite(ca) and np.isfinite(cb) and n_frames > 3:
        out["z"], out["fisher_p"] = stats.fisher_z_test(ca, cb, n_frames, n_frames)
    if len(gold) >= 2:
        out["perm_p"] = stats.paired_permutation_test(
            pa,
            pb,
            gold,
            metric="ccc",
            aggregate="concat",
            alternative="greater",
            n_resamples=n_resamples,
            seed=seed,
        ).p_value
    return out


def significance_columns(
    preds: Predictions,
    label: str,
    cmp: Mapping[str, str],
    roles: list[str],
    *,
    which: str,
    dim: str | None,
    options: Mapping,
) -> dict[str, object]:
    """Per role ``R``: ``"vs R"``, ``"R Fisher z"``, ``"R Fisher p"``, ``"R perm. p"``; then
    ``"sig. partition"``, ``"sig. frames"``, ``"sig. recordings"``, ``"marks"``.

    ``options`` holds ``alpha``, ``marks``, ``mark_by``, ``sig_partition``, ``n_resamples``
    and ``seed`` (see :func:`ccc_table`).
    """
    row: dict[str, object] = {}
    sig_part, n_frames, n_rec, row_marks = None, math.nan, math.nan, ""
    for role in roles:
        base = cmp.get(role)
        row[f"vs {role}"] = base if base is not None else ""
        row[f"{role} Fisher z"] = row[f"{role} Fisher p"] = row[f"{role} perm. p"] = math.nan
        if base is None:
            continue
        part = _sig_partition(preds, label, base, options["sig_partition"])
        if sig_part is not None and sig_part != part:
            raise ValueError(f"{label!r}: comparisons on different partitions")
        sig_part, gold = part, preds.gold(part, dim=dim)
        n_frames, n_rec = int(sum(g.size for g in gold)), len(gold)
        res = compare_pair(
            preds.series(label, part, which, dim=dim),
            preds.series(base, part, which, dim=dim),
            gold,
            n_resamples=options["n_resamples"],
            seed=options["seed"],
        )
        row[f"{role} Fisher z"], row[f"{role} Fisher p"] = res["z"], res["fisher_p"]
        row[f"{role} perm. p"] = res["perm_p"]
        alpha = options["alpha"]
        significant = {
            "fisher": res["fisher_p"] < alpha,
            "permutation": res["perm_p"] < alpha,
            "both": res["fisher_p"] < alpha and res["perm_p"] < alpha,
        }[options["mark_by"]]
        if significant:  # NaN compares False: an undefined test never marks
            row_marks += options["marks"][role]
    row["sig. partition"] = sig_part if sig_part is not None else ""
    row["sig. frames"], row["sig. recordings"], row["marks"] = n_frames, n_rec, row_marks
    return row


def _ccc_legend(which, roles, marks, *, alpha, mark_by, n_resamples) -> str:
    stage = "before" if which == "pred" else "after"
    legend = (
        f"Predictions {stage} post-processing ({which}). {CCC_LEGEND} "
        "Significance on the partition in 'sig. partition' (test where labelled, else dev): "
        "'Fisher p' = one-tailed Fisher r-to-z test of the concatenated CCCs with "
        "N = 'sig. frames' frames (overstates significance: frames are autocorrelated and "
        "paired); 'perm. p' = one-sided paired permutation test swapping the two systems' "
        f"predictions per recording (concatenated CCC, {n_resamples} resamples or exact). "
    )
    if roles:
        mark_text = "; ".join(
            f"{marks[r]}: significantly better than the {r.upper()} baseline named in 'vs {r}'"
            for r in roles
        )
        legend += f"Marks at p < {alpha:g} by {_TEST_TEXT[mark_by]}: {mark_text}."
    return legend


def _ccc_formats(columns) -> dict[str, str]:
    return {
        **{c: ".3f" for c in columns if "CCC" in c},
        **{c: ".2f" for c in columns if c.endswith("Fisher z")},
        **{c: ".3g" for c in columns if c.endswith(" p")},
        "sig. frames": "d",
        "sig. recordings": "d",
    }


def ccc_table(
    preds: Predictions,
    *,
    which: str = "pred",
    dim: str | None = None,
    comparisons: Mapping[str, Mapping[str, str]] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 9999,
    seed: int = 0,
    marks: Mapping[str, str] | None = None,
    mark_by: str = "fisher",
    sig_partition: str | None = None,
) -> pd.DataFrame:
    """CCC per system and partition with significance against named baselines.

    DDAT's Table I is ``which="pred"``, Table II ``which="pred_pp"``.

    Args:
      preds: the systems (rows, in order); each partition's recordings ``[T_r, D]``.
      which: ``"pred"`` (before post-processing) or ``"pred_pp"`` (after).
      dim: the dimension to score; None with a single dimension.
      comparisons: row label → ``{role: baseline label}``; roles are keys of ``marks``.
      alpha: significance level of the marks (one-tailed).
      n_resamples: random swaps of the permutation test when ``2**R`` exceeds it (else
        exact over all ``2**R`` swaps).
      seed: seed of the permutation test.
      marks: role → mark; default :data:`DEFAULT_MARKS`.
      mark_by: ``"fisher"`` (default), ``"permutation"`` or ``"both"``.
      sig_partition: partition to test on; None: ``"test"`` if labelled for both, else dev.

    Returns:
      DataFrame indexed by ``"system"``: per partition ``"P CCC"``, ``"P CCC (rec. mean)"``
      (:func:`ccc_columns`), then :func:`significance_columns`; ``attrs["legend"]`` and
      ``attrs["formats"]`` for :func:`ddat_jax.evaluation.io.write_table`.
    """
    check_which(which)
    if mark_by not in MARK_BY:
        raise ValueError(f"unknown mark_by={mark_by!r}; valid: {', '.join(MARK_BY)}")
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    marks = dict(DEFAULT_MARKS if marks is None else marks)
    comparisons = {} if comparisons is None else comparisons
    roles = check_comparisons(preds, comparisons, marks)
    options = dict(alpha=alpha, marks=marks, mark_by=mark_by, sig_partition=sig_partition)
    options.update(n_resamples=n_resamples, seed=seed)
    rows = [
        ccc_columns(preds, label, which=which, dim=dim)
        | significance_columns(
            preds, label, comparisons.get(label, {}), roles, which=which, dim=dim, options=options
        )
        for label in preds.labels
    ]
    df = pd.DataFrame(rows, index=pd.Index(list(preds.labels), name="system"))
    df = df.astype({"sig. frames": "Int64", "sig. recordings": "Int64"})
    df.attrs["legend"] = _ccc_legend(
        which, roles, marks, alpha=alpha, mark_by=mark_by, n_resamples=n_resamples
    )
    df.attrs["formats"] = _ccc_formats(df.columns)
    return df


def rmse_table(preds: Predictions, *, which: str = "pred", dim: str | None = None) -> pd.DataFrame:
    """RMSE per system and partition (the soft-prediction paper's measure).

    Returns:
      DataFrame indexed by ``"system"`` with, per partition ``P``, ``"P RMSE"`` (over the
      concatenation of the recordings, i.e. over all frames) and ``"P RMSE (rec. mean)"``
      (mean of per-recording RMSEs); NaN without labels.
    """
    check_which(which)
    rows = []
    for label in preds.labels:
        row = {}
        for p in preds.partition_names():
            c = m = math.nan
            if p in preds[label].partitions and preds.has_gold(p):
                x, gold = preds.series(label, p, which, dim=dim), preds.gold(p, dim=dim)
                c = metrics.rmse(x, gold, aggregate="concat")
                m = metrics.rmse(x, gold, aggregate="mean")
            row[f"{p} RMSE"], row[f"{p} RMSE (rec. mean)"] = c, m
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.Index(list(preds.labels), name="system"))
    stage = "before" if which == "pred" else "after"
    df.attrs["legend"] = (
        f"Predictions {stage} post-processing ({which}). RMSE: root mean squared error over "
        "all frames of the partition (the concatenation of its recordings). "
        "RMSE (rec. mean): mean of the per-recording RMSEs. n/a: no labels."
    )
    df.attrs["formats"] = {c: ".4f" for c in df.columns}
    return df


def dims_table(
    preds: Predictions, *, which: str = "pred", aggregate: str = "concat"
) -> pd.DataFrame:
    """CCC per system, partition and dimension, and the mean over dimensions.

    For multi-dimensional predictions (e.g. arousal, valence, dominance of one model).

    Args:
      preds: the systems; recordings ``[T_r, D]``.
      which: ``"pred"`` or ``"pred_pp"``.
      aggregate: ``"concat"`` (AVEC 2016 CCC over the concatenation) or ``"mean"`` (mean
        of per-recording CCCs, AVEC 2018).

    Returns:
      DataFrame indexed by ``"system"`` with, per partition ``P``, ``"P <dim> CCC"`` per
      dim and ``"P mean CCC"`` (unweighted mean over the dims); NaN without labels.
    """
    check_which(which)
    if aggregate not in ("concat", "mean"):
        raise ValueError(f"unknown aggregate={aggregate!r}; valid: concat, mean")
    suffix = "CCC" if aggregate == "concat" else "CCC (rec. mean)"
    rows = []
    for label in preds.labels:
        per_dim = {d: ccc_columns(preds, label, which=which, dim=d) for d in preds.dims}
        row = {}
        for p in preds.partition_names():
            values = [per_dim[d][f"{p} {suffix}"] for d in preds.dims]
            row |= {f"{p} {d} CCC": v for d, v in zip(preds.dims, values, strict=True)}
            row[f"{p} mean CCC"] = float(np.mean(values))
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.Index(list(preds.labels), name="system"))
    how = (
        "over the concatenation of the recordings (AVEC 2016)"
        if aggregate == "concat"
        else ("as the mean of the per-recording CCCs (AVEC 2018)")
    )
    df.attrs["legend"] = (
        f"CCC per dimension {how}, {which} predictions; mean: unweighted mean over the "
        f"dimensions {', '.join(preds.dims)}. n/a: no labels."
    )
    df.attrs["formats"] = {c: ".3f" for c in df.columns}
    return df
