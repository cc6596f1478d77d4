"""Tests for ddat_jax.evaluation.fusion and .difficulty against references written here.

References: ordinary least squares with an explicit column of ones (fusion rows, dynamic
tuning), Lin's CCC and ``np.corrcoef`` in plain NumPy.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ddat_jax.evaluation import difficulty, fusion
from ddat_jax.predictions import Predictions

LENGTHS = (160, 140, 180, 150, 120, 130)


def np_ccc(p, t):
    mp, mt = p.mean(), t.mean()
    return 2.0 * np.mean((p - mp) * (t - mt)) / (p.var() + t.var() + (mp - mt) ** 2)


def np_pcc(a, b):
    return float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1])


def ols(columns, y):
    x = np.column_stack([np.ones(len(y))] + columns)
    return np.linalg.lstsq(x, y, rcond=None)[0]


def apply(coef, columns):
    return coef[0] + sum(c * x for c, x in zip(coef[1:], columns, strict=True))


def make_gold(seed):
    rng = np.random.default_rng(seed)
    out = []
    for n in LENGTHS:
        x = np.cumsum(rng.standard_normal(n))
        out.append((x - x.mean()) / (x.std() + 1.0) * 0.4 + 0.05)
    return out


GOLD = {"dev": make_gold(1), "test": make_gold(2)}
NAMES = {p: [f"{p}_{i + 1}" for i in range(len(LENGTHS))] for p in GOLD}


def make_streams(test_labels=True):
    rng = np.random.default_rng(21)
    streams = {}
    for key, noise in (("audio/RE", 0.3), ("video/RE", 0.5), ("audio/STL", 0.6)):
        parts = {}
        for p, gold in GOLD.items():
            d = [np.abs(rng.standard_normal(g.size)) for g in gold]
            pred = [
                0.7 * g + 0.2 * x + noise * rng.standard_normal(g.size)
                for g, x in zip(gold, d, strict=True)
            ]
            parts[p] = {
                "names": list(NAMES[p]),
                "pred": pred,
                "pred_pp": [x + 0.1 for x in pred],
                "gold": gold if (p == "dev" or test_labels) else None,
                "extras": {"difficulty": d},
            }
        streams[key] = parts
    return streams


# ---------------------------------------------------------------------------------- fusion


def test_fusion_table_matches_ols_reference():
    streams = make_streams()
    preds = Predictions.from_arrays(streams)
    rows = {
        "P_re": ["audio/RE", "video/RE"],
        "P_re + P_bs": ["audio/RE", "video/RE", "audio/STL"],
        "audio/RE dt": ["audio/RE:dt"],
        "P_re,dt": ["audio/RE:dt", "video/RE:dt"],
        "audio/RE": ["audio/RE"],
    }
    res = fusion.fusion_table(preds, rows, which="pred_pp", ridge=0.0)
    df = res.table
    assert list(df.index) == list(rows) and df.index.name == "fusion"
    assert df.loc["P_re,dt", "members"] == "audio/RE:dt + video/RE:dt"
    assert df.loc["P_re + P_bs", "streams"] == 3
    assert (df["fitted on"] == "dev").all()

    def flat(key, p, field="pred_pp"):
        src = streams[key][p]
        return np.concatenate(src["extras"][field] if field == "difficulty" else src[field])

    gold = {p: np.concatenate(g) for p, g in GOLD.items()}
    for label in ("P_re", "P_re + P_bs"):
        coef = ols([flat(k, "dev") for k in rows[label]], gold["dev"])
        for p in GOLD:
            ref = apply(coef, [flat(k, p) for k in rows[label]])
            np.testing.assert_allclose(res.predictions.concat(label, p), ref, atol=1e-9)
            np.testing.assert_allclose(df.loc[label, f"{p} CCC"], np_ccc(ref, gold[p]), atol=1e-9)

    tuned = {}
    for k in ("audio/RE", "video/RE"):
        coef = ols([flat(k, "dev"), flat(k, "dev", "difficulty")], gold["dev"])
        tuned[k] = {p: apply(coef, [flat(k, p), flat(k, p, "difficulty")]) for p in GOLD}
        np.testing.assert_allclose(res.tunings[k].coef("difficulty"), coef[2], rtol=1e-7)
    for p in GOLD:
        np.testing.assert_allclose(
            df.loc["audio/RE dt", f"{p} CCC"], np_ccc(tuned["audio/RE"][p], gold[p]), atol=1e-9
        )
    coef = ols([tuned["audio/RE"]["dev"], tuned["video/RE"]["dev"]], gold["dev"])
    for p in GOLD:
        ref = apply(coef, [tuned["audio/RE"][p], tuned["video/RE"][p]])
        np.testing.assert_allclose(df.loc["P_re,dt", f"{p} CCC"], np_ccc(ref, gold[p]), atol=1e-9)

    assert res.fusions["audio/RE"] is None
    for p in GOLD:
        np.testing.assert_allclose(
            df.loc["audio/RE", f"{p} CCC"], np_ccc(flat("audio/RE", p), gold[p]), rtol=1e-12
        )
        per_rec = [
            np_ccc(x, g) for x, g in zip(streams["audio/RE"][p]["pred_pp"], GOLD[p], strict=True)
        ]
        np.testing.assert_allclose(
            df.loc["audio/RE", f"{p} CCC (rec. mean)"], np.mean(per_rec), rtol=1e-12
        )
    assert res.predictions.labels == tuple(rows)
    assert res.predictions.dims == preds.dims


def test_fusion_table_without_test_labels_and_missing_partition():
    streams = make_streams(test_labels=False)
    del streams["audio/STL"]["test"]
    preds = Predictions.from_arrays(streams)
    res = fusion.fusion_table(
        preds, {"P_re": ["audio/RE", "video/RE"], "all": list(streams)}, which="pred"
    )
    assert math.isnan(res.table.loc["P_re", "test CCC"])
    assert np.isfinite(res.table.loc["P_re", "dev CCC"])
    assert [x.size for x in res.predictions.series("P_re", "test")] == list(LENGTHS)
    assert not res.predictions.has_gold("test")
    assert math.isnan(res.table.loc["all", "test CCC"])
    assert "test" not in res.predictions["all"].partitions


def test_fusion_multi_dim_uses_the_chosen_column():
    streams = make_streams()
    two = {
        k: {
            p: {
                **v,
                "pred": [np.column_stack([x, -x]) for x in v["pred"]],
                "pred_pp": [np.column_stack([x, -x]) for x in v["pred_pp"]],
                "gold": [np.column_stack([g, -g]) for g in v["gold"]],
            }
            for p, v in parts.items()
        }
        for k, parts in streams.items()
    }
    rows = {"P": ["audio/RE", "video/RE:dt"]}
    one = fusion.fusion_table(Predictions.from_arrays(streams), rows)
    neg = fusion.fusion_table(Predictions.from_arrays(two, dims=("a", "v")), rows, dim="v")
    np.testing.assert_allclose(neg.table["dev CCC"], one.table["dev CCC"], rtol=1e-9)
    assert neg.predictions.dims == ("v",)


def test_fusion_table_rejects_bad_input():
    streams = make_streams()
    preds = Predictions.from_arrays(streams)
    with pytest.raises(ValueError, match="unknown member"):
        fusion.fusion_table(preds, {"x": ["audio/RE", "nope"]})
    with pytest.raises(ValueError, match="twice"):
        fusion.fusion_table(preds, {"x": ["audio/RE", "audio/RE"]})
    with pytest.raises(ValueError, match="non-empty"):
        fusion.fusion_table(preds, {})
    with pytest.raises(ValueError, match="fit_partition"):
        fusion.fusion_table(preds, {"x": ["audio/RE"]}, fit_partition="train")
    del streams["video/RE"]["dev"]["extras"]
    with pytest.raises(ValueError, match="difficulty"):
        fusion.fusion_table(Predictions.from_arrays(streams), {"x": ["video/RE:dt"]})
    preds = Predictions.from_arrays(make_streams(test_labels=False))
    with pytest.raises(ValueError, match="labels"):
        fusion.fusion_table(preds, {"x": ["audio/RE", "video/RE"]}, fit_partition="test")


# ------------------------------------------------------------------------------ difficulty


def make_difficulty_preds():
    rng = np.random.default_rng(5)
    gold = make_gold(7)
    re = [np.abs(rng.standard_normal(g.size)) for g in gold]
    pu = [np.abs(rng.standard_normal(g.size))[:, None] for g in gold]  # [T, 1] is a scalar
    systems = {
        "STL": [g + 0.5 * rng.standard_normal(g.size) for g in gold],
        "DDAT-RE": [g + 0.3 * rng.standard_normal(g.size) for g in gold],
        "DDAT-PU": [g + 0.2 * rng.standard_normal(g.size) for g in gold],
    }
    extras = {"STL": {}, "DDAT-RE": {"difficulty": re}, "DDAT-PU": {"difficulty": pu}}
    lists = {
        k: {"test": {"names": NAMES["test"], "pred": v, "gold": gold, "extras": extras[k]}}
        for k, v in systems.items()
    }
    return Predictions.from_arrays(lists), systems, gold, re, [x[:, 0] for x in pu]


def test_difficulty_table_matches_corrcoef():
    preds, systems, gold, re, pu = make_difficulty_preds()
    signals = {"RE": ("DDAT-RE", "difficulty"), "PU": ("DDAT-PU", "difficulty")}
    df = difficulty.difficulty_table(preds, baseline="STL", signals=signals, partition="test")
    assert list(df.index) == ["PCC(RE, Δc)", "PCC(PU, Δc)", "PCC(RE, PU)"]

    def dc(x):
        return difficulty.improvement(systems["STL"], x, gold)

    np.testing.assert_allclose(df.loc["PCC(RE, Δc)", "PCC"], np_pcc(re, dc(systems["DDAT-RE"])))
    np.testing.assert_allclose(df.loc["PCC(PU, Δc)", "PCC"], np_pcc(pu, dc(systems["DDAT-PU"])))
    np.testing.assert_allclose(df.loc["PCC(RE, PU)", "PCC"], np_pcc(re, pu), rtol=1e-10)
    assert (df["frames"] == sum(LENGTHS)).all() and (df["recordings"] == len(LENGTHS)).all()
    ref = [
        np.abs(b - g) - np.abs(x - g)
        for b, x, g in zip(systems["STL"], systems["DDAT-RE"], gold, strict=True)
    ]
    np.testing.assert_allclose(np.concatenate(dc(systems["DDAT-RE"])), np.concatenate(ref))


def test_difficulty_improvement_tracks_difficulty():
    gold = make_gold(8)
    rng = np.random.default_rng(0)
    re = [np.abs(rng.standard_normal(g.size)) for g in gold]
    worse = [g + d for g, d in zip(gold, re, strict=True)]
    lists = {
        "STL": {"dev": {"names": NAMES["dev"], "pred": worse, "gold": gold}},
        "DDAT": {"dev": {"names": NAMES["dev"], "pred": gold, "gold": gold, "extras": {"re": re}}},
    }
    df = difficulty.difficulty_table(
        Predictions.from_arrays(lists),
        baseline="STL",
        signals={"RE": ("DDAT", "re")},
        partition="dev",
    )
    assert list(df.index) == ["PCC(RE, Δc)"]
    np.testing.assert_allclose(df.loc["PCC(RE, Δc)", "PCC"], 1.0, atol=1e-12)


def test_difficulty_table_rejects_bad_input():
    preds, *_ = make_difficulty_preds()
    with pytest.raises(ValueError, match="at least one"):
        difficulty.difficulty_table(preds, baseline="STL", signals={}, partition="test")
    with pytest.raises(ValueError, match="lack extras"):
        difficulty.difficulty_table(
            preds, baseline="STL", signals={"RE": ("STL", "difficulty")}, partition="test"
        )
    with pytest.raises(ValueError, match="no labels"):
        difficulty.difficulty_table(
            preds, baseline="STL", signals={"RE": ("DDAT-RE", "difficulty")}, partition="dev"
        )
    lists = {
        "S": {
            "dev": {
                "names": ["a"],
                "pred": [np.zeros(5)],
                "gold": [np.ones(5)],
                "extras": {"re": [np.ones((5, 3))]},
            }
        }
    }
    with pytest.raises(ValueError, match="scalar"):
        difficulty.difficulty_table(
            Predictions.from_arrays(lists),
            baseline="S",
            signals={"RE": ("S", "re")},
            partition="dev",
        )


# ------------------------------------------------------- experiments/fusion_across_modalities


def fake_run(workdir, modality, seed):
    """A run folder as the DDAT job leaves it: config.json, predictions/, stage1/re_sum."""
    from ddat_jax.methods.ddat import artifacts
    from ddat_jax.predictions import write_predictions

    rng = np.random.default_rng(seed)
    cfg = {"data": {"modality": modality, "dimension": "arousal"}}
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps(cfg))
    lists, arrays = {}, {}
    for label, noise in (("DDAT-RE sum", 0.2), ("STL", 0.4)):
        lists[label] = {}
        for p, gold in GOLD.items():
            pred = [g + noise * rng.standard_normal(g.size) for g in gold]
            lists[label][p] = {"names": NAMES[p], "pred": pred, "pred_pp": pred, "gold": gold}
    for p, gold in GOLD.items():
        arrays[p] = {
            n: rng.standard_normal((g.size, 3)) for n, g in zip(NAMES[p], gold, strict=True)
        }
    artifacts.write_augmented(
        workdir / "stage1" / "re_sum",
        arrays,
        feature_names=["f0", "f1"],
        difficulty_names=["re_sum"],
        config_hash="x",
    )
    write_predictions(Predictions.from_arrays(lists, dims="arousal"), workdir / "predictions")
    signal = {p: [arrays[p][n][:, 2].astype(np.float32) for n in NAMES[p]] for p in GOLD}
    return {
        f"{modality}/{label}": {p: {**v, "difficulty": signal[p]} for p, v in parts.items()}
        for label, parts in lists.items()
    }


def test_fusion_across_modalities_script(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "fusion_across_modalities.py"
    spec = importlib.util.spec_from_file_location("fusion_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    streams = fake_run(tmp_path / "a", "audio", 1)
    streams |= fake_run(tmp_path / "v", "video_geometric", 2)
    out = tmp_path / "fusion"
    table = script.main([str(tmp_path / "a"), str(tmp_path / "v"), "--out", str(out)])
    assert table.loc["P_DDAT-RE sum + P_STL", "streams"] == 4
    assert (out / "table4_fusion_across_modalities.md").is_file()
    rows = {
        label: [m.strip() for m in table.loc[label, "members"].split("+")] for label in table.index
    }
    direct = fusion.fusion_table(
        Predictions.from_arrays(streams, dims="arousal"), rows, which="pred_pp"
    )
    pd.testing.assert_frame_equal(table, direct.table, check_exact=True)
