"""SEW's tables in the paper's layout, with the paper's values beside ours.

* Table 1 — unimodal CCC and binary accuracy (sign) per modality, this run's dimension.
* Table 2 — SEW and its ablations per stronger → weaker pair, with the unimodal row, and
  the recording-level tests (SEW vs each other row: the one-sided paired permutation test
  over recordings of the CCC, and of the binary accuracy).
* Table 3 — SEW beside the paper's quoted comparison and, when
  ``config.sew.compare_workdirs`` names them, the project's own runs of other methods on
  the same corpus (their dev CCC from ``results/table1_before_postprocessing.csv``).

Every number is of the raw predictions (SEW is not post-processed in the paper);
accuracy in percent as the paper. CCC = one CCC over the concatenation of the
partition's recordings (AVEC 2016).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax import metrics, stats
from ddat_jax.experiment.systems import Context
from ddat_jax.methods.sew import plan as sew_plan
from ddat_jax.methods.sew.settings import SHORT, VARIANTS, SEWSettings
from ddat_jax.predictions import Predictions

# Table 1 of the paper (RECOLA dev): {dimension: {modality: (CCC, Acc %)}}.
PAPER_T1 = {
    "arousal": {
        "audio": (0.761, 81.3),
        "video_geometric": (0.482, 66.4),
        "video_appearance": (0.492, 69.1),
    },
    "valence": {
        "audio": (0.543, 74.2),
        "video_geometric": (0.643, 81.9),
        "video_appearance": (0.489, 68.4),
    },
}
# Table 2 of the paper: {(dimension, weak, strong): rows of _ROWS as (CCC, Acc %)}.
_ROWS = ("sew", "no_sd2", "no_cca", "no_sd1", "no_cca_sd1", "uni")
_T2 = {
    ("arousal", "video_geometric", "audio"): (
        (0.565, 73.6),
        (0.532, 71.1),
        (0.512, 70.7),
        (0.514, 71.0),
        (0.484, 69.1),
        (0.482, 66.4),
    ),
    ("arousal", "video_appearance", "audio"): (
        (0.544, 73.6),
        (0.519, 71.5),
        (0.508, 69.5),
        (0.523, 71.0),
        (0.497, 68.4),
        (0.492, 66.1),
    ),
    ("valence", "audio", "video_geometric"): (
        (0.552, 76.3),
        (0.486, 72.4),
        (0.496, 73.8),
        (0.556, 76.3),
        (0.545, 75.9),
        (0.543, 74.2),
    ),
    ("valence", "video_appearance", "audio"): (
        (0.554, 72.2),
        (0.539, 68.7),
        (0.532, 67.9),
        (0.514, 67.8),
        (0.497, 67.3),
        (0.489, 68.4),
    ),
    ("valence", "video_appearance", "video_geometric"): (
        (0.549, 74.1),
        (0.540, 74.0),
        (0.546, 74.1),
        (0.505, 69.3),
        (0.491, 68.9),
        (0.489, 68.4),
    ),
}
# Table 3 of the paper (CCC): {row: {(dimension, weak): value}}.
PAPER_T3 = {
    "SVR + offset [16]": (0.379, 0.483, 0.455, 0.474),
    "MTL (RE) [17]": (0.502, 0.512, 0.519, 0.529),
    "MTL (PU) [18]": (0.508, 0.502, 0.506, 0.468),
    "DDAT (RE) [19]": (0.544, 0.539, 0.508, 0.528),
    "DDAT (PU) [19]": (0.513, 0.518, 0.498, 0.514),
    "EmoBed [9]": (0.527, 0.549, 0.521, 0.564),
    "SEW (paper)": (0.565, 0.544, 0.552, 0.554),
}
T3_COLUMNS = (
    ("arousal", "video_geometric"),
    ("arousal", "video_appearance"),
    ("valence", "audio"),
    ("valence", "video_appearance"),
)


def paper_t2(dimension: str, pair: tuple[str, str]) -> dict[str, tuple[float, float]]:
    """The paper's Table 2 column of a pair (empty for a pair the paper lacks)."""
    values = _T2.get((dimension, *pair))
    return dict(zip(_ROWS, values, strict=True)) if values else {}


def prediction(ctx: Context, trained, name: str, outputs, part: str):
    """The deployed predictor's emotion output per recording ``[T, 1]``; no extras."""
    return [np.asarray(o)[:, :1] for o in outputs["emotion"]], None


def scored_partitions(preds: Predictions) -> list[str]:
    """``dev`` (the paper's) and ``test`` where the corpus has its labels."""
    return [p for p in ("dev", "test") if p in preds.partition_names() and preds.has_gold(p)]


