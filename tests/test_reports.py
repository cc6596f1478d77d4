"""Refactor equivalence: the legacy ddat_jax.reports (dict input) vs ddat_jax.evaluation.

The independent-reference tests of these tables (NumPy CCC, Fisher formula, exact
permutation enumeration, OLS fusion, ``np.corrcoef``) live in ``test_evaluation_tables.py``
and ``test_evaluation_fusion.py``. Here the same inputs are built both ways -- the legacy
nested dicts and :class:`~ddat_jax.predictions.Predictions` -- and the tables must be equal
exactly: same index, columns, dtypes, values and ``attrs``. The legacy module goes away
when the DDAT pipeline has moved to the evaluation layer; this file goes with it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ddat_jax import reports
from ddat_jax.evaluation import difficulty, fusion, io, tables
from ddat_jax.predictions import Predictions, write_predictions

LENGTHS = (160, 140, 180, 150, 120, 130)


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


def make_systems(test_labels=True):
    return {
        "STL": make_system(1.0, 10, test_labels=test_labels),
        "MTL-RE": make_system(0.9, 11, test_labels=test_labels),
        "DDAT-RE sum": make_system(0.15, 12, test_labels=test_labels),
        "CL-GRU": make_system(0.95, 13, test_labels=test_labels, bias=0.1),
    }


COMPARISONS = {
    "DDAT-RE sum": {"mtl": "MTL-RE", "stl": "STL"},
    "MTL-RE": {"stl": "STL"},
    "CL-GRU": {"stl": "STL"},
}


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame):
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs == b.attrs


# ---------------------------------------------------------------------------- CCC tables


@pytest.mark.parametrize("which", ["pred", "pred_pp"])
@pytest.mark.parametrize("mark_by", ["fisher", "permutation", "both"])
@pytest.mark.parametrize("test_labels", [True, False])
def test_ccc_table_equals_results_table(which, mark_by, test_labels):
    systems = make_systems(test_labels)
    kw = dict(which=which, comparisons=COMPARISONS, n_resamples=99, seed=3, mark_by=mark_by)
    assert_same_table(
        reports.results_table(systems, **kw),
        tables.ccc_table(Predictions.from_arrays(systems), **kw),
    )


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"comparisons": {"DDAT-RE sum": {"base": "STL"}}, "marks": {"base": "+"}},
        {"comparisons": COMPARISONS, "sig_partition": "dev", "alpha": 0.01},
        {"comparisons": {"MTL-RE": {"stl": "STL"}}, "n_resamples": 9, "seed": 7},
    ],
)
def test_ccc_table_equals_results_table_options(kw):
    systems = make_systems()
    assert_same_table(
        reports.results_table(systems, **({"n_resamples": 99} | kw)),
        tables.ccc_table(Predictions.from_arrays(systems), **({"n_resamples": 99} | kw)),
    )


def test_ccc_table_equals_results_table_with_a_missing_partition():
    systems = make_systems()
    del systems["CL-GRU"]["test"]
    cmp = {"DDAT-RE sum": COMPARISONS["DDAT-RE sum"], "CL-GRU": {"stl": "STL"}}
    assert_same_table(
        reports.results_table(systems, comparisons=cmp, n_resamples=99),
        tables.ccc_table(Predictions.from_arrays(systems), comparisons=cmp, n_resamples=99),
    )


# ---------------------------------------------------------------------------- fusion table


def make_streams(test_labels=True):
    rng = np.random.default_rng(21)
    streams = {}
    for key, noise in (("audio/RE", 0.3), ("video/RE", 0.5), ("audio/STL", 0.6)):
        parts = {}
        for p, gold in GOLD.items():
            d = [np.abs(rng.standard_normal((g.size, 2))) for g in gold]
            pred = [
                0.7 * g + 0.2 * x[:, 0] + noise * rng.standard_normal(g.size)
                for g, x in zip(gold, d, strict=True)
            ]
            parts[p] = {
                "names": list(NAMES[p]),
                "pred": pred,
                "pred_pp": [x + 0.1 for x in pred],
                "gold": gold if (p == "dev" or test_labels) else None,
                "difficulty": d if key != "audio/STL" else [x[:, 0] for x in d],
            }
        streams[key] = parts
    return streams


ROWS = {
    "P_re": ["audio/RE", "video/RE"],
    "P_re + P_bs": ["audio/RE", "video/RE", "audio/STL"],
    "audio/RE dt": ["audio/RE:dt"],
    "P_re,dt": ["audio/RE:dt", "video/RE:dt"],
    "P_bs,dt": ["audio/STL:dt"],
    "audio/RE": ["audio/RE"],
}


@pytest.mark.parametrize("which", ["pred", "pred_pp"])
@pytest.mark.parametrize("test_labels", [True, False])
@pytest.mark.parametrize("ridge", [0.0, 1e-8])
def test_fusion_table_equals_legacy(which, test_labels, ridge):
    streams = make_streams(test_labels)
    old = reports.fusion_table(streams, ROWS, which=which, ridge=ridge)
    new = fusion.fusion_table(Predictions.from_arrays(streams), ROWS, which=which, ridge=ridge)
    assert_same_table(old.table, new.table)
    assert old.fusions == new.fusions  # frozen dataclasses: equal coefficients
    assert old.tunings == new.tunings
    for label, parts in old.predictions.items():
        for p, xs in parts.items():
            for x, y in zip(xs, new.predictions.series(label, p), strict=True):
                np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------ Table III, files


def test_difficulty_table_numbers_equal_difficulty_analysis():
    rng = np.random.default_rng(5)
    gold = GOLD["test"]
    base, dre, dpu = ([g + s * rng.standard_normal(g.size) for g in gold] for s in (0.5, 0.3, 0.2))
    re, pu = ([np.abs(rng.standard_normal(g.size)) for g in gold] for _ in range(2))
    old = reports.difficulty_analysis(re, pu, base, {"re": dre, "pu": dpu}, gold)

    def part(pred, extras):
        return {"test": {"names": NAMES["test"], "pred": pred, "gold": gold, "extras": extras}}

    preds = Predictions.from_arrays(
        {
            "STL": part(base, {}),
            "DDAT-RE sum": part(dre, {"re": re}),
            "DDAT-PU": part(dpu, {"pu": pu}),
        }
    )
    signals = {"RE": ("DDAT-RE sum", "re"), "PU": ("DDAT-PU", "pu")}
    new = difficulty.difficulty_table(preds, baseline="STL", signals=signals, partition="test")
    pd.testing.assert_frame_equal(old, new, check_exact=True)  # attrs (legend) differ


def test_write_table_to_markdown_and_slugify_are_the_evaluation_ones():
    assert reports.write_table is io.write_table
    assert reports.to_markdown is io.to_markdown
    assert reports.slugify is io.slugify


def test_prediction_files_are_byte_identical(tmp_path):
    systems = {"DDAT-RE vector": make_system(0.2, 1), "STL": make_system(0.5, 2, test_labels=False)}
    systems["STL"]["test"]["gold"] = None
    for s in systems.values():
        s["test"]["gold"] = None
    old = reports.write_predictions(systems, tmp_path / "old", frame_period=0.04)
    new = write_predictions(Predictions.from_arrays(systems, frame_period=0.04), tmp_path / "new")
    assert [p.relative_to(tmp_path / "old") for p in old] == [
        p.relative_to(tmp_path / "new") for p in new[:-1]
    ]
    for a, b in zip(old, new, strict=False):
        assert a.read_bytes() == b.read_bytes()


# ------------------------------------------------------------- legacy-only behaviour kept


def test_legacy_nan_prediction_gives_no_test_and_no_mark():
    # The legacy dict input tolerates a diverged (NaN) system; Predictions rejects it.
    systems = make_systems()
    systems["DDAT-RE sum"]["test"]["pred"][0][3] = np.nan
    df = reports.results_table(systems, comparisons=COMPARISONS, n_resamples=99)
    row = df.loc["DDAT-RE sum"]
    assert math.isnan(row["test CCC"])
    assert math.isnan(row["mtl Fisher p"]) and math.isnan(row["mtl perm. p"])
    assert row["marks"] == ""
    with pytest.raises(ValueError, match="not finite"):
        Predictions.from_arrays(systems)


def test_legacy_rejects_malformed_systems():
    bad = make_systems()
    bad["STL"]["dev"]["pred"] = bad["STL"]["dev"]["pred"][:-1]
    with pytest.raises(ValueError, match="recordings"):
        reports.results_table(bad)
    with pytest.raises(ValueError, match="non-empty"):
        reports.results_table({})
