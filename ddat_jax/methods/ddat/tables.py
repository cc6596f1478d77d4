"""DDAT's own outputs beyond the generic CCC tables: predictions with difficulty extras,
Table III (difficulty vs improvement over STL), Table IV (dynamic tuning and late fusion
within one run), the AVEC-official scoring and the figures.

Difficulty signals travel as extras of every system's predictions, read from the stage-1
folders (``workdir/stage1/re_sum``, ``workdir/stage1/pu``: exactly what stage 2 was
trained on, so a stage-2-only run has them too):

* ``re``: the RE scalar ``E_t = Σ_i f(x_i − x̂_i)`` with the configured ``re_reduce``;
* ``pu``: the stage-1 PU model's predicted perception uncertainty;
* ``pu_annotated``: the raters' std (where the corpus has individual ratings);
* ``difficulty``: the system's *own* stream (Eq. 12): ``re`` for the RE family
  (MTL-RE, DDAT-RE vector/sum), ``pu`` for the PU family (MTL-PU, DDAT-PU); absent for
  the baselines (they are fused, never tuned).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax.evaluation import difficulty as eval_difficulty
from ddat_jax.evaluation import figures as eval_figures
from ddat_jax.evaluation import fusion as eval_fusion
from ddat_jax.experiment.systems import Context
from ddat_jax.methods.ddat import artifacts, official, stage1
from ddat_jax.predictions import Predictions

AGG = "CCC over the concatenation of each partition's recordings (AVEC 2016)"
PAPER_PROTOCOL = "paper protocol: gold shifted back by the delay, predictions as trained"
# The difficulty stream each system is dynamically tuned with (Eq. 12).
OWN_SIGNAL = {
    "mtl_re": "re",
    "ddat_re_vector": "re",
    "ddat_re_sum": "re",
    "mtl_pu": "pu",
    "ddat_pu": "pu",
}
_SIGNAL_FOLDERS = {"re": ("mtl_re", "re_sum"), "pu": ("mtl_pu", "pu")}
_CACHE: dict = {}


def stage1_signal(ctx: Context, signal: str) -> dict[str, dict[str, np.ndarray]] | None:
    """``{partition: {recording: [T]}}`` of stage-1 signal ``re`` or ``pu``, read from
    ``workdir/stage1/<variant>`` (hash-checked against this run's settings); None when
    that folder is absent or was written under other settings."""
    system, variant = _SIGNAL_FOLDERS[signal]
    folder = ctx.workdir / "stage1" / variant
    manifest = folder / artifacts.MANIFEST
    if not manifest.is_file():
        return None
    key = (str(folder), manifest.stat().st_mtime_ns, stage1.stage1_hash(ctx.settings, system))
    if key not in _CACHE:
        try:
            arrays, meta = artifacts.read_augmented(folder, expected_config_hash=key[2])
        except artifacts.ManifestError:
            return None
        n = len(meta["feature_names"])
        _CACHE.clear()  # one run's signals at a time
        _CACHE[key] = {p: {r: a[:, n] for r, a in recs.items()} for p, recs in arrays.items()}
    return _CACHE[key]


def difficulty_signals(ctx: Context, name: str, part: str) -> dict:
    """The extras of system ``name`` on ``part`` (module docstring): per-recording ``[T]``."""
    recs = ctx.corpus.partitions[part]
    out = {}
    for signal in ("re", "pu"):
        arrays = stage1_signal(ctx, signal)
        if arrays is not None and part in arrays:
            out[signal] = [np.asarray(arrays[part][r.name], np.float32) for r in recs]
    if recs and all(r.pu is not None for r in recs):
        out["pu_annotated"] = [np.asarray(r.pu, np.float32) for r in recs]
    own = OWN_SIGNAL.get(name)
    if own in out:
        out["difficulty"] = out[own]
    return out


def prediction(ctx: Context, trained, name: str, outputs, part: str):
    """The emotion head's first output per recording; difficulty signals as extras."""
    return [o[:, :1] for o in outputs["emotion"]], difficulty_signals(ctx, name, part) or None


def _labelled(preds: Predictions) -> str:
    return "test" if preds.has_gold("test") else "dev"


def _has(preds: Predictions, label: str, key: str, part: str) -> bool:
    return label in preds.labels and key in preds[label].partitions[part][0].extras


def table3_signals(preds: Predictions, part: str) -> dict[str, tuple[str, str]]:
    """Table III's signals: ε (RE of DDAT-RE sum, else vector), µ predicted (DDAT-PU) and,
    where the corpus has individual ratings, µ annotated; each paired with the DDAT system
    whose improvement Δc it is correlated with."""
    out = {}
    re_sys = next((s for s in ("DDAT-RE sum", "DDAT-RE vector") if s in preds.labels), None)
    if re_sys and _has(preds, re_sys, "re", part):
        out["ε (RE)"] = (re_sys, "re")
    if _has(preds, "DDAT-PU", "pu", part):
        out["µ (predicted PU)"] = ("DDAT-PU", "pu")
    if _has(preds, "DDAT-PU", "pu_annotated", part):
        out["µ (annotated PU)"] = ("DDAT-PU", "pu_annotated")
    return out


def table3(preds: Predictions, re_reduce: str = "squared"):
    """Table III: PCC between RE, PU and the improvement of DDAT over STL, dev and test
    (where labelled) side by side; None without STL or a difficulty signal."""
    if "STL" not in preds.labels:
        return None
    cols = {}
    for part in ("dev", "test"):
        if part not in preds.partition_names() or not preds.has_gold(part):
            continue
        signals = table3_signals(preds, part)
        if not signals:
            return None
        df = eval_difficulty.difficulty_table(
            preds, baseline="STL", signals=signals, partition=part
        )
        cols[f"{part} PCC"] = df["PCC"]
        cols[f"{part} frames"] = df["frames"]
    if not cols:
        return None
    caption = (
        "Table III: PCC between the RE ε (the stage-1 squared-error sum with "
        f"re_reduce={re_reduce!r}, the signal DDAT-RE sum was trained on), the perception "
        "uncertainty µ (predicted by MTL-PU, the signal DDAT-PU was trained on; annotated = "
        "the raters' std, where individual ratings exist) and the per-frame improvement "
        "Δc = |ŷ_STL − y| − |ŷ_DDAT − y| of the DDAT system of that signal (ε: DDAT-RE, "
        f"µ: DDAT-PU); before post-processing; {PAPER_PROTOCOL}."
    )
    return pd.DataFrame(cols), caption


def table4(preds: Predictions):
    """Table IV within one run: dynamic tuning of each RE/PU system with its own stream's
    difficulty (Eq. 12), and late fusion (SLR fitted on dev) of all systems."""
    if not preds.has_gold("dev"):
        return None
    rows = {label: [label] for label in preds.labels}
    for label in preds.labels:
        if _has(preds, label, "difficulty", "dev"):
            own = "RE" if "RE" in label else "PU"
            rows[f"{label} + dyn. tuning ({own})"] = [f"{label}:dt"]
    if len(preds.labels) > 1:
        rows["SLR fusion of all systems"] = list(preds.labels)
    result = eval_fusion.fusion_table(preds, rows, which="pred_pp")
    caption = (
        "Table IV (one feature set): late fusion (simple linear regression fitted on dev) "
        "and dynamic tuning y' = ε + γ·y + γ_d·d with each system's own difficulty "
        f"(RE for the RE systems, predicted PU for the PU systems); after post-processing; "
        f"{AGG}; {PAPER_PROTOCOL}. Across feature sets: the ddat_paper driver."
    )
    return result.table, caption


def paper_tables(ctx: Context, preds: Predictions, trained) -> dict:
    """Tables III, IV and the AVEC-official scoring, where they apply."""
    out = {}
    t3 = table3(preds, ctx.settings.re_reduce)
    if t3 is not None:
        out["table3_difficulty_analysis"] = t3
    t4 = table4(preds)
    if t4 is not None:
        out["table4_fusion"] = t4
    scored = official.official_outputs(ctx, preds)
    if scored is not None:
        out["avec_official_scoring"] = scored
    return out


def difficulty_legend(extras, label: str, re_reduce: str) -> dict[str, tuple[str, str]]:
    """Legend label → (system, extras key) of the difficulty figure: only what is drawn."""
    names = {
        "re": f"ε: RE ({re_reduce} sum, MTL-RE)",
        "pu": "µ: PU predicted by MTL-PU",
    }
    return {n: (label, k) for k, n in names.items() if k in extras}


def paper_figures(ctx: Context, preds: Predictions, trained, folder: Path) -> list[Path]:
    """Prediction traces of the first recording of the scored partition, and the
    difficulty signals under the raters' traces (whose std = the annotated PU)."""
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
    label = preds.labels[0]
    extras = preds[label].partitions[part][0].extras
    signals = difficulty_legend(extras, label, ctx.settings.re_reduce)
    if signals:
        paths.append(
            eval_figures.difficulty_traces(
                preds,
                folder / f"difficulty_{rec.name}.png",
                partition=part,
                signals=signals,
                ratings=rec.ratings,
                pu=None,
            )
        )
    return paths
