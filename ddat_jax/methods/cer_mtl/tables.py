"""CER-MTL's outputs: per-dimension predictions, the paper's Tables I–IV (ours beside the
published values), a table of recording-level tests of the paper's claims, and Fig. 2.

Scores are the CCC over the concatenation of the report partition's recordings (AVEC
2016), per dimension. Tests: paired sign-flip permutation test over recordings
(:func:`ddat_jax.stats.paired_permutation_test`, statistic = concatenated CCC of A minus
that of B, one-sided "A > B"; exact when ``2^R`` swaps fit the resamples).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax import metrics, stats
from ddat_jax.experiment.systems import Context, Trained
from ddat_jax.methods.cer_mtl import data as cer_data
from ddat_jax.methods.cer_mtl.plan import Spec, gold_of, specs
from ddat_jax.methods.cer_mtl.settings import SHORT, CERSettings
from ddat_jax.models.cer import context_frames

# The paper's values (Köprü & Erzin): {table: {row: {(loss, dim): CCC}}}; dims Act/Val/Dom.
_L = ("ccc", "pcc", "mse")
PAPER = {
    "creativeit": {
        "I": {
            "Multimodal": dict(
                zip(
                    [(x, d) for x in _L for d in ("Act", "Val", "Dom")],
                    (0.38, 0.16, 0.18, 0.33, 0.16, 0.14, 0.26, 0.07, 0.11),
                    strict=True,
                )
            ),
            "Motion": dict(
                zip(
                    [(x, d) for x in _L for d in ("Act", "Val", "Dom")],
                    (0.15, 0.06, 0.10, 0.14, 0.02, 0.09, 0.12, 0.0, 0.04),
                    strict=True,
                )
            ),
            "Speech": dict(
                zip(
                    [(x, d) for x in _L for d in ("Act", "Val", "Dom")],
                    (0.37, 0.13, 0.18, 0.32, 0.13, 0.18, 0.23, 0.08, 0.06),
                    strict=True,
                )
            ),
        },
        "III": {
            "MTL": {"Act": 0.38, "Val": 0.16, "Dom": 0.18},
            "STL": {"Act": 0.31, "Val": 0.10, "Dom": 0.16},
        },
        "IV": {
            20: {"Act": 0.38, "Val": 0.16, "Dom": 0.18},
            40: {"Act": 0.42, "Val": 0.16, "Dom": 0.18},
            60: {"Act": 0.45, "Val": 0.16, "Dom": 0.18},
        },
    },
    "recola": {
        "I": {
            "Multimodal": dict(
                zip(
                    [(x, d) for x in _L for d in ("Act", "Val")],
                    (0.66, 0.34, 0.49, 0.24, 0.50, 0.21),
                    strict=True,
                )
            ),
            "Facial Attributes": dict(
                zip(
                    [(x, d) for x in _L for d in ("Act", "Val")],
                    (0.15, 0.06, 0.09, 0.18, 0.22, 0.19),
                    strict=True,
                )
            ),
            "Speech": dict(
                zip(
                    [(x, d) for x in _L for d in ("Act", "Val")],
                    (0.61, 0.32, 0.34, 0.13, 0.49, 0.19),
                    strict=True,
                )
            ),
        },
        "III": {"MTL": {"Act": 0.66, "Val": 0.34}, "STL": {"Act": 0.62, "Val": 0.27}},
        "IV": {
            20: {"Act": 0.66, "Val": 0.34},
            40: {"Act": 0.74, "Val": 0.35},
            60: {"Act": 0.79, "Val": 0.37},
        },
    },
}


def _short(dim: str) -> str:
    return SHORT.get(dim, dim[:3].title())


def per_dim(ctx: Context, trained: Trained, spec: Spec, part: str) -> dict[str, list]:
    """``{dim: per-recording [T] predictions}`` of one system on ``part``."""
    s: CERSettings = ctx.settings
    left, _ = context_frames(spec.window, s.stride, s.causal)
    lengths = [r.num_frames for r in ctx.corpus.partitions[part]]
    recs = cer_data.unchunk(trained.outputs[part]["emotion"], lengths, s.chunk, left)
    return {d: [r[:, i] for r in recs] for i, d in enumerate(spec.dims)}


def prediction(ctx: Context, trained, name: str, outputs, part: str):
    """The generic tables' predictions: the system's first task, per recording ``[T, 1]``."""
    spec = {p.name: p for p in specs(ctx.settings)}[name]
    t = trained[name]
    return [p[:, None] for p in per_dim(ctx, t, spec, part)[spec.dims[0]]], None


def report_parts(ctx: Context) -> tuple[str, ...]:
    """The partitions the paper tables score: every fold's, or ``settings.report``."""
    s: CERSettings = ctx.settings
    return tuple(ctx.corpus.partitions) if s.folds else (s.report,)


