"""Tests for ddat_jax.evaluation.tables and .io against references written here.

References: Lin's CCC in plain NumPy (population statistics), the Fisher r-to-z p-value from
its formula with ``scipy.stats.norm``, and an exact permutation p-value by enumerating all
``2**R`` per-recording swaps.
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from ddat_jax.evaluation import io, tables
from ddat_jax.predictions import Predictions

LENGTHS = (160, 140, 180, 150, 120, 130)  # 6 recordings: 64 swaps, exact permutation test


# ------------------------------------------------------------------------------ references


def np_ccc(p, t):
    p, t = np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
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


def np_rmse(preds, gold):
    return float(np.sqrt(np.mean((np.concatenate(preds) - np.concatenate(gold)) ** 2)))


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


def make_lists():
    return {
        "STL": make_system(1.0, 10),
        "MTL-RE": make_system(0.9, 11),
        "DDAT-RE sum": make_system(0.15, 12),
    }


@pytest.fixture
def systems():
    return make_lists()


@pytest.fixture
def preds(systems):
    return Predictions.from_arrays(systems, dims=("arousal",))


COMPARISONS = {"DDAT-RE sum": {"mtl": "MTL-RE", "stl": "STL"}, "MTL-RE": {"stl": "STL"}}


# -------------------------------------------------------------------------------- CCC table


@pytest.mark.parametrize("which", ["pred", "pred_pp"])
def test_ccc_columns_match_numpy_reference(systems, preds, which):
    df = tables.ccc_table(preds, which=which, comparisons=COMPARISONS, n_resamples=99)
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


def test_small_noise_significantly_better_than_large_noise(preds):
    df = tables.ccc_table(preds, comparisons=COMPARISONS, n_resamples=99)
    row = df.loc["DDAT-RE sum"]
    assert row["vs mtl"] == "MTL-RE" and row["vs stl"] == "STL"
    for role in ("mtl", "stl"):
        assert row[f"{role} Fisher p"] < 0.05
        assert row[f"{role} perm. p"] < 0.05
    assert row["marks"] == "*†"
    assert row["sig. partition"] == "test"
    assert row["sig. frames"] == sum(LENGTHS)
    assert row["sig. recordings"] == len(LENGTHS)
    assert df.loc["STL", "marks"] == ""
    assert math.isnan(df.loc["STL", "stl Fisher p"])


def test_p_values_match_independent_references(systems, preds):
    df = tables.ccc_table(preds, comparisons=COMPARISONS, n_resamples=99)
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
    preds = Predictions.from_arrays({"STL": systems["DDAT-RE sum"], "MTL-RE": systems["STL"]})
    df = tables.ccc_table(
        preds, comparisons={"MTL-RE": {"stl": "STL"}}, n_resamples=99, mark_by="both"
    )
    assert df.loc["MTL-RE", "stl Fisher p"] > 0.5
    assert df.loc["MTL-RE", "stl perm. p"] > 0.5
    assert df.loc["MTL-RE", "marks"] == ""


def test_mark_by_permutation_needs_enough_recordings():
    # Two recordings: the smallest attainable permutation p is 1/4 > 0.05, so a large
    # Fisher-significant gain gets a mark only when Fisher drives the marks.
    gold = make_gold(3, (300, 300))
    rng = np.random.default_rng(0)

    def sys(noise):
        pred = [g + noise * rng.standard_normal(g.size) for g in gold]
        return {"dev": {"names": ["a", "b"], "pred": pred, "gold": gold}}

    preds = Predictions.from_arrays({"STL": sys(1.0), "DDAT": sys(0.1)})
    cmp = {"DDAT": {"stl": "STL"}}
    fisher = tables.ccc_table(preds, comparisons=cmp, n_resamples=99, mark_by="fisher")
    perm = tables.ccc_table(preds, comparisons=cmp, n_resamples=99, mark_by="permutation")
    assert fisher.loc["DDAT", "marks"] == "†"
    assert perm.loc["DDAT", "stl perm. p"] == pytest.approx(0.25)
    assert perm.loc["DDAT", "marks"] == ""
    assert "permutation test" in perm.attrs["legend"]


def test_missing_test_labels_fall_back_to_dev():
    lists = {
        "STL": make_system(1.0, 10, test_labels=False),
        "DDAT-RE sum": make_system(0.15, 12, test_labels=False),
    }
    preds = Predictions.from_arrays(lists)
    df = tables.ccc_table(preds, comparisons={"DDAT-RE sum": {"stl": "STL"}}, n_resamples=99)
    assert df["test CCC"].isna().all() and df["test CCC (rec. mean)"].isna().all()
    row = df.loc["DDAT-RE sum"]
    assert row["sig. partition"] == "dev"
    dev, base = lists["DDAT-RE sum"]["dev"], lists["STL"]["dev"]
    ca, cb = concat_ccc(dev["pred"], dev["gold"]), concat_ccc(base["pred"], base["gold"])
    np.testing.assert_allclose(row["stl Fisher p"], fisher_p(ca, cb, sum(LENGTHS)), atol=1e-300)
    assert row["marks"] == "†"
    assert "n/a" in io.to_markdown(df)


def test_custom_marks_and_explicit_partition(preds):
    df = tables.ccc_table(
        preds,
        comparisons={"DDAT-RE sum": {"base": "STL"}},
        marks={"base": "+"},
        sig_partition="dev",
        n_resamples=99,
    )
    assert df.loc["DDAT-RE sum", "marks"] == "+"
    assert df.loc["DDAT-RE sum", "sig. partition"] == "dev"
    assert "+: significantly better" in df.attrs["legend"]


def test_no_comparisons_gives_empty_significance(preds):
    df = tables.ccc_table(preds)
    assert list(df.columns)[-4:] == ["sig. partition", "sig. frames", "sig. recordings", "marks"]
    assert df["sig. frames"].isna().all() and (df["marks"] == "").all()


def test_system_without_a_partition_gets_nan(systems):
    del systems["MTL-RE"]["test"]
    preds = Predictions.from_arrays(systems)
    df = tables.ccc_table(preds, comparisons={"DDAT-RE sum": {"stl": "STL"}}, n_resamples=9)
    assert math.isnan(df.loc["MTL-RE", "test CCC"])
    with pytest.raises(ValueError, match="no such partition"):
        tables.ccc_table(preds, comparisons={"MTL-RE": {"stl": "STL"}}, sig_partition="test")


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
        ({"dim": "valence"}, "unknown dim"),
    ],
)
def test_ccc_table_rejects_bad_arguments(systems, kwargs, match):
    preds = Predictions.from_arrays(systems, dims="arousal")
    with pytest.raises(ValueError, match=match):
        tables.ccc_table(preds, n_resamples=9, **kwargs)


def test_multi_dim_tables_score_the_chosen_column(systems):
    # Dimension "v" holds the STL predictions' reversed copy: its CCCs must be those of
    # the 1-D table built from that column alone.
    two = {
        k: {
            p: {
                **v,
                "pred": [np.column_stack([x, x[::-1]]) for x in v["pred"]],
                "pred_pp": None,
                "gold": [np.column_stack([g, g]) for g in v["gold"]] if v["gold"] else None,
            }
            for p, v in parts.items()
        }
        for k, parts in systems.items()
    }
    preds = Predictions.from_arrays(two, dims=("a", "v"))
    one = {
        k: {
            p: {**v, "pred": [x[::-1] for x in v["pred"]], "pred_pp": None}
            for p, v in parts.items()
        }
        for k, parts in systems.items()
    }
    ref = tables.ccc_table(Predictions.from_arrays(one), comparisons=COMPARISONS, n_resamples=99)
    got = tables.ccc_table(preds, dim="v", comparisons=COMPARISONS, n_resamples=99)
    pd.testing.assert_frame_equal(got, ref)
    with pytest.raises(ValueError, match="several dims"):
        tables.ccc_table(preds)


# -------------------------------------------------------------------------------- RMSE


def test_rmse_table_matches_reference():
    lists = make_lists()
    lists["STL"]["test"]["gold"] = None
    for s in lists.values():
        s["test"]["gold"] = None
    preds = Predictions.from_arrays(lists)
    df = tables.rmse_table(preds, which="pred_pp")
    assert list(df.columns) == [
        "dev RMSE",
        "dev RMSE (rec. mean)",
        "test RMSE",
        "test RMSE (rec. mean)",
    ]
    for label, parts in lists.items():
        dev = parts["dev"]
        np.testing.assert_allclose(df.loc[label, "dev RMSE"], np_rmse(dev["pred_pp"], dev["gold"]))
        per = [np_rmse([x], [g]) for x, g in zip(dev["pred_pp"], dev["gold"], strict=True)]
        np.testing.assert_allclose(df.loc[label, "dev RMSE (rec. mean)"], np.mean(per))
    assert df["test RMSE"].isna().all()


# ---------------------------------------------------------------------------------- writing


def test_write_table_csv_and_markdown_roundtrip(preds, tmp_path):
    df = tables.ccc_table(preds, which="pred_pp", comparisons=COMPARISONS, n_resamples=99)
    csv_path, md_path = io.write_table(
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
    assert "concatenation" in md and "AVEC 2018" in md
    assert "*: significantly better than the MTL" in md and "†: significantly better" in md
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + len(preds.labels)
    assert all(ln.count(" | ") == len(df.columns) for ln in lines[:1] + lines[2:])
    cells = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    parsed = pd.DataFrame(cells[2:], columns=cells[0]).set_index("system").replace("n/a", np.nan)
    np.testing.assert_allclose(
        parsed["test CCC"].astype(float).to_numpy(), df["test CCC"].to_numpy(), atol=5e-4
    )


def test_write_table_overwrites_atomically_and_validates(tmp_path):
    df = pd.DataFrame({"a": [1.0, np.nan]}, index=pd.Index(["x", "y"], name="row"))
    io.write_table(df, tmp_path, "t", caption="first")
    io.write_table(df, tmp_path, "t", caption="second")
    assert sorted(os.listdir(tmp_path)) == ["t.csv", "t.md"]
    md = (tmp_path / "t.md").read_text(encoding="utf-8")
    assert "second" in md and "first" not in md and "n/a" in md
    with pytest.raises(ValueError, match="plain file name"):
        io.write_table(df, tmp_path, "../t", caption="c")
    with pytest.raises(ValueError, match="caption"):
        io.write_table(df, tmp_path, "t", caption=" ")
    with pytest.raises(ValueError, match="DataFrame"):
        io.write_table({"a": 1}, tmp_path, "t", caption="c")


def test_format_cell():
    assert io.format_cell(float("nan"), ".3f") == "n/a"
    assert io.format_cell(pd.NA, "d") == "n/a"
    assert io.format_cell(0.123456, ".3f") == "0.123"
    assert io.format_cell(12.0, "d") == "12"
    assert io.format_cell(1.5, "d") == "1.5"
    assert io.format_cell("a|b", None) == "a\\|b"


# ------------------------------------------------------------------------- several dims


def test_dims_table_per_dim_and_mean():
    rng = np.random.default_rng(4)
    dims = ("arousal", "valence", "dominance")
    lists = {}
    for label, noise in (("CER-MTL", 0.2), ("STL", 0.6)):
        lists[label] = {}
        for p, gold in GOLD.items():
            g3 = [np.column_stack([g, -g, 0.5 * g]) for g in gold]
            pred = [g + noise * rng.standard_normal(g.shape) for g in g3]
            lists[label][p] = {"names": NAMES[p], "pred": pred, "gold": g3}
    preds = Predictions.from_arrays(lists, dims=dims)
    for aggregate, ref in (("concat", concat_ccc), ("mean", mean_ccc)):
        df = tables.dims_table(preds, aggregate=aggregate)
        assert list(df.columns)[:4] == [
            "dev arousal CCC", "dev valence CCC", "dev dominance CCC", "dev mean CCC"
        ]  # fmt: skip
        for label, parts in lists.items():
            for p, v in parts.items():
                per = [
                    ref([x[:, j] for x in v["pred"]], [g[:, j] for g in v["gold"]])
                    for j in range(3)
                ]
                got = [df.loc[label, f"{p} {d} CCC"] for d in dims]
                np.testing.assert_allclose(got, per, rtol=1e-12)
                np.testing.assert_allclose(df.loc[label, f"{p} mean CCC"], np.mean(per))
    with pytest.raises(ValueError, match="aggregate"):
        tables.dims_table(preds, aggregate="median")
