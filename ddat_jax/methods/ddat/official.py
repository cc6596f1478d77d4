"""AVEC-official scoring beside the paper's protocol.

The paper's protocol (every CCC of Tables I–IV): the gold standard is shifted *back* by the
annotation delay (``config.data.delay_s``, 2.4 s; last value repeated at the end) and the
models predict on that shifted timeline. A prediction file on that timeline is 2.4 s early
for anyone scoring it against the distributed gold. The AVEC 2016 baseline instead shifts
its post-processed predictions *forward* by the delay per recording (the first value
repeated at the start, the last ``d`` frames dropped) and scores them against the
**original, unshifted** gold standard.

This module writes every system's predictions on the original timeline::

    workdir/predictions_original_timeline/<system slug>/<partition>/<recording>.csv
        time, prediction, prediction_pp, gold   (gold: original timeline; empty if withheld)

and the table ``avec_official_scoring``: per system and labelled partition, the CCC of the
paper's protocol beside the AVEC-official one (before and after post-processing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ddat_jax import atomic, metrics
from ddat_jax.data import corpus as corpus_lib
from ddat_jax.data import prepare
from ddat_jax.experiment.systems import Context
from ddat_jax.predictions import Predictions, slugify

FOLDER = "predictions_original_timeline"


def shift_forward(pred: np.ndarray, frames: int) -> np.ndarray:
    """``[T]`` → ``[T]``: the first value repeated ``frames`` times, the last ``frames``
    frames dropped (the AVEC 2016 baseline's final step)."""
    pred = np.asarray(pred)
    t = pred.shape[0]
    if frames <= 0 or t == 0:
        return pred.copy()
    k = min(frames, t)
    return np.concatenate([np.full(k, pred[0], pred.dtype), pred[: t - k]])


def infer_delay_frames(original: np.ndarray, shifted: np.ndarray) -> int:
    """The ``d`` with ``shifted = [original[d:], original[-1] × d]`` (the delay the corpus
    was prepared with); raises ValueError when no ``d`` fits."""
    o = np.asarray(original, np.float64)
    s = np.asarray(shifted, np.float64)
    t = o.shape[0]
    if s.shape != o.shape:
        raise ValueError(f"gold lengths differ: {o.shape} vs {s.shape}")
    for d in range(t):
        if np.allclose(o[d:], s[: t - d], atol=1e-6) and np.allclose(s[t - d :], o[-1]):
            return d
    raise ValueError("the shifted gold standard is no shift of the original one")


def original_gold(ctx: Context) -> dict[str, list[np.ndarray | None]] | None:
    """partition → per-recording gold on the original timeline (None where withheld);
    None when the run's settings carry no data config."""
    data = getattr(ctx.settings, "data", None)
    if data is None:
        return None
    corpus = corpus_lib.load_corpus(
        prepare.resolve_root(data),
        modality=prepare.modalities_of(data),
        dimension=data.dimension,
        layout=data.layout,
        gold=data.gold,
        pu_ddof=data.pu_ddof,
        partitions=tuple(data.partitions),
    )
    return {p: [r.gold for r in recs] for p, recs in corpus.partitions.items()}


def delay_frames(ctx: Context, gold: dict) -> int:
    """The delay the corpus was prepared with: ``round(delay_s / frame period)`` (as
    :func:`ddat_jax.data.prepare.prepare_corpus`), or, for ``delay_s="auto"``, inferred
    from the labelled recordings (the smallest shift that fits them all)."""
    value = ctx.settings.data.delay_s
    if not (isinstance(value, str) and value.strip().lower() == "auto"):
        return int(round(float(value) / ctx.corpus.frame_period))
    found = []
    for part, recs in ctx.corpus.partitions.items():
        for rec, g in zip(recs, gold.get(part, []), strict=False):
            if rec.gold is not None and g is not None:
                found.append(infer_delay_frames(g, rec.gold))
    if not found:
        raise ValueError("cannot infer the annotation delay: no labelled recording")
    return max(found)  # a recording that is constant at its start fits smaller shifts too


def _write_files(ctx: Context, preds: Predictions, gold: dict, d: int) -> None:
    root = ctx.workdir / FOLDER
    for label, s in preds.systems.items():
        for part, recs in s.partitions.items():
            for i, r in enumerate(recs):
                g = gold[part][i]
                frame = pd.DataFrame(
                    {
                        "time": ctx.corpus.partitions[part][i].times,
                        "prediction": shift_forward(r.pred[:, 0], d),
                        "prediction_pp": shift_forward(r.field("pred_pp")[:, 0], d),
                        "gold": np.full(r.num_frames, np.nan) if g is None else g,
                    }
                )
                path = root / slugify(label) / part / f"{r.name}.csv"
                atomic.write_text(path, frame.to_csv(index=False, float_format="%.6g"))


def scoring_table(preds: Predictions, gold: dict, d: int) -> pd.DataFrame:
    """Per system: ``<part> CCC <raw|pp> (paper)`` and ``(AVEC official)`` columns."""
    rows = {}
    for label, s in preds.systems.items():
        row = {}
        for part in s.partitions:
            if not preds.has_gold(part) or any(g is None for g in gold[part]):
                continue
            g0 = np.concatenate(gold[part])
            for field, tag in (("pred", "raw"), ("pred_pp", "post-processed")):
                p = s.series(part, field)
                row[f"{part} CCC {tag} (paper)"] = metrics.ccc(p, s.series(part, "gold"))
                row[f"{part} CCC {tag} (AVEC official)"] = metrics.ccc(
                    np.concatenate([shift_forward(x, d) for x in p]), g0
                )
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("system")


def official_outputs(ctx: Context, preds: Predictions):
    """Writes the original-timeline prediction files; returns ``(table, caption)`` or None."""
    gold = original_gold(ctx)
    if gold is None:
        return None
    d = delay_frames(ctx, gold)
    _write_files(ctx, preds, gold, d)
    caption = (
        "AVEC-official scoring beside the paper's protocol. (paper): gold shifted back by "
        f"the delay ({d} frames), predictions as trained. (AVEC official): predictions "
        "shifted forward by the delay per recording (first value repeated), scored against "
        f"the original gold; files in {FOLDER}/. CCC over the concatenation of each "
        "partition's recordings."
    )
    return scoring_table(preds, gold, d), caption