def _scores(ctx, trained) -> dict[str, dict[str, float]]:
    """``{system: {dim: CCC}}``: the mean over the report partitions of the CCC over the
    concatenation of each partition's recordings (one partition without folds)."""
    parts = report_parts(ctx)
    per = [_part_scores(ctx, trained, p) for p in parts]
    return {n: {d: float(np.mean([x[n][d] for x in per])) for d in per[0][n]} for n in per[0]}


def _part_scores(ctx, trained, part) -> dict[str, dict[str, float]]:
    out = {}
    for spec in specs(ctx.settings):
        preds = per_dim(ctx, trained[spec.name], spec, part)
        recs = ctx.corpus.partitions[part]
        out[spec.name] = {
            d: metrics.ccc(
                np.concatenate(p), np.concatenate([gold_of(r, ctx.corpus, d) for r in recs])
            )
            for d, p in preds.items()
        }
    return out


def _paper(s: CERSettings, table: str):
    return PAPER.get(s.paper, {}).get(table, {})


def loss_table(s: CERSettings, scores) -> pd.DataFrame:
    """Tables I/II: rows = modality sets; columns ``<LOSS> loss <Dim>`` ours and paper."""
    paper = _paper(s, "I")
    rows = {}
    for v, label in enumerate(s.variant_labels):
        row = {}
        for loss in s.losses:
            sc = next(
                scores[p.name]
                for p in specs(s)
                if p.kind == "mtl" and p.variant == v and p.loss == loss and p.window == s.window
            )
            for d in s.dims:
                row[f"{loss.upper()} loss {_short(d)}"] = sc[d]
                row[f"{loss.upper()} loss {_short(d)} paper"] = paper.get(label, {}).get(
                    (loss, _short(d)), np.nan
                )
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def mtl_stl_table(s: CERSettings, scores) -> pd.DataFrame | None:
    """Table III: MTL vs STL (multimodal, first loss, N = windows[0])."""
    if not s.stl:
        return None
    paper = _paper(s, "III")
    mtl = next(
        p
        for p in specs(s)
        if p.kind == "mtl" and p.variant == 0 and p.loss == s.losses[0] and p.window == s.window
    )
    stl = {p.dims[0]: p for p in specs(s) if p.kind == "stl"}
    rows = {"MTL": {}, "STL": {}}
    for d in s.dims:
        for row, value in (("MTL", scores[mtl.name][d]), ("STL", scores[stl[d].name][d])):
            rows[row][_short(d)] = value
            rows[row][f"{_short(d)} paper"] = paper.get(row, {}).get(_short(d), np.nan)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def window_table(s: CERSettings, scores) -> pd.DataFrame:
    """Table IV: the multimodal MTL network (first loss) for every N."""
    paper = _paper(s, "IV")
    rows = {}
    for p in specs(s):
        if p.kind == "mtl" and p.variant == 0 and p.loss == s.losses[0]:
            rows[p.window] = {}
            for d in s.dims:
                rows[p.window][_short(d)] = scores[p.name][d]
                rows[p.window][f"{_short(d)} paper"] = paper.get(p.window, {}).get(
                    _short(d), np.nan
                )
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("N")


def _claims(s: CERSettings) -> list[tuple[str, str, str, str]]:
    """``(claim, system A, system B, dim)``: the paper's effects, A expected above B."""
    sp = specs(s)
    mtl = {(p.variant, p.loss, p.window): p.name for p in sp if p.kind == "mtl"}
    out = []
    order = [x for x in ("ccc", "pcc", "mse") if x in s.losses]
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]]
    for v, label in enumerate(s.variant_labels):
        for a, b in pairs:
            for d in s.dims:
                claim = f"{label}: {a.upper()} loss > {b.upper()} loss"
                out.append((claim, mtl[v, a, s.window], mtl[v, b, s.window], d))
    if s.stl:
        stl = {p.dims[0]: p.name for p in sp if p.kind == "stl"}
        for d in s.dims:
            out.append(("MTL > STL", mtl[0, s.losses[0], s.window], stl[d], d))
    for n in s.windows[1:]:
        for d in s.dims:
            out.append(
                (f"N={n} > N={s.window}", mtl[0, s.losses[0], n], mtl[0, s.losses[0], s.window], d)
            )
    return out


