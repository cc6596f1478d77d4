"""The soft-prediction paper's tables and figures from the trained grid systems.

Per emotion dimension and target (E, σ) one :class:`~ddat_jax.predictions.Predictions`
holds the *streams* ``"<modality> single"`` (the grid end that trains the target alone)
and ``"<modality> multi"`` (the best interior ``w_E`` on dev for that target's primary
network), each post-processed by the chain fitted on dev against that target's gold;
``"<m1>+<m2> single|multi"`` are their SLR late fusions fitted on dev
(:func:`ddat_jax.evaluation.fusion.fusion_table`). Tables 1 (CCC) and 2 (RMSE) score
the post-processed (and fused) predictions over the concatenated partition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from ddat_jax import metrics, postprocess
from ddat_jax.evaluation import fusion as eval_fusion
from ddat_jax.evaluation import tables
from ddat_jax.experiment.systems import Context, Trained
from ddat_jax.methods.soft_prediction import plan
from ddat_jax.methods.soft_prediction.settings import HEAD, TARGETS, SoftSettings
from ddat_jax.predictions import Predictions, SystemPredictions

TASKS = ("single", "multi")
SYMBOL = {"E": "E", "sigma": "σ"}
PARTS = ("dev", "test")
# The paper's Tables 1 and 2: (modality, task) -> values in the column order of COLUMNS.
PAPER_COLUMNS = [(d, p, t) for d in ("arousal", "valence") for p in PARTS for t in TARGETS]
PAPER_CCC = {
    ("audio", "single"): (0.281, 0.103, 0.234, 0.185, 0.298, 0.075, 0.267, 0.015),
    ("audio", "multi"): (0.356, 0.181, 0.275, 0.246, 0.396, 0.180, 0.292, 0.089),
    ("video", "single"): (0.386, 0.204, 0.295, 0.171, 0.456, 0.266, 0.402, 0.120),
    ("video", "multi"): (0.477, 0.276, 0.373, 0.167, 0.588, 0.317, 0.505, 0.153),
    ("audio+video", "single"): (0.505, 0.195, 0.386, 0.193, 0.502, 0.261, 0.478, 0.111),
    ("audio+video", "multi"): (0.559, 0.273, 0.450, 0.200, 0.575, 0.235, 0.515, 0.110),
}
PAPER_RMSE = {
    ("audio", "single"): (0.139, 0.201, 0.116, 0.158, 0.140, 0.193, 0.128, 0.254),
    ("audio", "multi"): (0.140, 0.207, 0.117, 0.162, 0.160, 0.192, 0.155, 0.255),
    ("video", "single"): (0.126, 0.180, 0.111, 0.166, 0.124, 0.176, 0.109, 0.245),
    ("video", "multi"): (0.122, 0.175, 0.112, 0.171, 0.138, 0.189, 0.126, 0.254),
    ("audio+video", "single"): (0.119, 0.178, 0.111, 0.158, 0.119, 0.175, 0.102, 0.247),
    ("audio+video", "multi"): (0.115, 0.173, 0.105, 0.159, 0.113, 0.176, 0.100, 0.241),
}


def paper_value(table: Mapping, row: str, task: str, dim: str, part: str, target: str) -> float:
    """The paper's value of a cell, NaN where the paper has none."""
    values = table.get((row, task))
    key = (dim, part, target)
    return float(values[PAPER_COLUMNS.index(key)]) if values and key in PAPER_COLUMNS else math.nan


def member_rows(trained: Trained, total: float) -> dict[str, int]:
    """``{"single": row, "multi": row}`` of the members table: the single-task end of the
    grid (``w_E = total`` for an E-primary system, 0 for a σ-primary one) and the best
    interior setting by the member's dev score (its primary target's CCC)."""
    m = trained.members
    w = m["w/emotion"].to_numpy(np.float64)
    primary_e = trained.name.endswith("_E")
    end = np.flatnonzero(np.isclose(w, total if primary_e else 0.0))
    inner = np.flatnonzero((w > 1e-9) & (w < total - 1e-9))
    score = m["best_dev_score"].to_numpy(np.float64)
    score = np.where(np.isfinite(score), score, -np.inf)
    multi = inner[int(np.argmax(score[inner]))] if inner.size else end[0]
    return {"single": int(end[0]), "multi": int(multi)}


