"""The embedded OMG-like corpus (preset ``omg_small``), its reader path and the
classification scores."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from ddat_jax.data import corpus as corpus_lib
from ddat_jax.data import prepare, sim_omg
from ddat_jax.evaluation import classification as cl


@pytest.fixture(scope="module")
def omg_root(tmp_path_factory):
    return sim_omg.generate_corpus(tmp_path_factory.mktemp("omg") / "omg_small", preset="omg_small")


@pytest.fixture(scope="module")
def omg_corpus(omg_root):
    return corpus_lib.load_corpus(
        omg_root, modality=("audio", "video"), dimension="emotion", layout="csv"
    )


def test_full_preset_has_the_papers_sizes():
    p = sim_omg.PRESETS["omg"]
    assert p.utterances == (2440, 617, 2229) and sum(p.videos) == 567
    assert (p.audio_dim, p.video_dim, p.annotators) == (88, 4096, 5)
    assert {"omg", "omg_small"} <= set(prepare.PRESETS)


def test_layout_partitions_and_withheld_test_labels(omg_root, omg_corpus):
    p = sim_omg.PRESETS["omg_small"]
    for i, part in enumerate(sim_omg.PARTS):
        recs = omg_corpus.partitions[part]
        assert len(recs) == p.videos[i]
        assert sum(r.num_frames for r in recs) == p.utterances[i]
        assert min(r.num_frames for r in recs) >= 2
    assert omg_corpus.modality_slices == {"audio": (0, 88), "video": (88, 88 + p.video_dim)}
    assert omg_corpus.frame_period == 1.0
    assert not any(r.has_labels for r in omg_corpus.partitions["test"])
    assert not list((omg_root / "gold" / "emotion").glob("test_*"))
    key = sim_omg.load_answer_key(omg_root)
    assert len(key) == sum(p.utterances)
    train = key[key["stem"].str.startswith("train")]
    gold = np.concatenate([r.gold for r in omg_corpus.partitions["train"]])
    np.testing.assert_array_equal(train["gold"].to_numpy(), gold.astype(int))


def test_gold_is_the_majority_vote_with_first_class_tie_rule(omg_corpus):
    votes = np.array([[1, 1, 2, 2, 0], [3, 3, 3, 1, 2], [6, 5, 4, 3, 2], [2, 4, 4, 2, 6]])
    # ties: {1, 2} -> 1; none -> 3; all single -> 2 (lowest index); {2, 4} -> 2
    np.testing.assert_array_equal(sim_omg.majority_vote(votes), [1, 3, 2, 2])
    for r in omg_corpus.partitions["dev"]:
        expect = [np.bincount(v.astype(int), minlength=7).argmax() for v in r.ratings]
        np.testing.assert_array_equal(r.gold.astype(int), expect)
        assert r.ratings.shape[1] == 5


def test_classes_are_skewed_and_labels_noisy(omg_root):
    key = sim_omg.load_answer_key(omg_root)
    share = np.bincount(key["true_class"], minlength=7) / len(key)
    assert share[0] == share.max() and share[6] < 0.06
    agree = float(np.mean(key["true_class"] == key["gold"]))
    assert 0.6 < agree < 0.97


def test_deterministic(tmp_path, omg_root):
    again = sim_omg.generate_corpus(tmp_path / "again", preset="omg_small")
    digest = lambda root: hashlib.sha256(
        (root / "features" / "video" / "dev_003.csv").read_bytes()
    ).hexdigest()
    assert digest(again) == digest(omg_root)


def test_macro_f1_and_accuracy_against_hand_computed_values():
    gold = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    # class 0: tp 1, pred 2, gold 2 -> 0.5; class 1: tp 2, pred 3, gold 2 -> 0.8;
    # class 2: tp 1, pred 1, gold 2 -> 2/3; absent classes 3..6 are not averaged
    assert cl.macro_f1(pred, gold, 7) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert cl.accuracy(pred, gold) == pytest.approx(4 / 6)
    same = cl.bootstrap_difference(pred, pred, gold, 7, n_resamples=50)
    assert same["delta"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    better = cl.bootstrap_difference(gold, pred, gold, 7, n_resamples=200)
    assert better["delta"] > 0 and better["p_one_sided"] < 0.2


def test_logistic_regression_recovers_separable_classes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = np.eye(3)[y] * 4 + rng.normal(size=(300, 3))
    w = cl.logistic_regression(x, y, 3, l2=1e-3)
    assert cl.accuracy(cl.predict_logistic(w, x), y) > 0.95


def test_unknown_preset_is_a_sentence():
    with pytest.raises(ValueError, match="valid"):
        sim_omg.preset_of("omg_huge")


def test_csv_layout_is_the_real_reader_path(omg_root):
    first = pd.read_csv(omg_root / "features" / "audio" / "train_001.csv")
    assert first.columns[0] == "time" and len(first.columns) == 89
    assert (first["time"].diff().dropna() == 1).all()


def test_convert_a_real_omg_copy_to_the_csv_layout(tmp_path):
    from ddat_jax.data import omg

    lists = tmp_path / "lists"
    lists.mkdir()
    rng = np.random.default_rng(0)
    rows = {
        "train": [
            ("vidA", "utterance_10.mp4", 1),
            ("vidA", "utterance_2.mp4", 3),
            ("vidB", "u_1", 0),
            ("vidB", "u_2", 0),
        ],
        "dev": [("vidC", "utterance_1.mp4", 2), ("vidC", "utterance_2.mp4", 6)],
        "test": [("vidD", "utterance_1.mp4", None), ("vidD", "utterance_2.mp4", None)],
    }
    feats = []
    for part, items in rows.items():
        df = pd.DataFrame(items, columns=["video", "utterance", "EmotionMaxVote"])
        if part == "test":
            df = df.drop(columns="EmotionMaxVote")
        df.insert(0, "link", "https://example.invalid")
        df.to_csv(lists / omg.LISTS[part], index=False)
        feats += [(v, u) for v, u, _ in items]
    audio = pd.DataFrame(feats, columns=["video", "utterance"])
    for j in range(3):
        audio[f"f{j}"] = rng.normal(size=len(audio))
    audio.to_csv(tmp_path / "audio.csv", index=False)
    video = audio.rename(columns=lambda c: c.replace("f", "g") if c.startswith("f") else c)
    video.to_csv(tmp_path / "video.csv", index=False)
    root = omg.convert_omg(
        lists, {"audio": tmp_path / "audio.csv", "video": tmp_path / "video.csv"}, tmp_path / "out"
    )
    c = corpus_lib.load_corpus(root, modality=("audio", "video"), dimension="emotion", layout="csv")
    first = c.partitions["train"][0]
    assert first.name == "train_vidA"
    np.testing.assert_array_equal(first.gold, [3, 1])  # utterance_2 before utterance_10
    row = audio[(audio.video == "vidA") & (audio.utterance == "utterance_2.mp4")]
    np.testing.assert_allclose(
        first.features[0, :3], row[["f0", "f1", "f2"]].to_numpy()[0], rtol=1e-6
    )
    assert not c.partitions["test"][0].has_labels
    bad = lists / omg.LISTS["dev"]
    bad.write_text("video,utterance,EmotionMaxVote\nvidC,utterance_1.mp4,9\n")
    with pytest.raises(ValueError, match="class index"):
        omg.convert_omg(lists, {"audio": tmp_path / "audio.csv"}, tmp_path / "out2")


def test_calibration_both_modalities_beat_either_alone(omg_root):
    """Partly complementary class information: a logistic regression on both feature sets
    beats either set alone (the full preset's values are in the README)."""
    f1 = sim_omg.calibrate(omg_root)
    assert 0.15 < f1["audio"] < 0.55 and 0.15 < f1["video"] < 0.55
    assert f1["both"] > max(f1["audio"], f1["video"])


def test_cache_is_regenerated_for_other_sizes(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    sim_omg.ensure_corpus("omg_small", 0, root=root, progress=None)
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert sim_omg.ensure_corpus("omg_small", 0, root=root, progress=None) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp  # reused
    small = sim_omg.PRESETS["omg_small"]
    monkeypatch.setitem(
        sim_omg.PRESETS,
        "omg_small",
        sim_omg.dataclasses.replace(small, videos=(61, 24, 12), utterances=(801, 300, 110)),
    )
    sim_omg.ensure_corpus("omg_small", 0, root=root, progress=None)
    assert len(list((root / "features" / "audio").glob("train_*.csv"))) == 61