def scores(preds: Predictions, label: str, part: str) -> tuple[float, float]:
    """``(CCC, binary accuracy %)`` of one system on one partition (raw predictions)."""
    x, gold = preds.series(label, part, "pred"), preds.gold(part)
    return metrics.ccc(x, gold), 100.0 * metrics.binary_accuracy(x, gold)


def table1(ctx: Context, preds: Predictions):
    """Table 1: one row (this run's dimension), CCC and Acc per modality, paper beside."""
    s: SEWSettings = ctx.settings
    row = {}
    for m in s.unimodal:
        label = sew_plan.uni_label(m)
        if label not in preds.labels:
            continue
        for part in scored_partitions(preds):
            c, a = scores(preds, label, part)
            row[f"{SHORT[m]} {part} CCC"], row[f"{SHORT[m]} {part} Acc"] = c, a
        pc, pa = PAPER_T1[s.dimension][m]
        row[f"{SHORT[m]} paper CCC"], row[f"{SHORT[m]} paper Acc"] = pc, pa
    if not row:
        return None
    df = pd.DataFrame([row], index=pd.Index([s.dimension.capitalize()], name="dimension"))
    df = _formatted(df)
    caption = (
        "Table 1: unimodal results (4 × 120 per-frame GRU regressor; CCC and binary "
        "accuracy of the sign, %); 'paper' = the paper's RECOLA dev values. "
        f"{strongest(ctx, preds)}{legend(ctx)}"
    )
    return df, caption


def strongest(ctx: Context, preds: Predictions) -> str:
    """A sentence: the strongest modality on dev here vs the paper, and the pairs run."""
    s: SEWSettings = ctx.settings
    dev = {
        m: scores(preds, sew_plan.uni_label(m), "dev")[0]
        for m in s.unimodal
        if sew_plan.uni_label(m) in preds.labels and preds.has_gold("dev")
    }
    if len(dev) < 2:
        return ""
    ours = max(dev, key=dev.get)
    paper = max(PAPER_T1[s.dimension], key=lambda m: PAPER_T1[s.dimension][m][0])
    agree = "as in the paper" if ours == paper else f"the paper's is {SHORT[paper]}"
    pairs = ", ".join(sew_plan.pair_title(p) for p in s.pairs)
    return f"Strongest on dev here: {SHORT[ours]} ({agree}); pairs trained: {pairs}. "


def table2(ctx: Context, preds: Predictions):
    """Table 2: variants (rows) × pairs (CCC, Acc per partition, paper beside)."""
    s: SEWSettings = ctx.settings
    rows = {VARIANTS[v][0]: {} for v in s.variants}
    rows["uni-modal"] = {}
    for pair in s.pairs:
        title = sew_plan.pair_title(pair)
        paper = paper_t2(s.dimension, pair)
        labels = {v: sew_plan.pair_label(v, pair) for v in s.variants}
        labels["uni"] = sew_plan.uni_label(pair[0])
        for key, label in labels.items():
            row = rows[VARIANTS[key][0] if key != "uni" else "uni-modal"]
            if label in preds.labels:
                for part in scored_partitions(preds):
                    c, a = scores(preds, label, part)
                    row[f"{title} {part} CCC"], row[f"{title} {part} Acc"] = c, a
            pc, pa = paper.get(key, (math.nan, math.nan))
            row[f"{title} paper CCC"], row[f"{title} paper Acc"] = pc, pa
    df = _formatted(pd.DataFrame.from_dict(rows, orient="index"))
    df.index.name = s.dimension
    caption = (
        f"Table 2 ({s.dimension}): SEW and its ablations per weak(+strong) pair; the "
        "bottom row is the weak modality's unimodal regressor; 'paper' = the paper's "
        f"values. {legend(ctx)}"
    )
    return df, caption


def significance(ctx: Context, preds: Predictions):
    """SEW vs every other row of its pair: paired permutation tests over recordings."""
    s: SEWSettings = ctx.settings
    parts = scored_partitions(preds)
    if "sew" not in s.variants or not parts:
        return None
    part = parts[-1]
    gold = [g for g in preds.gold(part)]
    rows = []
    for pair in s.pairs:
        sew = sew_plan.pair_label("sew", pair)
        others = [(sew_plan.pair_label(v, pair), VARIANTS[v][0]) for v in s.variants if v != "sew"]
        others.append((sew_plan.uni_label(pair[0]), "uni-modal"))
        if sew not in preds.labels:
            continue
        a = preds.series(sew, part, "pred")
        for other, row_name in others:
            if other not in preds.labels:
                continue
            b = preds.series(other, part, "pred")
            row = {"pair": sew_plan.pair_title(pair), "SEW vs": row_name}
            for metric in ("ccc", "binary_accuracy"):
                res = stats.paired_permutation_test(
                    a, b, gold, metric=metric, n_resamples=s.significance_resamples, seed=0
                )
                scale = 100.0 if metric == "binary_accuracy" else 1.0
                name = "CCC" if metric == "ccc" else "Acc"
                row[f"Δ{name}"] = scale * res.difference
                row[f"p ({name})"] = res.p_value
            rows.append(row)
    if not rows:
        return None
    df = _formatted(pd.DataFrame(rows).set_index("pair"))
    caption = (
        f"Recording-level tests on {part} ({len(gold)} recordings): SEW minus each other "
        "row of its pair (Δ, accuracy in points) and the one-sided paired permutation test "
        "over recordings (H1: SEW is better; exact when 2^recordings <= resamples)."
    )
    return df, caption


