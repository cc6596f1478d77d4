"""Tests of the generic CSV corpus layout (SEWA-like, 0.1 s frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddat_jax.data.avec2016 import DataFormatError
from ddat_jax.data.corpus import load_corpus
from ddat_jax.data.csv_layout import (
    partition_of_stem,
    read_partitions,
    read_table,
    write_table,
)

PERIOD = 0.1
T = 30


def build_csv(root, *, stems=("Train_01", "Train_02", "Devel_01", "Test_01"), per_dim=False):
    """Writes a CSV-layout corpus at 0.1 s with a partitions.csv; returns the arrays."""
    rng = np.random.default_rng(0)
    times = np.arange(T) * PERIOD + PERIOD  # SEWA-like: starts at one frame period
    parts = {"Train": "train", "Devel": "devel", "Test": "test"}
    lines = ["stem,partition"]
    truth = {}
    for stem in stems:
        lines.append(f"{stem},{parts[stem.split('_')[0]]}")
        x = rng.standard_normal((T, 3)).round(5)
        frame = pd.DataFrame(x, columns=["loudness", "pitch", "jitter"])
        frame.insert(0, "time", times)
        sub = root / "features" / "egemaps" / ("valence" if per_dim else "")
        write_table(sub / f"{stem}.csv", frame)
        entry = {"x": x}
        if not stem.startswith("Test"):
            r = rng.uniform(-1, 1, (T, 4)).round(3)
            rf = pd.DataFrame(r, columns=["A1", "A2", "A3", "A4"])
            rf.insert(0, "time", times)
            write_table(root / "ratings" / "valence" / f"{stem}.csv", rf, sep=";")
            entry["r"] = r
        truth[stem] = entry
    (root / "partitions.csv").write_text("\n".join(lines) + "\n")
    return truth


def test_load_csv_corpus(tmp_path):
    truth = build_csv(tmp_path)
    corpus = load_corpus(tmp_path, modality="egemaps", dimension="valence", gold="mean")
    assert corpus.frame_period == pytest.approx(0.1)
    assert list(corpus.partitions) == ["train", "dev", "test"]
    assert [r.name for r in corpus.partitions["train"]] == ["Train_01", "Train_02"]
    assert corpus.feature_names == ["loudness", "pitch", "jitter"]
    assert corpus.rater_names == ["A1", "A2", "A3", "A4"]
    rec = corpus.partitions["dev"][0]
    np.testing.assert_allclose(rec.features, truth["Devel_01"]["x"], rtol=1e-6)
    np.testing.assert_allclose(rec.gold, truth["Devel_01"]["r"].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(rec.pu, truth["Devel_01"]["r"].std(axis=1, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(rec.times, np.arange(1, T + 1) * 0.1)
    assert corpus.partitions["test"][0].gold is None


def test_features_per_dimension_and_stem_prefix(tmp_path):
    build_csv(tmp_path, per_dim=True)
    (tmp_path / "partitions.csv").unlink()
    corpus = load_corpus(
        tmp_path, modality="egemaps", dimension="valence", gold="ewe", frame_period=0.1
    )
    assert [len(v) for v in corpus.partitions.values()] == [2, 1, 1]


def test_provided_gold(tmp_path):
    build_csv(tmp_path)
    gold_dir = tmp_path / "gold" / "valence"
    for stem in ("Train_01", "Train_02", "Devel_01"):
        frame = pd.DataFrame({"time": np.arange(T) * PERIOD + PERIOD, "valence": np.arange(T)})
        write_table(gold_dir / f"{stem}.csv", frame.astype(float))
    corpus = load_corpus(tmp_path, modality="egemaps", dimension="valence")
    np.testing.assert_array_equal(corpus.partitions["train"][1].gold, np.arange(T))


def test_read_table_missing_values_and_separators(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("frameTime;a;b\r\n0;1;\r\n0.1;?;2\r\n0.2;nan;NA\r\n")
    frame = read_table(path)
    assert list(frame.columns) == ["time", "a", "b"]
    np.testing.assert_array_equal(
        frame.to_numpy(), [[0, 1, np.nan], [0.1, np.nan, 2], [0.2] + [np.nan] * 2]
    )
    with pytest.raises(
        DataFormatError, match=r"f\.csv, line 2: column 3 \('b'\) expected a number"
    ):
        read_table(path, missing=(), allow_missing=False)


def test_write_table_round_trip(tmp_path):
    frame = pd.DataFrame({"time": [0.0, 0.1], "x": [np.nan, 1.5], "y": [2.0, -3.25]})
    path = tmp_path / "t.csv"
    write_table(path, frame)
    assert path.read_text() == "time,x,y\n0,,2\n0.1,1.5,-3.25\n"
    pd.testing.assert_frame_equal(read_table(path), frame, check_exact=True)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"t\.csv: file is empty"),
        ("a,b\n1,2\n", r"t\.csv, line 1: expected the first column to be 'time'"),
        ("time\n1\n", r"t\.csv, line 1: expected 'time' and at least one more column"),
        ("time,,b\n1,2,3\n", r"t\.csv, line 1: column 2 has no name"),
        ("time,a,a\n1,2,3\n", r"t\.csv, line 1: duplicate column names \['a'\]"),
        ("time,a\n", r"t\.csv: no data rows"),
        ("time,a\n0,1\n0.1,1,2\n", r"t\.csv, line 3: expected 2 ','-separated fields"),
        ("time,a\n0,1\n0.1,one\n", r"t\.csv, line 3: column 2 \('a'\) .* found 'one'"),
        ("time,a\n0,1\n,2\n", r"t\.csv, line 3: column 1 \('time'\) expected a number"),
    ],
)
def test_read_table_bad_input(tmp_path, text, pattern):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=pattern):
        read_table(path)


def test_partitions():
    assert partition_of_stem("train_1") == "train"
    assert partition_of_stem("Devel_07") == "dev"
    assert partition_of_stem("validation_x") == "dev"
    assert partition_of_stem("TEST_3") == "test"
    with pytest.raises(DataFormatError, match=r"f\.csv: cannot tell the partition of .*'rec1'"):
        partition_of_stem("rec1", path="f.csv")


def test_read_partitions(tmp_path):
    path = tmp_path / "partitions.csv"
    path.write_text("stem,partition\nA,training\n\nB,holdout\n")
    assert read_partitions(path) == {"A": "train", "B": "holdout"}
    path.write_text("name,split\nA,train\n")
    with pytest.raises(DataFormatError, match=r"partitions\.csv, line 1: expected the header"):
        read_partitions(path)
    path.write_text("stem,partition\nA,train\nA,dev\n")
    with pytest.raises(DataFormatError, match=r"partitions\.csv, line 3: stem 'A' listed twice"):
        read_partitions(path)
    path.write_text("stem,partition\nA\n")
    with pytest.raises(DataFormatError, match=r"partitions\.csv, line 2: expected '<stem>,<part"):
        read_partitions(path)


def test_csv_bad_corpus(tmp_path):
    build_csv(tmp_path)
    with pytest.raises(ValueError, match=r"unknown modality 'audio'.*\['egemaps'\]"):
        load_corpus(tmp_path, modality="audio", dimension="valence")
    with pytest.raises(ValueError, match=r"unknown dimension 'arousal'.*\['valence'\]"):
        load_corpus(tmp_path, modality="egemaps", dimension="arousal")
    with pytest.raises(DataFormatError, match=r"Train_01\.csv: .*no gold-standard file"):
        load_corpus(tmp_path, modality="egemaps", dimension="valence")
    with pytest.raises(DataFormatError, match=r"Train_01\.csv, line 3: 'time' expected a step of"):
        load_corpus(
            tmp_path, modality="egemaps", dimension="valence", gold="mean", frame_period=0.04
        )
    (tmp_path / "partitions.csv").write_text("stem,partition\nTrain_01,train\n")
    with pytest.raises(DataFormatError, match=r"partitions\.csv: recording 'Devel_01' is not"):
        load_corpus(tmp_path, modality="egemaps", dimension="valence", gold="mean")


def test_csv_missing_rater_column(tmp_path):
    build_csv(tmp_path)
    path = tmp_path / "ratings" / "valence" / "Train_02.csv"
    frame = read_table(path)
    write_table(path, frame.drop(columns=["A3"]))
    with pytest.raises(
        DataFormatError, match=r"Train_02\.csv: .*missing rater column\(s\) \['A3'\]"
    ):
        load_corpus(tmp_path, modality="egemaps", dimension="valence", gold="mean")


def test_csv_missing_label_value(tmp_path):
    build_csv(tmp_path)
    path = tmp_path / "ratings" / "valence" / "Devel_01.csv"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(";", 1)[0] + ";"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"Devel_01\.csv, line 5: column 5 \('A4'\)"):
        load_corpus(tmp_path, modality="egemaps", dimension="valence", gold="mean")
