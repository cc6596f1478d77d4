"""Tests of the corpus model on small AVEC-layout fixtures written in tmp_path."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from ddat_jax.data.avec2016 import (
    RATERS,
    DataFormatError,
    write_arff,
    write_gold_standard,
    write_ratings,
)
from ddat_jax.data.corpus import (
    Corpus,
    gold_ccc_centring,
    gold_ewe,
    gold_mean,
    load_corpus,
    perception_uncertainty,
)

T = 50
STEMS = ("train_1", "train_2", "train_3", "dev_1", "dev_2", "test_1")
MODS = {"audio": 4, "video_geometric": 3}


def build_avec(root, *, stems=STEMS, frames=T, mods=MODS, labelled=("train", "dev"), seed=0):
    """Writes a small AVEC 2016 corpus; returns the arrays written, by stem."""
    rng = np.random.default_rng(seed)
    times = np.arange(frames) * 0.04
    truth = {}
    for stem in stems:
        entry = {"features": {}}
        for mod, width in mods.items():
            x = rng.standard_normal((frames, width)).round(6)
            frame = pd.DataFrame(x, columns=[f"{mod}_{i}" for i in range(width)])
            frame.insert(0, "frameTime", times)
            write_arff(root / f"features_{mod}" / "arousal" / f"{stem}.arff", frame, "feat")
            entry["features"][mod] = x
        if stem.split("_")[0] in labelled:
            ratings = rng.uniform(-1, 1, (frames, 6)).round(4)
            rframe = pd.DataFrame(ratings, columns=list(RATERS))
            rframe.insert(0, "time", times)
            write_ratings(root / "ratings_individual" / "arousal" / f"{stem}.csv", rframe)
            gold = rng.uniform(-0.5, 0.5, frames).round(6)
            write_gold_standard(
                root / "ratings_gold_standard" / "arousal" / f"{stem}.arff",
                stem,
                times,
                gold,
                dimension="arousal",
            )
            entry["ratings"], entry["gold"] = ratings, gold
        truth[stem] = entry
    return truth


@pytest.fixture
def avec(tmp_path):
    truth = build_avec(tmp_path)
    return tmp_path, truth


def test_load_single_modality(avec):
    root, truth = avec
    corpus = load_corpus(root, modality="audio", dimension="arousal")
    assert isinstance(corpus, Corpus)
    assert list(corpus.partitions) == ["train", "dev", "test"]
    assert [r.name for r in corpus.partitions["train"]] == ["train_1", "train_2", "train_3"]
    assert corpus.feature_names == ["audio_0", "audio_1", "audio_2", "audio_3"]
    assert corpus.rater_names == list(RATERS)
    assert corpus.frame_period == pytest.approx(0.04)
    assert corpus.modalities == ("audio",) and corpus.dimension == "arousal"
    rec = corpus.partitions["dev"][1]
    want = truth["dev_2"]
    assert rec.features.dtype == np.float32 and rec.features.shape == (T, 4)
    np.testing.assert_allclose(rec.features, want["features"]["audio"], rtol=1e-6)
    np.testing.assert_allclose(rec.times, np.arange(T) * 0.04)
    np.testing.assert_allclose(rec.gold, want["gold"], rtol=1e-6)
    np.testing.assert_allclose(rec.ratings, want["ratings"], rtol=1e-6)
    np.testing.assert_allclose(rec.pu, np.std(want["ratings"], axis=1, ddof=1), rtol=1e-5)
    assert rec.gold.dtype == rec.pu.dtype == rec.ratings.dtype == np.float32


def test_test_partition_without_labels(avec):
    root, _ = avec
    corpus = load_corpus(root, modality="audio", dimension="arousal")
    (rec,) = corpus.partitions["test"]
    assert rec.gold is None and rec.ratings is None and rec.pu is None
    assert not rec.has_labels
    text = corpus.summary()
    assert "train" in text and "3 recordings" in text and "no labels" in text
    assert "NaN 0.00%" in text


def test_pu_ddof(avec):
    root, truth = avec
    corpus = load_corpus(root, modality="audio", dimension="arousal", pu_ddof=0)
    rec = corpus.partitions["train"][0]
    np.testing.assert_allclose(rec.pu, np.std(truth["train_1"]["ratings"], axis=1), rtol=1e-5)


def test_multi_modality(avec):
    root, truth = avec
    corpus = load_corpus(root, modality=["video_geometric", "audio"], dimension="arousal")
    assert corpus.feature_names[:3] == [f"video_geometric/video_geometric_{i}" for i in range(3)]
    assert corpus.feature_names[3:] == [f"audio/audio_{i}" for i in range(4)]
    assert corpus.modality_slices == {"video_geometric": (0, 3), "audio": (3, 7)}
    rec = corpus.partitions["train"][2]
    want = truth["train_3"]["features"]
    np.testing.assert_allclose(
        rec.features, np.concatenate([want["video_geometric"], want["audio"]], axis=1), rtol=1e-6
    )


def test_partition_selection(avec):
    root, _ = avec
    corpus = load_corpus(root, modality="audio", dimension="arousal", partitions=("dev",))
    assert list(corpus.partitions) == ["dev"]


# ----------------------------------------------------------------------------------- gold


def _ccc_matlab_reference(x, y):
    cov_n = np.cov(x, y, bias=True)[0, 1]
    return 2 * cov_n / (np.var(x, ddof=1) + np.var(y, ddof=1) + (x.mean() - y.mean()) ** 2)


def _ccc_centring_reference(r):
    k = r.shape[1]
    agree = [
        np.mean([_ccc_matlab_reference(r[:, i], r[:, j]) for j in range(k) if j != i])
        for i in range(k)
    ]
    m = r.mean(axis=0)
    w = np.dot(agree, m) / np.sum(agree)
    centred = r - m + w  # ratings_individual_centred
    return centred.mean(axis=1)


def test_gold_ccc_centring_hand_example():
    # Two raters, one offset by +1: CCC = 2*(2/3) / (1 + 1 + 1) = 4/9 for both, w = 2.5.
    r = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0]])
    np.testing.assert_allclose(gold_ccc_centring(r), [1.5, 2.5, 3.5], rtol=1e-6)


def test_gold_ccc_centring_reference():
    rng = np.random.default_rng(1)
    base = np.cumsum(rng.standard_normal(200)) * 0.05
    r = base[:, None] * rng.uniform(0.5, 1.5, 6) + rng.uniform(-0.3, 0.3, 6)
    r += 0.05 * rng.standard_normal(r.shape)
    np.testing.assert_allclose(gold_ccc_centring(r), _ccc_centring_reference(r), rtol=1e-5)


def test_gold_ewe_hand_example():
    # r3 is anti-correlated with the mean: weight 0; r1 and r2 share the rest.
    r = np.array([[0.0, 0.0, 2.0], [1.0, 1.0, 1.0], [2.0, 2.0, 0.0]])
    np.testing.assert_allclose(gold_ewe(r), [0.0, 1.0, 2.0], atol=1e-6)


def test_gold_ewe_reference():
    rng = np.random.default_rng(2)
    r = rng.standard_normal((100, 5)) + np.linspace(-1, 1, 100)[:, None]
    mean = r.mean(axis=1)
    w = np.array([max(np.corrcoef(r[:, k], mean)[0, 1], 0.0) for k in range(5)])
    np.testing.assert_allclose(gold_ewe(r), r @ (w / w.sum()), rtol=1e-5)


def test_gold_ewe_constant_rater_gets_zero_weight():
    r = np.array([[0.0, 0.5], [1.0, 0.5], [2.0, 0.5]])
    np.testing.assert_allclose(gold_ewe(r), [0.0, 1.0, 2.0], atol=1e-6)


def test_gold_mean_and_pu():
    r = np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(gold_mean(r), [3.0, 0.0])
    np.testing.assert_allclose(perception_uncertainty(r), [np.sqrt(7.0), 0.0], rtol=1e-6)
    np.testing.assert_allclose(perception_uncertainty(r, ddof=0), [np.sqrt(14 / 3), 0.0])
    with pytest.raises(ValueError, match="ddof=1 needs more than 1 raters"):
        perception_uncertainty(r[:, :1])


@pytest.mark.parametrize("method", ["mean", "ccc_centring", "ewe"])
def test_load_computed_gold(avec, method):
    root, truth = avec
    corpus = load_corpus(root, modality="audio", dimension="arousal", gold=method)
    assert corpus.gold_method == method
    r = truth["dev_1"]["ratings"]
    expected = {
        "mean": r.mean(axis=1),
        "ccc_centring": _ccc_centring_reference(r),
        "ewe": gold_ewe(r),  # checked against its own reference above
    }[method]
    np.testing.assert_allclose(corpus.partitions["dev"][0].gold, expected, rtol=1e-5, atol=1e-6)
    assert corpus.partitions["test"][0].gold is None


def test_computed_gold_without_provided_files(avec):
    root, _ = avec
    shutil.rmtree(root / "ratings_gold_standard")
    corpus = load_corpus(root, modality="audio", dimension="arousal", gold="mean")
    assert corpus.partitions["train"][0].gold is not None


def test_centred_ratings_folder(avec):
    root, truth = avec
    src = root / "ratings_individual" / "arousal"
    dst = root / "ratings_individual_centred" / "arousal"
    dst.mkdir(parents=True)
    for path in src.iterdir():
        frame = pd.read_csv(path, sep=";")
        frame.iloc[:, 1:] += 1.0
        frame.columns = ["time", *RATERS]
        write_ratings(dst / path.name, frame)
    corpus = load_corpus(root, modality="audio", dimension="arousal", ratings="centred")
    np.testing.assert_allclose(
        corpus.partitions["train"][0].ratings, truth["train_1"]["ratings"] + 1.0, rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"unknown ratings 'raw'.*'individual', 'centred'"):
        load_corpus(root, modality="audio", dimension="arousal", ratings="raw")


def test_missing_modality_nan(tmp_path):
    build_avec(tmp_path)
    (tmp_path / "features_video_geometric" / "arousal" / "test_1.arff").unlink()
    corpus = load_corpus(
        tmp_path, modality=["audio", "video_geometric"], dimension="arousal", missing_modality="nan"
    )
    rec = corpus.partitions["test"][0]
    assert np.isnan(rec.features[:, 4:]).all() and not np.isnan(rec.features[:, :4]).any()
    assert "NaN" in corpus.summary()


# ------------------------------------------------------------------------------ bad input


def test_unknown_names(avec):
    root, _ = avec
    with pytest.raises(ValueError, match=r"unknown modality 'speech'.*'audio'.*'SCR'"):
        load_corpus(root, modality="speech", dimension="arousal")
    with pytest.raises(ValueError, match=r"unknown dimension 'dominance'.*'arousal', 'valence'"):
        load_corpus(root, modality="audio", dimension="dominance")
    with pytest.raises(ValueError, match=r"unknown gold 'median'.*'provided', 'mean'"):
        load_corpus(root, modality="audio", dimension="arousal", gold="median")
    with pytest.raises(ValueError, match=r"unknown layout 'hdf5'"):
        load_corpus(root, modality="audio", dimension="arousal", layout="hdf5")


def test_known_modality_without_folder(avec):
    root, _ = avec
    with pytest.raises(DataFormatError, match=r"features_ECG/arousal: no feature files"):
        load_corpus(root, modality="ECG", dimension="arousal")


def test_undetectable_layout(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DataFormatError, match="cannot tell the corpus layout"):
        load_corpus(tmp_path, modality="audio", dimension="arousal")


def test_missing_feature_file(avec):
    root, _ = avec
    (root / "features_audio" / "arousal" / "train_2.arff").unlink()
    with pytest.raises(DataFormatError, match=r"no feature file for recording 'train_2'.*'audio'"):
        load_corpus(root, modality=["audio", "video_geometric"], dimension="arousal")


def test_labels_without_features(avec):
    root, _ = avec
    for mod in MODS:
        (root / f"features_{mod}" / "arousal" / "dev_2.arff").unlink()
    with pytest.raises(DataFormatError, match=r"dev_2\.csv: ratings for recording 'dev_2'"):
        load_corpus(root, modality=["audio", "video_geometric"], dimension="arousal")


def test_missing_gold_file_suggests_computing(avec):
    root, _ = avec
    (root / "ratings_gold_standard" / "arousal" / "train_3.arff").unlink()
    with pytest.raises(DataFormatError, match=r"train_3\.csv: .*no gold-standard file.*'mean'"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_feature_and_label_lengths_differ(avec):
    root, truth = avec
    ratings = truth["train_2"]["ratings"][:40]
    frame = pd.DataFrame(ratings, columns=list(RATERS))
    frame.insert(0, "time", np.arange(40) * 0.04)
    path = root / "ratings_individual" / "arousal" / "train_2.csv"
    write_ratings(path, frame)
    with pytest.raises(DataFormatError, match=r"train_2\.csv: expected 50 frames like .*found 40"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_modalities_with_different_time_grids(avec):
    root, truth = avec
    x = truth["dev_1"]["features"]["video_geometric"]
    frame = pd.DataFrame(x, columns=[f"video_geometric_{i}" for i in range(3)])
    frame.insert(0, "frameTime", np.arange(T) * 0.04 + 0.02)
    write_arff(root / "features_video_geometric" / "arousal" / "dev_1.arff", frame, "feat")
    with pytest.raises(DataFormatError, match=r"dev_1\.arff, line 11: time 0.02 differs from 0"):
        load_corpus(root, modality=["audio", "video_geometric"], dimension="arousal")


def test_time_step_other_than_period(avec):
    root, truth = avec
    x = truth["dev_1"]["features"]["audio"]
    frame = pd.DataFrame(x, columns=[f"audio_{i}" for i in range(4)])
    frame.insert(0, "frameTime", np.arange(T) * 0.1)
    write_arff(root / "features_audio" / "arousal" / "dev_1.arff", frame, "feat")
    with pytest.raises(DataFormatError, match=r"dev_1\.arff, line 13: 'frameTime' expected a step"):
        load_corpus(root, modality="audio", dimension="arousal")
    with pytest.raises(DataFormatError, match=r"train_1\.arff, line 13: .*step of 0.1 s"):
        load_corpus(root, modality="audio", dimension="arousal", frame_period=0.1)


def test_feature_count_differs(avec):
    root, _ = avec
    frame = pd.DataFrame(np.zeros((T, 3)), columns=["audio_0", "audio_1", "audio_2"])
    frame.insert(0, "frameTime", np.arange(T) * 0.04)
    write_arff(root / "features_audio" / "arousal" / "train_3.arff", frame, "feat")
    with pytest.raises(DataFormatError, match=r"train_3\.arff: expected the 4 feature columns"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_string_feature_attribute(avec):
    root, _ = avec
    frame = pd.DataFrame({"frameTime": np.arange(T) * 0.04, "label": ["x"] * T})
    write_arff(root / "features_audio" / "arousal" / "train_1.arff", frame, "feat")
    with pytest.raises(DataFormatError, match=r"train_1\.arff: column 2 \('label'\) expected a"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_missing_rater_column(avec):
    root, truth = avec
    ratings = truth["dev_1"]["ratings"][:, :5]
    frame = pd.DataFrame(ratings, columns=list(RATERS[:5]))
    frame.insert(0, "time", np.arange(T) * 0.04)
    write_ratings(root / "ratings_individual" / "arousal" / "dev_1.csv", frame)
    with pytest.raises(DataFormatError, match=r"dev_1\.csv: .*missing rater column\(s\) \['FF3'\]"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_partition_without_recordings(tmp_path):
    build_avec(tmp_path, stems=("train_1", "test_1"))
    with pytest.raises(DataFormatError, match=r"partition 'dev' has no recordings"):
        load_corpus(tmp_path, modality="audio", dimension="arousal")
    corpus = load_corpus(tmp_path, modality="audio", dimension="arousal", partitions=("train",))
    assert len(corpus.partitions["train"]) == 1


def test_partly_labelled_partition(avec):
    root, _ = avec
    (root / "ratings_gold_standard" / "arousal" / "dev_2.arff").unlink()
    (root / "ratings_individual" / "arousal" / "dev_2.csv").unlink()
    with pytest.raises(DataFormatError, match=r"partition 'dev' has labels for \['dev_1'\]"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_bad_stem(avec):
    root, _ = avec
    src = root / "features_audio" / "arousal" / "train_1.arff"
    shutil.copy(src, root / "features_audio" / "arousal" / "holdout.arff")
    with pytest.raises(DataFormatError, match=r"holdout\.arff: cannot tell the partition"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_truncated_feature_file(avec):
    root, _ = avec
    path = root / "features_audio" / "arousal" / "train_2.arff"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"train_2\.arff, line \d+: expected 5 ','-separated"):
        load_corpus(root, modality="audio", dimension="arousal")


def test_empty_ratings_file(avec):
    root, _ = avec
    (root / "ratings_individual" / "arousal" / "train_1.csv").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"train_1\.csv: file is empty"):
        load_corpus(root, modality="audio", dimension="arousal")