def claims_table(ctx: Context, trained, parts) -> pd.DataFrame:
    """ΔCCC and the one-sided recording-level permutation p of each claim of the paper,
    over the recordings of ``parts`` pooled (out-of-fold predictions with folds)."""
    s: CERSettings = ctx.settings
    by_name = {p.name: p for p in specs(s)}
    recs = [r for p in parts for r in ctx.corpus.partitions[p]]
    cache: dict[str, dict] = {}
    rows = []
    for claim, a, b, d in _claims(s):
        for n in (a, b):
            if n not in cache:
                per = [per_dim(ctx, trained[n], by_name[n], p) for p in parts]
                cache[n] = {k: [x for q in per for x in q[k]] for k in per[0]}
        gold = [gold_of(r, ctx.corpus, d) for r in recs]
        test = stats.paired_permutation_test(
            cache[a][d],
            cache[b][d],
            gold,
            metric="ccc",
            aggregate="concat",
            alternative="greater",
            n_resamples=s.significance_resamples,
            seed=ctx.seed,
        )
        rows.append(
            {
                "claim": claim,
                "dim": _short(d),
                "A": trained[a].label,
                "B": trained[b].label,
                "ΔCCC (A−B)": float(test.difference),
                "p (A > B)": float(test.p_value),
                "recordings": len(recs),
            }
        )
    columns = ["claim", "dim", "A", "B", "ΔCCC (A−B)", "p (A > B)", "recordings"]
    return pd.DataFrame(rows, columns=columns).set_index("claim")


def paper_tables(ctx: Context, preds, trained: Mapping[str, Trained]) -> dict:
    """Tables I/II (loss × modality), III (MTL vs STL), IV (N) and the claims' tests."""
    s: CERSettings = ctx.settings
    parts = report_parts(ctx)
    part = f"mean over {len(parts)} folds of the" if s.folds else s.report
    scores = _scores(ctx, trained)
    where = f"{part} CCC (concatenated recordings), ours beside the paper's ('paper', at N = 20)"
    n = f"N = {s.window}, t = {s.stride} frames ({'causal' if s.causal else 'centred'})"
    out = {
        "cer_table_losses": (
            loss_table(s, scores),
            f"Tables I/II: MTL network per modality set and loss; {n}; {where}.",
        ),
        "cer_table4_window": (
            window_table(s, scores),
            f"Table IV: multimodal MTL, {s.losses[0].upper()} loss, per N; {where}.",
        ),
        "cer_claims": (
            claims_table(ctx, trained, parts),
            f"The paper's claims on {'+'.join(parts)}: ΔCCC and one-sided paired permutation "
            "test over recordings (statistic: concatenated CCC of A − B).",
        ),
    }
    t3 = mtl_stl_table(s, scores)
    if t3 is not None:
        out["cer_table3_mtl_stl"] = (
            t3,
            f"Table III: MTL vs STL, multimodal, {s.losses[0].upper()} loss, {n}; {where}.",
        )
    return out


def rolling_ccc(pred: np.ndarray, gold: np.ndarray, window: int) -> np.ndarray:
    """CCC over the previous ``window`` frames at every frame (NaN before ``window``)."""
    out = np.full(len(pred), np.nan)
    for i in range(window, len(pred) + 1):
        out[i - 1] = metrics.ccc(pred[i - window : i], gold[i - window : i])
    return out


def paper_figures(ctx: Context, preds, trained, folder: Path) -> list:
    """Fig. 2: the multimodal MTL predictions per loss over ``figure_frames`` frames of the
    first report recording, with the rolling CCC over the previous ``rolling`` frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s: CERSettings = ctx.settings
    part = report_parts(ctx)[0]
    rec = ctx.corpus.partitions[part][0]
    sp = [p for p in specs(s) if p.kind == "mtl" and p.variant == 0 and p.window == s.window]
    span = min(s.figure_frames + s.rolling, rec.num_frames)
    sl = slice(rec.num_frames // 2 - span // 2, rec.num_frames // 2 - span // 2 + span)
    t = rec.times[sl]
    fig, axes = plt.subplots(2, len(s.dims), figsize=(5 * len(s.dims), 6), squeeze=False)
    for j, d in enumerate(s.dims):
        gold = gold_of(rec, ctx.corpus, d)[sl]
        axes[0, j].plot(t, gold, "k", lw=2, label="gold")
        for p in sp:
            pred = per_dim(ctx, trained[p.name], p, part)[d][0][sl]
            axes[0, j].plot(t, pred, lw=1, label=f"{p.loss.upper()} loss")
            axes[1, j].plot(t, rolling_ccc(pred, gold, s.rolling), lw=1, label=p.loss.upper())
        axes[0, j].set_title(f"{rec.name}: {d}")
        axes[1, j].set_ylabel(f"CCC over previous {s.rolling} frames")
        axes[1, j].set_xlabel("time [s]")
        axes[0, j].legend(fontsize=7)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cer_fig2_predictions.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]
