"""DDAT's own outputs beyond the generic CCC tables: predictions with difficulty extras,
Table III (difficulty vs improvement over STL), Table IV (dynamic tuning and late fusion
within one run) and the figures.

Difficulty signals travel as extras of every system's predictions: ``re`` (the stage-1
RE model's squared reconstruction error summed over the features, ``[T]``), ``pu`` (the
stage-1 PU model's predicted perception uncertainty, ``[T]``) and ``difficulty`` (``re``
when the RE model was trained, else ``pu``: the signal of the dynamic tuning).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ddat_jax.evaluation import difficulty as eval_difficulty
from ddat_jax.evaluation import figures as eval_figures
from ddat_jax.evaluation import fusion as eval_fusion
from ddat_jax.experiment.systems import Context, Trained
from ddat_jax.methods.ddat import difficulty
from ddat_jax.predictions import Predictions

AGG = "CCC over the concatenation of each partition's recordings (AVEC 2016)"


def difficulty_signals(ctx: Context, trained: Mapping[str, Trained], part: str) -> dict:
    """``{"re"?: [T] per recording, "pu"?: [T] per recording}`` of the stage-1 models."""
    out = {}
    if "mtl_re" in trained:
        recs = ctx.corpus.partitions[part]
        x_hats = trained["mtl_re"].outputs[part]["reconstruction"]
        out["re"] = [
            np.asarray(difficulty.re_scalar(r.features, xh, reduce="squared"))[:, 0]
            for r, xh in zip(recs, x_hats, strict=True)
        ]
    if "mtl_pu" in trained:
        out["pu"] = [o[:, 0] for o in trained["mtl_pu"].outputs[part]["pu"]]
    if out:
        out["difficulty"] = out["re"] if "re" in out else out["pu"]
    return out


def prediction(ctx: Context, trained, name: str, outputs, part: str):
    """The emotion head's first output per recording; difficulty signals as extras."""
    return [o[:, :1] for o in outputs["emotion"]], difficulty_signals(ctx, trained, part) or None


def _labelled(preds: Predictions) -> str:
    return "test" if preds.has_gold("test") else "dev"


def table3(preds: Predictions, part: str):
    """Table III: PCC between RE, PU and the improvement of DDAT over STL (or None)."""
    labels = set(preds.labels)
    if "STL" not in labels:
        return None
    signals = {}
    re_sys = next((s for s in ("DDAT-RE sum", "DDAT-RE vector") if s in labels), None)
    if re_sys and "re" in preds[re_sys].partitions[part][0].extras:
        signals["RE"] = (re_sys, "re")
    if "DDAT-PU" in labels and "pu" in preds["DDAT-PU"].partitions[part][0].extras:
        signals["PU"] = ("DDAT-PU", "pu")
    if not signals:
        return None
    df = eval_difficulty.difficulty_table(preds, baseline="STL", signals=signals, partition=part)
    caption = (
        "Table III: PCC between RE, PU and the per-frame improvement "
        f"Δc = |ŷ_STL − y| − |ŷ_DDAT − y| ({part} partition)."
    )
    return df, caption


def table4(preds: Predictions):
    """Table IV within one run: dynamic tuning of every system with the difficulty
    signal, and late fusion (SLR fitted on dev) of all systems."""
    if not preds.has_gold("dev"):
        return None
    first = next(iter(preds.systems.values()))
    has_d = "difficulty" in first.partitions["dev"][0].extras
    rows = {label: [label] for label in preds.labels}
    if has_d:
        name = "RE" if "re" in first.partitions["dev"][0].extras else "PU"
        rows.update({f"{label} + dyn. tuning ({name})": [f"{label}:dt"] for label in preds.labels})
    if len(preds.labels) > 1:
        rows["SLR fusion of all systems"] = list(preds.labels)
    result = eval_fusion.fusion_table(preds, rows, which="pred_pp")
    caption = (
        "Table IV: late fusion (simple linear regression fitted on dev) and dynamic tuning "
        f"y' = ε + γ·y + γ_d·d; {AGG}. Across feature sets: "
        "experiments/fusion_across_modalities.py."
    )
    return result.table, caption


def paper_tables(ctx: Context, preds: Predictions, trained) -> dict:
    """``{"table3_difficulty_analysis": ..., "table4_fusion": ...}`` where they apply."""
    out = {}
    t3 = table3(preds, _labelled(preds))
    if t3 is not None:
        out["table3_difficulty_analysis"] = t3
    t4 = table4(preds)
    if t4 is not None:
        out["table4_fusion"] = t4
    return out


def paper_figures(ctx: Context, preds: Predictions, trained, folder: Path) -> list[Path]:
    """Prediction traces of the first recording of the scored partition, and the
    difficulty signals over the raters' traces."""
    part = _labelled(preds)
    rec = ctx.corpus.partitions[part][0]
    paths = [
        eval_figures.prediction_traces(
            preds,
            folder / f"predictions_{rec.name}.png",
            partition=part,
            title=f"{ctx.corpus.dimension}, {'+'.join(ctx.corpus.modalities)}: {rec.name}",
        )
    ]
    extras = next(iter(preds.systems.values())).partitions[part][0].extras
    label = preds.labels[0]
    signals = {n: (label, k) for k, n in (("re", "RE (squared sum)"), ("pu", "predicted PU"))}
    signals = {n: v for n, v in signals.items() if v[1] in extras}
    if signals:
        paths.append(
            eval_figures.difficulty_traces(
                preds,
                folder / f"difficulty_{rec.name}.png",
                partition=part,
                signals=signals,
                ratings=rec.ratings,
                pu=rec.pu,
            )
        )
    return paths
