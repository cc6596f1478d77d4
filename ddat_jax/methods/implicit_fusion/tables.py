"""Implicit fusion's outputs beyond the generic CCC tables: Table 2 of the paper (RECOLA,
CCC after post-processing, the paper's values beside ours), the α grid and its curves.

One run scores one emotion dimension; :func:`merge_table2` puts the arousal and valence
runs side by side in the paper's full layout (``python -m
ddat_jax.methods.implicit_fusion.table2 RUN_AROUSAL RUN_VALENCE``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax import metrics
from ddat_jax.evaluation import classification as cl
from ddat_jax.experiment.systems import Context, Trained
from ddat_jax.methods.implicit_fusion import plan as plan_lib
from ddat_jax.predictions import Predictions

# Table 2 of the paper (CCC on RECOLA): (row, dimension, modality, partition) -> value.
PAPER_ROWS = (
    "SVR [11]",
    "DNN+Curriculum learning [29]",
    "MTL (RE based)",
    "MTL (PU based)",
    "DDAT (RE based)",
    "DDAT (PU based)",
    "RNN (baseline)",
    "RNN (implicit fusion)",
)
_PAPER_VALUES = {  # arousal audio dev/test, video dev/test, valence audio dev/test, video
    "SVR [11]": (0.796, 0.648, 0.379, 0.272, 0.455, 0.375, 0.612, 0.507),
    "DNN+Curriculum learning [29]": (0.687, 0.591, 0.394, 0.267, 0.159, 0.174, 0.300, 0.269),
    "MTL (RE based)": (0.788, 0.629, 0.502, 0.324, 0.519, 0.331, 0.632, 0.488),
    "MTL (PU based)": (0.803, 0.654, 0.508, 0.327, 0.506, 0.416, 0.643, 0.452),
    "DDAT (RE based)": (0.807, 0.694, 0.544, 0.400, 0.508, 0.422, 0.639, 0.471),
    "DDAT (PU based)": (0.811, 0.664, 0.513, 0.397, 0.498, 0.407, 0.632, 0.501),
    "RNN (baseline)": (0.766, 0.605, 0.499, 0.399, 0.504, 0.381, 0.619, 0.529),
    "RNN (implicit fusion)": (0.769, 0.611, 0.515, 0.413, 0.513, 0.395, 0.622, 0.527),
}
COLUMNS = tuple(
    (dim, mod, part)
    for dim in ("arousal", "valence")
    for mod in ("audio", "video")
    for part in ("dev", "test")
)
PAPER = {
    (row, *col): v
    for row, values in _PAPER_VALUES.items()
    for col, v in zip(COLUMNS, values, strict=True)
}
# DDAT run rows -> paper rows (the first present DDAT-RE variant is shown).
DDAT_ROWS = {
    "MTL (RE based)": ("MTL-RE",),
    "MTL (PU based)": ("MTL-PU",),
    "DDAT (RE based)": ("DDAT-RE sum", "DDAT-RE vector"),
    "DDAT (PU based)": ("DDAT-PU",),
}


def paper_modality(modality: str) -> str:
    """The paper's column of a modality: ``audio`` or ``video`` (any ``video_*`` set)."""
    return "video" if modality.startswith("video") else modality


def prediction(ctx: Context, trained, name: str, outputs, part: str):
    """The main modality's prediction per recording ``[T, 1]`` (no extras): the value of
    a regression, or the arg-max class index of a classifier."""
    if ctx.settings.task == "classification":
        return [np.argmax(o, axis=-1)[:, None].astype(np.float32) for o in outputs["main"]], None
    return [o[:, :1] for o in outputs["main"]], None


def _scores(ctx: Context, outs, recs) -> dict[str, float]:
    """CCC (regression) or macro-F1 and accuracy (classes) of one partition's outputs."""
    if ctx.settings.task != "classification":
        return {"CCC": _ccc(outs["main"], [r.gold for r in recs])}
    pred = np.concatenate([np.argmax(o, axis=-1) for o in outs["main"]])
    gold = np.concatenate([r.gold for r in recs]).astype(int)
    k = ctx.settings.num_classes
    return {"F1": cl.macro_f1(pred, gold, k), "accuracy": cl.accuracy(pred, gold)}