def _raw(trained: Trained, row: int, head: str, part: str) -> list[np.ndarray]:
    return [np.asarray(o[:, 0], np.float64) for o in trained.member_outputs[row][part][head]]


def labelled_parts(ctx: Context, dim: str) -> tuple[str, ...]:
    """``dev`` and, when its labels were given, ``test`` (a withheld test set is skipped)."""
    corpus = plan.corpus_of(ctx, dim)
    return tuple(
        p
        for p in PARTS
        if corpus.partitions.get(p) and all(r.has_labels for r in corpus.partitions[p])
    )


def _stream(ctx: Context, dim: str, target: str, trained: Trained, row: int, label: str):
    s: SoftSettings = ctx.settings
    parts = labelled_parts(ctx, dim)
    recs = {p: plan.corpus_of(ctx, dim).partitions[p] for p in parts}
    gold = {p: plan.gold_of(ctx, dim, target, p) for p in parts}
    raw = {p: _raw(trained, row, HEAD[target], p) for p in parts}
    pp = raw
    if s.postprocess:
        params = postprocess.fit_postprocess(
            raw["dev"],
            gold["dev"],
            frame_period=ctx.corpus.frame_period,
            grids=s.pp_grids,
            per_recording=s.pp_per_recording,
        )
        pp = {p: postprocess.apply_postprocess(raw[p], params) for p in parts}
    arrays = {
        p: {"names": [r.name for r in recs[p]], "pred": raw[p], "pred_pp": pp[p], "gold": gold[p]}
        for p in parts
    }
    return SystemPredictions.from_arrays(label, (target,), arrays)


def streams(ctx: Context, trained: Mapping[str, Trained], dim: str, target: str) -> Predictions:
    """The single/multi streams of every modality and their late fusions (module doc)."""
    s: SoftSettings = ctx.settings
    systems = {}
    for mod in s.modalities:
        t = trained[plan.system_name(dim, mod, target)]
        for task, row in member_rows(t, s.total).items():
            label = f"{mod} {task}"
            systems[label] = _stream(ctx, dim, target, t, row, label)
    preds = Predictions(systems, ctx.corpus.frame_period)
    if len(s.modalities) < 2:
        return preds
    fused_name = "+".join(s.modalities)
    rows = {f"{fused_name} {task}": [f"{m} {task}" for m in s.modalities] for task in TASKS}
    fused = eval_fusion.fusion_table(preds, rows, which="pred_pp", fit_partition="dev")
    return preds.merge(fused.predictions)


def all_streams(ctx: Context, trained) -> dict[tuple[str, str], Predictions]:
    """``{(dimension, target): streams}`` for every dimension and target."""
    return {(d, t): streams(ctx, trained, d, t) for d in ctx.settings.dimensions for t in TARGETS}


def _score(preds: Predictions, label: str, part: str, metric: str) -> float:
    if not preds.has_gold(part):
        return math.nan
    fn = metrics.ccc if metric == "ccc" else metrics.rmse
    return float(fn(preds.series(label, part, "pred_pp"), preds.gold(part), aggregate="concat"))


def _rows(ctx: Context) -> list[tuple[str, str]]:
    mods = list(ctx.settings.modalities)
    if len(mods) > 1:
        mods.append("+".join(mods))
    return [(m, task) for m in mods for task in TASKS]


def score_table(ctx: Context, found, metric: str) -> pd.DataFrame:
    """Table 1 (``metric="ccc"``) or 2 (``"rmse"``) in the paper's layout with its values:
    rows modality × task, columns dimension × partition × target (ours, then paper)."""
    paper = PAPER_CCC if metric == "ccc" else PAPER_RMSE
    out = []
    for row, task in _rows(ctx):
        cells = {}
        for dim in ctx.settings.dimensions:
            for part in PARTS:
                for target in TARGETS:
                    col = f"{dim} {part} {SYMBOL[target]}"
                    preds = found[(dim, target)]
                    cells[col] = _score(preds, f"{row} {task}", part, metric)
                    cells[f"{col} (paper)"] = paper_value(paper, row, task, dim, part, target)
        out.append(cells)
    index = pd.Index([f"{r} / {t}" for r, t in _rows(ctx)], name="modality / task")
    df = pd.DataFrame(out, index=index)
    df.attrs["formats"] = {c: ".3f" for c in df.columns}
    return df


