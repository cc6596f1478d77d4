"""Tests for ddat_jax.predictions: validation in one place, helpers, CSV round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ddat_jax.predictions import (
    MANIFEST,
    Predictions,
    RecordingPrediction,
    SystemPredictions,
    read_predictions,
    slugify,
    write_predictions,
)

LENGTHS = (50, 40, 60)


def lists(seed, *, dims=1, test_labels=True, extras=True):
    rng = np.random.default_rng(seed)
    gold_rng = np.random.default_rng(0)  # the same gold for every system
    out = {}
    for p in ("dev", "test"):
        shape = [(n,) if dims == 1 else (n, dims) for n in LENGTHS]
        gold = [gold_rng.standard_normal(s) for s in shape]
        pred = [g + 0.3 * rng.standard_normal(g.shape) for g in gold]
        out[p] = {
            "names": [f"{p}_{i + 1}" for i in range(len(LENGTHS))],
            "pred": pred,
            "pred_pp": [0.9 * x for x in pred],
            "gold": gold if (p == "dev" or test_labels) else None,
        }
        if extras:
            out[p]["extras"] = {
                "difficulty": [np.abs(rng.standard_normal(n)) for n in LENGTHS],
                "re": [rng.standard_normal((n, 3)) for n in LENGTHS],
            }
    return out


def make(dims=("arousal",), **kw):
    return Predictions.from_arrays(
        {"STL": lists(1, dims=len(dims), **kw), "DDAT": lists(2, dims=len(dims), **kw)},
        dims=dims,
        frame_period=0.04,
        info={"DDAT": {"dev_ccc": 0.5, "arch": (64, 2)}},
    )


def test_from_arrays_shapes_helpers_and_immutability():
    preds = make()
    assert preds.labels == ("STL", "DDAT")
    assert preds.dims == ("arousal",)
    assert preds.partition_names() == ("dev", "test")
    rec = preds["DDAT"].partitions["test"][1]
    assert rec.pred.shape == (40, 1) and rec.gold.shape == (40, 1)
    assert rec.extras["re"].shape == (40, 3) and rec.extras["difficulty"].shape == (40,)
    with pytest.raises(ValueError):
        rec.pred[0, 0] = 1.0  # read-only
    with pytest.raises(AttributeError):
        rec.pred = None
    src = lists(2)
    np.testing.assert_array_equal(
        preds.series("DDAT", "dev", "pred_pp")[2], src["dev"]["pred_pp"][2]
    )
    np.testing.assert_array_equal(preds.concat("DDAT", "dev"), np.concatenate(src["dev"]["pred"]))
    np.testing.assert_array_equal(
        preds.series("DDAT", "dev", "re")[0], src["dev"]["extras"]["re"][0][:, 0]
    )
    assert preds.has_gold("dev") and preds.has_gold("test") and not preds.has_gold("train")
    assert preds["DDAT"].info["arch"] == (64, 2)
    assert preds.select(["DDAT"]).labels == ("DDAT",)


def test_pred_pp_defaults_to_pred_and_with_postprocessed():
    rec = RecordingPrediction("a", np.arange(5.0))
    np.testing.assert_array_equal(rec.pred_pp, rec.pred)
    preds = make()
    new = preds.with_postprocessed({"STL": {"dev": [np.zeros(n) for n in LENGTHS]}})
    assert np.all(new.series("STL", "dev", "pred_pp")[0] == 0)
    np.testing.assert_array_equal(
        new.series("STL", "test", "pred_pp")[0], preds.series("STL", "test", "pred_pp")[0]
    )
    np.testing.assert_array_equal(
        new.series("DDAT", "dev", "pred_pp")[0], preds.series("DDAT", "dev", "pred_pp")[0]
    )
    doubled = preds.with_postprocessed(
        lambda s: {p: [2 * r.pred for r in recs] for p, recs in s.partitions.items()}
    )
    np.testing.assert_array_equal(
        doubled.concat("DDAT", "test", "pred_pp"), 2 * preds.concat("DDAT", "test")
    )


def test_multi_dim_selection():
    preds = make(dims=("arousal", "valence"))
    src = lists(1, dims=2)
    np.testing.assert_array_equal(
        preds.series("STL", "dev", dim="valence")[1], src["dev"]["pred"][1][:, 1]
    )
    with pytest.raises(ValueError, match="several dims"):
        preds.series("STL", "dev")
    with pytest.raises(ValueError, match="unknown dim"):
        preds.gold("dev", dim="dominance")


def test_withheld_gold():
    preds = make(test_labels=False)
    assert preds.has_gold("dev") and not preds.has_gold("test")
    with pytest.raises(ValueError, match="no labels"):
        preds.gold("test")
    with pytest.raises(ValueError, match="withheld"):
        preds.series("STL", "test", "gold")


def test_validation_names_system_partition_recording():
    a, b = lists(1), lists(2)
    b["dev"]["pred"][1] = b["dev"]["pred"][1].copy()
    b["dev"]["pred"][1][7] = np.nan
    with pytest.raises(
        ValueError, match=r"system 'DDAT', partition 'dev', recording 'dev_2': pred is not finite"
    ):
        Predictions.from_arrays({"STL": a, "DDAT": b})
    b = lists(2)
    b["dev"]["gold"] = [g + 1 for g in b["dev"]["gold"]]
    with pytest.raises(ValueError, match=r"'STL' and 'DDAT', partition 'dev', recording 'dev_1'"):
        Predictions.from_arrays({"STL": a, "DDAT": b})
    b = lists(2)
    b["test"]["names"] = b["test"]["names"][::-1]
    with pytest.raises(ValueError, match="same order"):
        Predictions.from_arrays({"STL": a, "DDAT": b})
    b = lists(2)
    b["dev"]["pred"][0] = b["dev"]["pred"][0][:-1]
    with pytest.raises(ValueError, match="dev_1.*shape"):
        Predictions.from_arrays({"STL": a, "DDAT": b})
    with pytest.raises(ValueError, match="columns"):
        Predictions.from_arrays({"STL": a}, dims=("arousal", "valence"))
    b = lists(2)
    b["dev"]["extras"]["re"][0] = np.ones(3)
    with pytest.raises(ValueError, match=r"extras\['re'\]"):
        Predictions.from_arrays({"DDAT": b})
    b = lists(2)
    b["dev"]["gold"] = b["dev"]["gold"][:2] + [None]
    with pytest.raises(ValueError, match="all recordings or none"):
        Predictions.from_arrays({"DDAT": b})
    with pytest.raises(ValueError, match="frame_period"):
        Predictions.from_arrays({"STL": a}, frame_period=0)
    with pytest.raises(ValueError, match="labelled"):
        Predictions({"X": Predictions.from_arrays({"STL": a})["STL"]})


def test_systems_may_lack_a_partition():
    a, b = lists(1), lists(2)
    del b["test"]
    preds = Predictions.from_arrays({"STL": a, "DDAT": b})
    assert preds.partition_names() == ("dev", "test")
    assert "test" not in preds["DDAT"].partitions


@pytest.mark.parametrize("dims", [("arousal",), ("arousal", "valence", "dominance")])
def test_write_read_roundtrip(tmp_path, dims):
    preds = make(dims=dims, test_labels=False)
    paths = write_predictions(preds, tmp_path / "predictions")
    assert len(paths) == 2 * 2 * len(LENGTHS) + 1 and paths[-1].name == MANIFEST
    back = read_predictions(tmp_path / "predictions")
    assert back.labels == preds.labels and back.dims == preds.dims
    assert back.frame_period == preds.frame_period
    assert back["DDAT"].info == {"dev_ccc": 0.5, "arch": [64, 2]}  # JSON: tuples -> lists
    for label in preds.labels:
        for part, recs in preds[label].partitions.items():
            for r, q in zip(recs, back[label].partitions[part], strict=True):
                assert r.name == q.name
                for f in ("pred", "pred_pp", "gold"):
                    x, y = getattr(r, f), getattr(q, f)
                    assert (x is None) == (y is None)
                    if x is not None:
                        np.testing.assert_array_equal(x, y)  # CSV keeps full precision
                assert r.extras.keys() == q.extras.keys()
                for k in r.extras:
                    np.testing.assert_array_equal(r.extras[k], q.extras[k])


def test_csv_layout_single_dim(tmp_path):
    preds = make(test_labels=False)
    write_predictions(preds, tmp_path)
    df = pd.read_csv(tmp_path / "ddat" / "test" / "test_2.csv")
    assert list(df.columns) == [
        "time", "prediction", "prediction_pp", "gold", "difficulty", "re_0", "re_1", "re_2"
    ]  # fmt: skip
    assert df["gold"].isna().all()
    np.testing.assert_allclose(df["time"], np.arange(40) * 0.04, atol=1e-9)
    man = json.loads((tmp_path / MANIFEST).read_text())
    assert man["systems"][1]["partitions"]["test"]["labelled"] is False


def test_write_rejects_slug_clash_and_unsafe_names(tmp_path):
    a = lists(1)
    with pytest.raises(ValueError, match="share the folder"):
        write_predictions(Predictions.from_arrays({"DDAT RE": a, "ddat-re": a}), tmp_path)
    a["dev"]["names"] = ["../x", "b", "c"]
    with pytest.raises(ValueError, match="recording name"):
        write_predictions(Predictions.from_arrays({"STL": a}), tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest"):
        read_predictions(tmp_path / "nothing")


def test_slugify():
    assert slugify("DDAT-RE vector") == "ddat-re-vector"
    assert slugify("CL (GRU)") == "cl-gru"
    with pytest.raises(ValueError):
        slugify("///")


def test_system_predictions_direct():
    rec = RecordingPrediction("r", np.zeros((4, 2)), gold=np.ones((4, 2)))
    s = SystemPredictions("S", ("a", "v"), {"dev": [rec]})
    assert isinstance(s.partitions["dev"], tuple)
    with pytest.raises(ValueError, match="distinct"):
        SystemPredictions("S", ("a", "a"), {"dev": [rec]})