def _other_runs(s: SEWSettings) -> dict[str, dict[tuple[str, str], float]]:
    """``{row label: {(dimension, modality): dev CCC}}`` from ``compare_workdirs``."""
    out: dict[str, dict] = {}
    for name, folder in s.compare_workdirs.items():
        folder = Path(folder)
        cfg_path, t1 = (
            folder / "config.json",
            folder / "results" / "table1_before_postprocessing.csv",
        )
        if not cfg_path.is_file() or not t1.is_file():
            raise ValueError(
                f"config.sew.compare_workdirs[{name!r}] = {str(folder)!r} holds no finished run "
                "(config.json and results/table1_before_postprocessing.csv expected)"
            )
        data = json.loads(cfg_path.read_text())["data"]
        key = (str(data["dimension"]), str(data["modality"]))
        df = pd.read_csv(t1, index_col=0)
        for system, value in df["dev CCC"].items():
            out.setdefault(f"{name}: {system} (ours)", {})[key] = float(value)
    return out


def table3(ctx: Context, preds: Predictions):
    """Table 3: the paper's comparison, with our SEW, unimodal rows and other runs."""
    s: SEWSettings = ctx.settings
    cols = [f"{d} {SHORT[m]}" for d, m in T3_COLUMNS]
    rows = {k: dict(zip(cols, v, strict=True)) for k, v in PAPER_T3.items()}
    for name, values in _other_runs(s).items():
        rows[name] = {f"{d} {SHORT[m]}": v for (d, m), v in values.items() if (d, m) in T3_COLUMNS}
    for (d, m), col in zip(T3_COLUMNS, cols, strict=True):
        if d != s.dimension:
            continue
        pair = next((p for p in s.pairs if p[0] == m), None)
        for label, row in (
            (sew_plan.pair_label("sew", pair) if pair else None, "SEW (ours)"),
            (sew_plan.uni_label(m), "uni-modal (ours)"),
        ):
            if label and label in preds.labels and preds.has_gold("dev"):
                rows.setdefault(row, {})[col] = scores(preds, label, "dev")[0]
    df = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=cols)
    df.index.name = "method"
    df.attrs["formats"] = dict.fromkeys(cols, ".3f")
    caption = (
        "Table 3: dev CCC of each weak modality; paper rows quoted from the paper; "
        "'(ours)' rows on this corpus (this run fills its dimension's columns; "
        "for SEW with video-app on valence the first pair with that weak modality). "
        f"{legend(ctx)}"
    )
    return df, caption


def _formatted(df: pd.DataFrame) -> pd.DataFrame:
    """Markdown formats: CCC 3 decimals, accuracy 1, p-values 4."""
    fmts = {}
    for c in df.columns:
        if str(c).startswith("p ("):
            fmts[c] = ".4f"
        elif "CCC" in str(c):
            fmts[c] = ".3f"
        elif "Acc" in str(c):
            fmts[c] = ".1f"
    df.attrs["formats"] = fmts
    return df


def legend(ctx: Context) -> str:
    """The protocol in one sentence (frames, strides, epochs, corpus)."""
    s: SEWSettings = ctx.settings
    t = ctx.train.train
    return (
        f"Per-frame training, batch {t['batch_size']} frames, {t['optimizer']}"
        + (f" (momentum {t['momentum']})" if t["optimizer"] == "sgd" else "")
        + f", lr {ctx.train.hparams['learning_rate']}, "
        f"up to {t['epochs']} epochs (early stopping: patience {t['patience']}); training "
        f"on 1 in {s.train_stride} frames, model selection on 1 in {s.dev_stride} dev "
        f"frames; scores on all frames, raw predictions; corpus {ctx.corpus.root.name}."
    )


def paper_tables(ctx: Context, preds: Predictions, trained) -> dict:
    """``{name: (DataFrame, caption)}`` of Tables 1–3 and the significance table."""
    out = {}
    for key, fn in (
        ("sew_table1_unimodal", table1),
        ("sew_table2_ablations", table2),
        ("sew_table2_significance", significance),
        ("sew_table3_comparison", table3),
    ):
        found = fn(ctx, preds)
        if found is not None:
            out[key] = found
    return out
