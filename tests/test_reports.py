"""Tests for ddat_jax.reports against references written here.

References: Lin's CCC and Pearson's r in plain NumPy (population statistics), the Fisher
r-to-z p-value from its formula with ``scipy.stats.norm``, an exact permutation p-value by
enumerating all ``2**R`` per-recording swaps, and ordinary least squares with an explicit
column of ones for the fusion rows.
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from ddat_jax import reports

LENGTHS = (160, 140, 180, 150, 120, 130)  # 6 recordings: 64 swaps, exact permutation test


# ------------------------------------------------------------------------------ references


def np_ccc(p, t):
    p = np.asarray(p, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    mp, mt = p.mean(), t.mean()
    cov = np.mean((p - mp) * (t - mt))
    return 2.0 * cov / (p.var() + t.var() + (mp - mt) ** 2)


def concat_ccc(preds, gold):
    return np_ccc(np.concatenate(preds), np.concatenate(gold))


def mean_ccc(preds, gold):
    return float(np.mean([np_ccc(p, g) for p, g in zip(preds, gold, strict=True)]))


def fisher_p(ca, cb, n):
    z = (np.arctanh(ca) - np.arctanh(cb)) / math.sqrt(2.0 / (n - 3))
    return float(scipy.stats.norm.sf(z))


def exact_perm_p(pa, pb, gold):
    observed = concat_ccc(pa, gold) - concat_ccc(pb, gold)
    hits = 0
    swaps = list(itertools.product((False, True), repeat=len(gold)))
    for swap in swaps:
        xa = [b if s else a for a, b, s in zip(pa, pb, swap, strict=True)]
        xb = [a if s else b for a, b, s in zip(pa, pb, swap, strict=True)]
        hits += concat_ccc(xa, gold) - concat_ccc(xb, gold) >= observed - 1e-12
    return hits / len(swaps)


# --------------------------------------------------------------------------------- fixtures


def make_gold(seed, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        x = np.cumsum(rng.standard_normal(n))
        out.append((x - x.mean()) / (x.std() + 1.0) * 0.4 + 0.05)
    return out


GOLD = {"dev": make_gold(1), "test": make_gold(2)}
NAMES = {p: [f"{p}_{i + 1}" for i in range(len(LENGTHS))] for p in GOLD}


def make_system(noise, seed, *, test_labels=True, bias=0.0):
    rng = np.random.default_rng(seed)
    out = {}
    for p, gold in GOLD.items():
        pred = [g + bias + noise * rng.standard_normal(g.size) for g in gold]
        out[p] = {
            "names": list(NAMES[p]),
            "pred": pred,
            "pred_pp": [0.8 * x + 0.01 for x in pred],
            "gold": [g.copy() for g in gold] if (p == "dev" or test_labels) else None,
        }
    return out


@pytest.fixture
def systems():
    return {
        "STL": make_system(1.0, 10),
        "MTL-RE": make_system(0.9, 11),
        "DDAT-RE sum": make_system(0.15, 12),
    }


COMPARISONS = {"DDAT-RE sum": {"mtl": "MTL-RE", "stl": "STL"}, "MTL-RE": {"stl": "STL"}}


# ----------------------------------------------------------------------------- Tables I, II


@pytest.mark.parametrize("which", ["pred", "pred_pp"])
def test_ccc_columns_match_numpy_reference(systems, which):
    df = reports.results_table(systems, which=which, comparisons=COMPARISONS, n_resamples=99)
    assert list(df.index) == list(systems)
    assert df.index.name == "system"
    for label, parts in systems.items():
        for p, part in parts.items():
            np.testing.assert_allclose(
                df.loc[label, f"{p} CCC"], concat_ccc(part[which], part["gold"]), rtol=1e-12
            )
            np.testing.assert_allclose(
                df.loc[label, f"{p} CCC (rec. mean)"],
                mean_ccc(part[which], part["gold"]),
                rtol=1e-12,
            )


def test_small_noise_significantly_better_than_large_noise(systems):
    df = reports.results_table(systems, comparisons=COMPARISONS, n_resamples=99)
    row = df.loc["DDAT-RE sum"]
    assert row["vs mtl"] == "MTL-RE" and row["vs stl"] == "STL"
    for role in ("mtl", "stl"):
        assert row[f"{role} Fisher p"] < 0.05
        assert row[f"{role} perm. p"] < 0.05
    assert row["marks"] == "*†"
    assert row["sig. partition"] == "test"
    assert row["sig. frames"] == sum(LENGTHS)
    assert row["sig. recordings"] == len(LENGTHS)
    # Baseline rows carry no test against themselves.
    assert df.loc["STL", "marks"] == ""
    assert math.isnan(df.loc["STL", "stl Fisher p"])


def test_p_values_match_independent_references(systems):
    df = reports.results_table(systems, comparisons=COMPARISONS, n_resamples=99)
    test = {k: v["test"] for k, v in systems.items()}
    n = sum(LENGTHS)
    for system, cmp in COMPARISONS.items():
        for role, base in cmp.items():
            ca = concat_ccc(test[system]["pred"], test[system]["gold"])
            cb = concat_ccc(test[base]["pred"], test[base]["gold"])
            np.testing.assert_allclose(
                df.loc[system, f"{role} Fisher p"], fisher_p(ca, cb, n), rtol=1e-9, atol=1e-300
            )
            np.testing.assert_allclose(
                df.loc[system, f"{role} perm. p"],
                exact_perm_p(test[system]["pred"], test[base]["pred"], test[system]["gold"]),
                rtol=1e-12,
            )


def test_worse_system_gets_no_mark(systems):
    systems = {"STL": systems["DDAT-RE sum"], "MTL-RE": systems["STL"]}
    df = reports.results_table(
        systems, comparisons={"MTL-RE": {"stl": "STL"}}, n_resamples=99, mark_by="both"
    )
    assert df.loc["MTL-RE", "stl Fisher p"] > 0.5
    assert df.loc["MTL-RE", "stl perm. p"] > 0.5
    assert df.loc["MTL-RE", "marks"] == ""


def test_mark_by_permutation_needs_enough_recordings():
    # Two recordings: the smallest attainable permutation p is 1/4 > 0.05, so a large
    # Fisher-significant gain gets a mark only when Fisher drives the marks.
    lengths = (300, 300)
    gold = make_gold(3, lengths)
    rng = np.random.default_rng(0)

    def sys(noise):
        pred = [g + noise * rng.standard_normal(g.size) for g in gold]
        return {"dev": {"names": ["a", "b"], "pred": pred, "pred_pp": pred, "gold": gold}}

    systems = {"STL": sys(1.0), "DDAT": sys(0.1)}
    cmp = {"DDAT": {"stl": "STL"}}
    fisher = reports.results_table(systems, comparisons=cmp, n_resamples=99, mark_by="fisher")
    perm = reports.results_table(systems, comparisons=cmp, n_resamples=99, mark_by="permutation")
    assert fisher.loc["DDAT", "marks"] == "†"
    assert perm.loc["DDAT", "stl perm. p"] == pytest.approx(0.25)
    assert perm.loc["DDAT", "marks"] == ""
    assert "permutation test" in perm.attrs["legend"]


def test_missing_test_labels_fall_back_to_dev(systems):
    systems = {
        "STL": make_system(1.0, 10, test_labels=False),
        "DDAT-RE sum": make_system(0.15, 12, test_labels=False),
    }
    df = reports.results_table(systems, comparisons={"DDAT-RE sum": {"stl": "STL"}}, n_resamples=99)
    assert df["test CCC"].isna().all()
    assert df["test CCC (rec. mean)"].isna().all()
    row = df.loc["DDAT-RE sum"]
    assert row["sig. partition"] == "dev"
    dev = systems["DDAT-RE sum"]["dev"]
    base = systems["STL"]["dev"]
    ca, cb = concat_ccc(dev["pred"], dev["gold"]), concat_ccc(base["pred"], base["gold"])
    np.testing.assert_allclose(row["stl Fisher p"], fisher_p(ca, cb, sum(LENGTHS)), atol=1e-300)
    assert row["marks"] == "†"
    md = reports.to_markdown(df)
    assert "n/a" in md


def test_nan_prediction_gives_no_test_and_no_mark(systems):
    systems["DDAT-RE sum"]["test"]["pred"][0][3] = np.nan
    df = reports.results_table(systems, comparisons=COMPARISONS, n_resamples=99)
    row = df.loc["DDAT-RE sum"]
    assert math.isnan(row["test CCC"])
    assert math.isnan(row["mtl Fisher p"]) and math.isnan(row["mtl perm. p"])
    assert row["marks"] == ""


def test_custom_marks_and_explicit_partition(systems):
    df = reports.results_table(
        systems,
        comparisons={"DDAT-RE sum": {"base": "STL"}},
        marks={"base": "+"},
        sig_partition="dev",
        n_resamples=99,
    )
    assert df.loc["DDAT-RE sum", "marks"] == "+"
    assert df.loc["DDAT-RE sum", "sig. partition"] == "dev"
    assert "+: significantly better" in df.attrs["legend"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"which": "raw"}, "which"),
        ({"mark_by": "t-test"}, "mark_by"),
        ({"alpha": 1.5}, "alpha"),
        ({"comparisons": {"DDAT-RE sum": {"dnn": "STL"}}}, "role"),
        ({"comparisons": {"DDAT-RE sum": {"stl": "CL-GRU"}}}, "not in systems"),
        ({"comparisons": {"CL-GRU": {"stl": "STL"}}}, "not in systems"),
        ({"comparisons": {"STL": {"stl": "STL"}}}, "itself"),
    ],
)
def test_results_table_rejects_bad_arguments(systems, kwargs, match):
    with pytest.raises(ValueError, match=match):
        reports.results_table(systems, n_resamples=9, **kwargs)


def test_results_table_rejects_malformed_systems(systems):
    bad = {k: {p: dict(v) for p, v in parts.items()} for k, parts in systems.items()}
    bad["STL"]["dev"]["pred"] = bad["STL"]["dev"]["pred"][:-1]
    with pytest.raises(ValueError, match="recordings"):
        reports.results_table(bad)
    bad = {k: {p: dict(v) for p, v in parts.items()} for k, parts in systems.items()}
    bad["STL"]["dev"]["pred"] = [x[:-1] for x in bad["STL"]["dev"]["pred"]]
    with pytest.raises(ValueError, match="frames"):
        reports.results_table(bad)
    bad = {k: {p: dict(v) for p, v in parts.items()} for k, parts in systems.items()}
    bad["STL"]["dev"]["extra"] = 1
    with pytest.raises(ValueError, match="unknown keys"):
        reports.results_table(bad)
    with pytest.raises(ValueError, match="non-empty"):
        reports.results_table({})


def test_baseline_on_different_gold_is_rejected(systems):
    systems["STL"]["test"]["gold"] = [g + 1.0 for g in systems["STL"]["test"]["gold"]]
    with pytest.raises(ValueError, match="same recordings and gold"):
        reports.results_table(systems, comparisons=COMPARISONS, n_resamples=9)


# ------------------------------------------------------------------------------- Table III


def np_pcc(a, b):
    return float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1])


def test_difficulty_analysis_matches_corrcoef():
    rng = np.random.default_rng(5)
    gold = make_gold(7)
    base = [g + 0.5 * rng.standard_normal(g.size) for g in gold]
    ddat_re = [g + 0.3 * rng.standard_normal(g.size) for g in gold]
    ddat_pu = [g + 0.2 * rng.standard_normal(g.size) for g in gold]
    re = [np.abs(rng.standard_normal(g.size)) for g in gold]
    pu = [np.abs(rng.standard_normal(g.size)) for g in gold]

    def dc(d):
        return [np.abs(b - g) - np.abs(x - g) for b, x, g in zip(base, d, gold, strict=True)]

    df = reports.difficulty_analysis(re, pu, base, {"re": ddat_re, "pu": ddat_pu}, gold)
    assert list(df.index) == ["PCC(RE, Δc)", "PCC(PU, Δc)", "PCC(RE, PU)"]
    np.testing.assert_allclose(df.loc["PCC(RE, Δc)", "PCC"], np_pcc(re, dc(ddat_re)), rtol=1e-10)
    np.testing.assert_allclose(df.loc["PCC(PU, Δc)", "PCC"], np_pcc(pu, dc(ddat_pu)), rtol=1e-10)
    np.testing.assert_allclose(df.loc["PCC(RE, PU)", "PCC"], np_pcc(re, pu), rtol=1e-10)
    assert (df["frames"] == sum(LENGTHS)).all()
    assert (df["recordings"] == len(LENGTHS)).all()

    one = reports.difficulty_analysis(re, None, base, ddat_re, gold)
    assert list(one.index) == ["PCC(RE, Δc)"]
    np.testing.assert_allclose(one.iloc[0]["PCC"], np_pcc(re, dc(ddat_re)), rtol=1e-10)


def test_difficulty_analysis_improvement_tracks_difficulty():
    # DDAT is better exactly where the difficulty is high: strong positive PCC(RE, Δc).
    rng = np.random.default_rng(0)
    gold = make_gold(8)
    re = [np.abs(rng.standard_normal(g.size)) for g in gold]
    base = [g + d for g, d in zip(gold, re, strict=True)]
    ddat = [g.copy() for g in gold]
    df = reports.difficulty_analysis(re, None, base, ddat, gold)
    np.testing.assert_allclose(df.loc["PCC(RE, Δc)", "PCC"], 1.0, atol=1e-12)


def test_difficulty_analysis_rejects_bad_input():
    gold = make_gold(9)
    with pytest.raises(ValueError, match="neither"):
        reports.difficulty_analysis(None, None, gold, gold, gold)
    with pytest.raises(ValueError, match="re_scalar"):
        reports.difficulty_analysis([np.ones((g.size, 3)) for g in gold], None, gold, gold, gold)
    with pytest.raises(ValueError, match="frames"):
        reports.difficulty_analysis([g[:-1] for g in gold], None, gold, gold, gold)
    with pytest.raises(ValueError, match="unknown"):
        reports.difficulty_analysis(gold, None, gold, {"xx": gold}, gold)


# -------------------------------------------------------------------------------- Table IV


def ols(columns, y):
    x = np.column_stack([np.ones(len(y))] + columns)
    return np.linalg.lstsq(x, y, rcond=None)[0]


def apply(coef, columns):
    return coef[0] + sum(c * x for c, x in zip(coef[1:], columns, strict=True))


def make_streams(test_labels=True):
    rng = np.random.default_rng(21)
    streams = {}
    for key, noise in (("audio/RE", 0.3), ("video/RE", 0.5), ("audio/STL", 0.6)):
        parts = {}
        for p, gold in GOLD.items():
            difficulty = [np.abs(rng.standard_normal(g.size)) for g in gold]
            pred = [
                0.7 * g + 0.2 * d + noise * rng.standard_normal(g.size)
                for g, d in zip(gold, difficulty, strict=True)
            ]
            parts[p] = {
                "names": list(NAMES[p]),
                "pred": pred,
                "pred_pp": [x + 0.1 for x in pred],
                "gold": gold if (p == "dev" or test_labels) else None,
                "difficulty": difficulty,
            }
        streams[key] = parts
    return streams


def test_fusion_table_matches_ols_reference():
    streams = make_streams()
    rows = {
        "P_re": ["audio/RE", "video/RE"],
        "P_re + P_bs": ["audio/RE", "video/RE", "audio/STL"],
        "audio/RE dt": ["audio/RE:dt"],
        "P_re,dt": ["audio/RE:dt", "video/RE:dt"],
        "audio/RE": ["audio/RE"],
    }
    res = reports.fusion_table(streams, rows, which="pred_pp", ridge=0.0)
    df = res.table
    assert list(df.index) == list(rows)
    assert df.loc["P_re,dt", "members"] == "audio/RE:dt + video/RE:dt"
    assert df.loc["P_re + P_bs", "streams"] == 3

    def flat(key, p, field="pred_pp"):
        return np.concatenate(streams[key][p][field])

    gold = {p: np.concatenate(g) for p, g in GOLD.items()}

    # Flat SLR over raw members.
    for label, keys in (("P_re", rows["P_re"]), ("P_re + P_bs", rows["P_re + P_bs"])):
        coef = ols([flat(k, "dev") for k in keys], gold["dev"])
        for p in GOLD:
            ref = apply(coef, [flat(k, p) for k in keys])
            np.testing.assert_allclose(np.concatenate(res.predictions[label][p]), ref, atol=1e-9)
            np.testing.assert_allclose(df.loc[label, f"{p} CCC"], np_ccc(ref, gold[p]), atol=1e-9)

    # Dynamic tuning per stream, then fusion of the tuned streams.
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

    # A single raw member is reported as it is, without re-fitting.
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


def test_fusion_table_without_test_labels():
    streams = make_streams(test_labels=False)
    res = reports.fusion_table(streams, {"P_re": ["audio/RE", "video/RE"]}, which="pred")
    assert math.isnan(res.table.loc["P_re", "test CCC"])
    assert np.isfinite(res.table.loc["P_re", "dev CCC"])
    assert [x.size for x in res.predictions["P_re"]["test"]] == list(LENGTHS)


def test_fusion_table_rejects_bad_input():
    streams = make_streams()
    with pytest.raises(ValueError, match="unknown member"):
        reports.fusion_table(streams, {"x": ["audio/RE", "nope"]})
    with pytest.raises(ValueError, match="twice"):
        reports.fusion_table(streams, {"x": ["audio/RE", "audio/RE"]})
    del streams["video/RE"]["dev"]["difficulty"]
    with pytest.raises(ValueError, match="difficulty"):
        reports.fusion_table(streams, {"x": ["video/RE:dt"]})
    streams = make_streams(test_labels=False)
    with pytest.raises(ValueError, match="labels"):
        reports.fusion_table(streams, {"x": ["audio/RE", "video/RE"]}, fit_partition="test")


# ---------------------------------------------------------------------------------- writing


def test_write_table_csv_and_markdown_roundtrip(systems, tmp_path):
    df = reports.results_table(systems, which="pred_pp", comparisons=COMPARISONS, n_resamples=99)
    csv_path, md_path = reports.write_table(
        df, tmp_path / "results", "table2_arousal_audio", caption="Table II, arousal, audio."
    )
    assert sorted(os.listdir(tmp_path / "results")) == [
        "table2_arousal_audio.csv",
        "table2_arousal_audio.md",
    ]
    back = pd.read_csv(csv_path, index_col=0)
    assert list(back.index) == list(df.index)
    assert list(back.columns) == list(df.columns)
    for col in [c for c in df.columns if "CCC" in c or c.endswith(" p")]:
        np.testing.assert_allclose(back[col].to_numpy(float), df[col].to_numpy(float), rtol=1e-12)
    assert back.loc["DDAT-RE sum", "marks"] == "*†"

    md = md_path.read_text(encoding="utf-8")
    assert "Table II, arousal, audio." in md
    assert "concatenation" in md and "AVEC 2018" in md  # CCC aggregation stated
    assert "*: significantly better than the MTL" in md and "†: significantly better" in md
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + len(systems)
    assert all(ln.count(" | ") == len(df.columns) for ln in lines[:1] + lines[2:])
    # The Markdown table itself parses back (pipe-separated, n/a as NaN).
    cells = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    parsed = pd.DataFrame(cells[2:], columns=cells[0]).set_index("system")
    parsed = parsed.replace("n/a", np.nan)
    np.testing.assert_allclose(
        parsed["test CCC"].astype(float).to_numpy(), df["test CCC"].to_numpy(), atol=5e-4
    )


def test_write_table_overwrites_atomically_and_validates(tmp_path):
    df = pd.DataFrame({"a": [1.0, np.nan]}, index=pd.Index(["x", "y"], name="row"))
    reports.write_table(df, tmp_path, "t", caption="first")
    reports.write_table(df, tmp_path, "t", caption="second")
    assert sorted(os.listdir(tmp_path)) == ["t.csv", "t.md"]
    md = (tmp_path / "t.md").read_text(encoding="utf-8")
    assert "second" in md and "first" not in md and "n/a" in md
    with pytest.raises(ValueError, match="plain file name"):
        reports.write_table(df, tmp_path, "../t", caption="c")
    with pytest.raises(ValueError, match="caption"):
        reports.write_table(df, tmp_path, "t", caption=" ")


def test_write_predictions_layout_and_values(tmp_path):
    systems = {
        "DDAT-RE vector": make_system(0.2, 1),
        "STL": make_system(0.5, 2, test_labels=False),
    }
    paths = reports.write_predictions(systems, tmp_path / "predictions", frame_period=0.04)
    assert len(paths) == 2 * 2 * len(LENGTHS)
    f = tmp_path / "predictions" / "ddat-re-vector" / "test" / "test_2.csv"
    assert f in paths
    back = pd.read_csv(f)
    assert list(back.columns) == ["time", "prediction", "prediction_pp", "gold"]
    part = systems["DDAT-RE vector"]["test"]
    np.testing.assert_allclose(back["time"], np.arange(LENGTHS[1]) * 0.04, atol=1e-9)
    assert back["time"].iloc[3] == 0.12
    np.testing.assert_allclose(back["prediction"], part["pred"][1], rtol=1e-15)
    np.testing.assert_allclose(back["prediction_pp"], part["pred_pp"][1], rtol=1e-15)
    np.testing.assert_allclose(back["gold"], part["gold"][1], rtol=1e-15)
    unlabelled = pd.read_csv(tmp_path / "predictions" / "stl" / "test" / "test_1.csv")
    assert unlabelled["gold"].isna().all()
    assert list(unlabelled.columns) == ["time", "prediction", "prediction_pp", "gold"]


def test_write_predictions_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="share the folder"):
        reports.write_predictions(
            {"DDAT RE": make_system(0.2, 1), "ddat-re": make_system(0.2, 1)}, tmp_path
        )
    bad = make_system(0.2, 1)
    bad["dev"]["names"][0] = "../x"
    with pytest.raises(ValueError, match="recording name"):
        reports.write_predictions({"STL": bad}, tmp_path)
    with pytest.raises(ValueError, match="frame_period"):
        reports.write_predictions({"STL": make_system(0.2, 1)}, tmp_path, frame_period=0)


def test_slugify():
    assert reports.slugify("DDAT-RE vector") == "ddat-re-vector"
    assert reports.slugify("CL (GRU)") == "cl-gru"
    with pytest.raises(ValueError):
        reports.slugify("///")