def _ccc(pred: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> float:
    return float(metrics.ccc(np.concatenate([p[:, 0] for p in pred]), np.concatenate(gold)))


def alpha_table(ctx: Context, trained: Mapping[str, Trained]) -> pd.DataFrame:
    """One row per (direction, α, seed): the engine's dev score, dev and test CCC of the
    main-only predictions before post-processing, best epoch, kept."""
    rows = []
    for main in ctx.settings.directions:
        t = trained.get(plan_lib.fusion_name(main))
        if t is None:
            continue
        for (_, m), outs in zip(t.members.iterrows(), t.member_outputs, strict=True):
            row = {"main": main, "alpha": m["w/aux"], "seed": int(m["seed"])}
            row["dev score"] = m["best_dev_score"]
            for part, recs in ctx.corpus.partitions.items():
                if part != "train" and recs and all(r.has_labels for r in recs):
                    for key, v in _scores(ctx, outs[part], recs).items():
                        row[f"{part} {key}"] = v
            row.update(best_epoch=int(m["best_epoch"]), selected=bool(m["selected"]))
            rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["formats"] = {c: ".4f" for c in df.columns if c.startswith(("dev", "test"))}
    return df


def ddat_rows(workdirs: Sequence[str], dimension: str, data_source: Mapping) -> tuple[dict, list]:
    """MTL/DDAT CCCs after post-processing from DDAT runs: ``{(row, modality, part): ccc}``
    and notes (runs skipped: other dimension or corpus, missing files)."""
    found, notes = {}, []
    data_source = dict(data_source)
    for wd in workdirs:
        wd = Path(wd)
        cfg_path, tab = wd / "config.json", wd / "results" / "table2_after_postprocessing.csv"
        if not cfg_path.is_file() or not tab.is_file():
            notes.append(f"{wd}: no config.json or results/table2_after_postprocessing.csv")
            continue
        data = json.loads(cfg_path.read_text())["data"]
        source = {k: data.get(k) for k in data_source}
        if data.get("dimension") != dimension or source != dict(data_source):
            notes.append(f"{wd}: another dimension or corpus ({data.get('dimension')}, {source})")
            continue
        mod = paper_modality(str(data.get("modality")))
        df = pd.read_csv(tab, index_col=0)
        for row, candidates in DDAT_ROWS.items():
            label = next((c for c in candidates if c in df.index), None)
            for part in ("dev", "test"):
                if label is not None and f"{part} CCC" in df.columns:
                    found[(row, mod, part)] = float(df.loc[label, f"{part} CCC"])
    return found, notes


def table2(ctx: Context, preds: Predictions, trained) -> tuple[pd.DataFrame, str]:
    """Table 2 for the run's dimension: paper rows × (audio, video) × (dev, test), ours
    (after post-processing) beside the paper's values."""
    s, dim = ctx.settings, ctx.corpus.dimension
    ours, notes = ddat_rows(s.ddat_workdirs, dim, s.data_source)
    for main in s.directions:
        mod = paper_modality(main)
        for row, label in (
            ("RNN (baseline)", plan_lib.baseline_label(main)),
            ("RNN (implicit fusion)", plan_lib.fusion_label(main)),
        ):
            for part in ("dev", "test"):
                if label in preds.labels and preds.has_gold(part):
                    ours[(row, mod, part)] = float(
                        metrics.ccc(
                            preds.concat(label, part, "pred_pp"), np.concatenate(preds.gold(part))
                        )
                    )
    table = {}
    for mod in ("audio", "video"):
        for part in ("dev", "test"):
            table[f"{mod} {part}"] = [ours.get((r, mod, part), math.nan) for r in PAPER_ROWS]
            table[f"{mod} {part} (paper)"] = [PAPER[(r, dim, mod, part)] for r in PAPER_ROWS]
    df = pd.DataFrame(table, index=pd.Index(PAPER_ROWS, name="system"))
    df.attrs["formats"] = {c: ".3f" for c in df.columns}
    kept = kept_alphas(trained, s.directions)
    alphas = ", ".join(f"{m}: α = {a:g}" for m, a in kept.items())
    missing = (
        ""
        if s.ddat_workdirs
        else (
            " MTL/DDAT rows: blank (no DDAT run given; set config.implicit.ddat_workdirs to DDAT "
            "runs of this corpus and dimension)."
        )
    )
    caption = (
        f"Table 2 ({dim}): CCC after post-processing on the embedded corpus, evaluated with "
        f"the main modality only; '(paper)' columns: the paper's RECOLA values. RNN "
        f"(baseline) = the α = 0 member, RNN (implicit fusion) = best α on dev ({alphas}). "
        f"SVR and DNN+CL rows are the paper's only.{missing}"
        + (" Skipped: " + "; ".join(notes) if notes else "")
    )
    return df, caption


def kept_alphas(trained: Mapping[str, Trained], directions) -> dict[str, float]:
    """The α of each direction's kept implicit-fusion member."""
    out = {}
    for main in directions:
        t = trained.get(plan_lib.fusion_name(main))
        if t is not None:
            out[main] = float(t.members.loc[t.members["selected"], "w/aux"].iloc[0])
    return out


def paper_tables(ctx: Context, preds: Predictions, trained) -> dict:
    """``{"table2_implicit_fusion": ..., "alpha_grid": ...}`` (Table 2 needs dev labels)."""
    out = {}
    if ctx.settings.task == "classification":
        out["table1_implicit_fusion"] = table1(ctx, preds, trained)
    elif preds.has_gold("dev"):
        out["table2_implicit_fusion"] = table2(ctx, preds, trained)
    grid = alpha_table(ctx, trained)
    if len(grid):
        out["alpha_grid"] = (
            grid,
            "Every α of the grid (members of one compiled program per direction): the "
            "engine's dev score and the scores of the main-only predictions (CCC before "
            "post-processing, or macro-F1 and accuracy); 'selected' marks the kept member.",
        )
    return out


def alpha_curves(grid: pd.DataFrame, path: Path, *, title: str, metric: str = "CCC") -> Path:
    """Dev (solid) and test (dashed) score vs α per main modality, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (main, g) in enumerate(grid.groupby("main", sort=False)):
        mean = g.groupby("alpha").mean(numeric_only=True)
        color = f"C{i}"
        for part, style in (("dev", "-o"), ("test", "--s")):
            col = f"{part} {metric}"
            if col in mean.columns:
                ax.plot(mean.index, mean[col], style, color=color, ms=4, label=f"{main} ({part})")
        best = float(g.loc[g["selected"], "alpha"].iloc[0])
        ax.axvline(best, color=color, lw=0.8, alpha=0.5)
    ax.set_xlabel("α (weight of the auxiliary modality's loss)")
    ax.set_ylabel("macro-F1" if metric == "F1" else metric)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def paper_figures(ctx: Context, preds: Predictions, trained, folder: Path) -> list[Path]:
    """The α curves (the paper's Fig. 2 for RECOLA): dev and test CCC vs α."""
    grid = alpha_table(ctx, trained)
    metric = "F1" if ctx.settings.task == "classification" else "CCC"
    if not len(grid) or f"dev {metric}" not in grid.columns:
        return []
    if metric == "F1":
        title = "Fig. 2: dev macro-F1 vs α, evaluated with the main modality only"
    else:
        title = f"{ctx.corpus.dimension}: main-only CCC vs α (before post-processing)"
    return [alpha_curves(grid, Path(folder) / "alpha_curves.png", title=title, metric=metric)]


# Table 1 of the paper (F1 [%] on the OMG-Emotion dev set): row -> (audio, video).
PAPER_TABLE1 = {
    "SVM [23]": (33.0, math.nan),
    "CNN [23]": (math.nan, 37.0),
    "RNN (baseline)": (36.5, 37.9),
    "RNN (implicit fusion)": (40.2, 42.1),
}


def table1(ctx: Context, preds: Predictions, trained) -> tuple[pd.DataFrame, str]:
    """Table 1: dev macro-F1 [%] per main modality (ours beside the paper's), accuracy,
    and a paired bootstrap over dev utterances of implicit fusion vs baseline."""
    s = ctx.settings
    recs = ctx.corpus.partitions["dev"]
    gold = np.concatenate([r.gold for r in recs]).astype(int)
    cols = {}
    tests = []
    for main in s.directions:
        mod = paper_modality(main)
        got = {}
        for row, label in (
            ("RNN (baseline)", plan_lib.baseline_label(main)),
            ("RNN (implicit fusion)", plan_lib.fusion_label(main)),
        ):
            if label in preds.labels:
                got[row] = preds.concat(label, "dev", "pred").astype(int)
        f1 = {r: 100 * cl.macro_f1(p, gold, s.num_classes) for r, p in got.items()}
        acc = {r: 100 * cl.accuracy(p, gold) for r, p in got.items()}
        cols[f"{mod} F1"] = [f1.get(r, math.nan) for r in PAPER_TABLE1]
        cols[f"{mod} F1 (paper)"] = [
            PAPER_TABLE1[r][0 if mod == "audio" else 1] for r in PAPER_TABLE1
        ]
        cols[f"{mod} accuracy"] = [acc.get(r, math.nan) for r in PAPER_TABLE1]
        if len(got) == 2:
            b = cl.bootstrap_difference(
                got["RNN (implicit fusion)"],
                got["RNN (baseline)"],
                gold,
                s.num_classes,
                n_resamples=min(s.significance_resamples, 2000),
                seed=0,
            )
            tests.append(
                f"{main}: ΔF1 = {100 * b['delta']:+.1f} points, 95 % CI "
                f"[{100 * b['ci_low']:+.1f}, {100 * b['ci_high']:+.1f}], one-sided p = "
                f"{b['p_one_sided']:.3f}"
            )
    df = pd.DataFrame(cols, index=pd.Index(list(PAPER_TABLE1), name="system"))
    df.attrs["formats"] = {c: ".1f" for c in df.columns}
    alphas = ", ".join(f"{m}: α = {a:g}" for m, a in kept_alphas(trained, s.directions).items())
    caption = (
        "Table 1: macro-F1 [%] over 7 classes on the dev set (the OMG convention; the paper "
        "says F1), main modality only; '(paper)': the paper's OMG-Emotion values (SVM/CNN "
        "rows are the paper's only). RNN (baseline) = the α = 0 member; RNN (implicit "
        f"fusion) = best α on dev ({alphas}). Paired bootstrap over dev utterances "
        "(optimistic: α and epoch were chosen on the same dev set): " + "; ".join(tests) + "."
    )
    return df, caption