def _compare(preds: Predictions, a: str, b: str, part: str, n: int, seed: int) -> dict:
    return tables.compare_pair(
        preds.series(a, part, "pred_pp"),
        preds.series(b, part, "pred_pp"),
        preds.gold(part),
        n_resamples=n,
        seed=seed,
    )


def _per_recording_ccc(preds: Predictions, label: str, part: str) -> np.ndarray:
    pairs = zip(preds.series(label, part, "pred_pp"), preds.gold(part), strict=True)
    return np.array([metrics.ccc(p, g) for p, g in pairs])


def _paper_delta(row_a, row_b, dim, target) -> float:
    """Paper's test CCC of ``row_a`` minus ``row_b`` (``(modality, task)`` pairs)."""
    a = paper_value(PAPER_CCC, *row_a, dim, "test", target)
    b = paper_value(PAPER_CCC, *row_b, dim, "test", target)
    return a - b


def _effect(name, dim, target, rows, delta, res, paper) -> dict:
    return {
        "effect": name,
        "dimension": dim,
        "target": SYMBOL.get(target, target),
        "rows": rows,
        "Δ CCC": delta,
        "perm. p (recordings)": res["perm_p"],
        "Fisher p (frames)": res["fisher_p"],
        "paper Δ": paper,
        "holds": bool(delta > 0 and res["perm_p"] < 0.05),
    }


def effects_table(ctx: Context, found) -> pd.DataFrame:
    """The paper's three claims on test, each with a recording-level test.

    On ``test`` where labelled, else on ``dev`` (column ``partition``).

    * multi-task beats single-task (CCC), per modality row, dimension and target:
      one-sided paired permutation test over recordings (and Fisher r-to-z on frames);
    * late fusion beats the better single modality (chosen on dev), same tests;
    * σ is harder than E: per-recording CCC of E minus that of σ, one-sided Wilcoxon
      signed-rank test over the test recordings (reported in the permutation column).
    """
    s: SoftSettings = ctx.settings
    n, seed, out = s.significance_resamples, 0, []
    part = labelled_parts(ctx, s.dimensions[0])[-1]  # test where labelled, else dev
    for dim in s.dimensions:
        for target in TARGETS:
            preds = found[(dim, target)]
            for row, _ in _rows(ctx)[::2]:
                a, b = f"{row} multi", f"{row} single"
                res = _compare(preds, a, b, part, n, seed)
                d = _score(preds, a, part, "ccc") - _score(preds, b, part, "ccc")
                pd_ = _paper_delta((row, "multi"), (row, "single"), dim, target)
                out.append(_effect("multi > single", dim, target, f"{a} vs {b}", d, res, pd_))
            if len(s.modalities) < 2:
                continue
            fused = "+".join(s.modalities)
            for task in TASKS:
                best = max(s.modalities, key=lambda m: _score(preds, f"{m} {task}", "dev", "ccc"))
                a, b = f"{fused} {task}", f"{best} {task}"
                res = _compare(preds, a, b, part, n, seed)
                d = _score(preds, a, part, "ccc") - _score(preds, b, part, "ccc")
                pd_ = _paper_delta((fused, task), (best, task), dim, target)
                out.append(
                    _effect("fusion > best modality", dim, target, f"{a} vs {b}", d, res, pd_)
                )
        for row, task in _rows(ctx):
            label = f"{row} {task}"
            ce = _per_recording_ccc(found[(dim, "E")], label, part)
            cs = _per_recording_ccc(found[(dim, "sigma")], label, part)
            p = (
                float(sps.wilcoxon(ce - cs, alternative="greater").pvalue)
                if len(ce) > 1
                else math.nan
            )
            d = _score(found[(dim, "E")], label, part, "ccc") - _score(
                found[(dim, "sigma")], label, part, "ccc"
            )
            pe = paper_value(PAPER_CCC, row, task, dim, "test", "E")
            ps = paper_value(PAPER_CCC, row, task, dim, "test", "sigma")
            res = {"perm_p": p, "fisher_p": math.nan}
            out.append(_effect("E easier than σ", dim, "E vs σ", label, d, res, pe - ps))
    df = pd.DataFrame(out).set_index("effect")
    df.insert(0, "partition", part)
    df.attrs["formats"] = {
        "Δ CCC": ".3f",
        "paper Δ": ".3f",
        "perm. p (recordings)": ".3g",
        "Fisher p (frames)": ".3g",
    }
    return df


def grid_table(ctx: Context, trained) -> pd.DataFrame:
    """Dev CCC (raw predictions) of every w_E of every grid: E of the E-primary network,
    σ of the σ-primary network, and each network's secondary target."""
    s: SoftSettings = ctx.settings
    rows = []
    for dim in s.dimensions:
        gold = {t: np.concatenate(plan.gold_of(ctx, dim, t, "dev")) for t in TARGETS}
        for mod in s.modalities:
            for primary in TARGETS:
                t = trained[plan.system_name(dim, mod, primary)]
                for i, w in enumerate(t.members["w/emotion"].to_numpy()):
                    row = {"dimension": dim, "modality": mod, "primary": SYMBOL[primary]}
                    row["w_E"] = float(w)
                    for target in TARGETS:
                        pred = np.concatenate(_raw(t, i, HEAD[target], "dev"))
                        row[f"dev CCC {SYMBOL[target]}"] = metrics.ccc(pred, gold[target])
                    rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["formats"] = {"w_E": ".1f", "dev CCC E": ".3f", "dev CCC σ": ".3f"}
    return df


def delay_table(ctx: Context) -> pd.DataFrame | None:
    """With ``data.delay_s="auto"``: the ridge baseline's dev CCC per shift, per dimension."""
    s: SoftSettings = ctx.settings
    if not s.delay_auto:
        return None
    from ddat_jax.data import delay

    frames = []
    for dim in s.dimensions:
        est = delay.estimate_delay(plan.raw_corpus(s, dim))
        frames.append(est.curve.assign(dimension=dim, estimate_s=est.delay_s))
    df = pd.concat(frames, ignore_index=True)
    df.attrs["formats"] = {"shift_s": ".1f", "dev_ccc": ".4f"}
    return df


def paper_tables(ctx: Context, preds, trained) -> dict:
    """Tables 1 and 2 with the paper's values, the effects, the w_E grid, the delay curve."""
    found = all_streams(ctx, trained)
    how = "after the post-processing chain fitted on dev" if ctx.settings.postprocess else "raw"
    common = (
        f"Rows modality / task (single: the grid end training the target alone; multi: best "
        f"interior w_E on dev for that target), predictions {how}; audio+video: SLR late "
        "fusion fitted on dev. E: EWE gold standard; σ: perception uncertainty scaled with "
        f"train statistics ({ctx.settings.pu_scaling}), scored on that scale. Over the "
        "concatenated partition. '(paper)': Han et al.'s value on real SEWA."
    )
    out = {
        "soft_table1_ccc": (score_table(ctx, found, "ccc"), f"Table 1: CCC. {common}"),
        "soft_table2_rmse": (score_table(ctx, found, "rmse"), f"Table 2: RMSE. {common}"),
        "soft_effects": (
            effects_table(ctx, found),
            "The paper's effects on test with recording-level tests (one-sided; 'holds': "
            "Δ > 0 and p < 0.05).",
        ),
        "soft_grid_dev_ccc": (
            grid_table(ctx, trained),
            "Dev CCC (raw) of E and σ for every w_E (w_σ = total − w_E) of each grid program.",
        ),
    }
    curve = delay_table(ctx)
    if curve is not None:
        out["delay_curve"] = (curve, "Ridge baseline dev CCC per label shift (delay_s='auto').")
    return out


def prediction(ctx: Context, trained, name: str, outputs, part: str):
    """Generic tables: the E head of the kept member (E-primary systems of the run's
    dimension)."""
    return [o[:, :1] for o in outputs["emotion"]], None
