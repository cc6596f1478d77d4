"""Tests of standardisation, label shifting and batching (in-memory recordings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddat_jax.data.corpus import Corpus, Recording
from ddat_jax.data.preprocess import (
    fit_standardiser,
    shift_back,
    shift_corpus_labels,
    shift_labels,
    standardise,
    to_batch,
)


def _rec(name, x, gold=True, seed=0):
    rng = np.random.default_rng(seed)
    t = len(x)
    ratings = rng.uniform(-1, 1, (t, 3)).astype(np.float32) if gold else None
    return Recording(
        name=name,
        times=np.arange(t) * 0.04,
        features=np.asarray(x, dtype=np.float32),
        gold=None if not gold else ratings.mean(axis=1),
        ratings=ratings,
        pu=None if not gold else ratings.std(axis=1, ddof=1),
    )


def _corpus(parts):
    num_f = next(iter(parts.values()))[0].features.shape[1]
    return Corpus(
        partitions=parts,
        feature_names=[f"f{i}" for i in range(num_f)],
        rater_names=["A", "B", "C"],
        frame_period=0.04,
        modalities=("audio",),
        dimension="arousal",
        root=Path("."),
    )


# ------------------------------------------------------------------------- standardising


def test_fit_standardiser_matches_nan_statistics():
    rng = np.random.default_rng(0)
    a = rng.normal(3, 2, (40, 4))
    b = rng.normal(3, 2, (25, 4))
    a[rng.random(a.shape) < 0.1] = np.nan
    recs = [_rec("train_1", a), _rec("train_2", b)]
    mean, std = fit_standardiser(recs)
    both = np.concatenate([a, b]).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mean, np.nanmean(both, axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, np.nanstd(both, axis=0, ddof=1), rtol=1e-6)
    assert mean.dtype == std.dtype == np.float32


def test_fit_standardiser_guards():
    x = np.array([[np.nan, 5.0, 1.0], [np.nan, 5.0, 2.0], [np.nan, 5.0, 3.0]])
    mean, std = fit_standardiser([_rec("train_1", x)])
    np.testing.assert_allclose(mean, [0.0, 5.0, 2.0])
    np.testing.assert_allclose(std, [1.0, 1.0, 1.0])  # all-NaN and constant -> 1
    with pytest.raises(ValueError, match="at least one recording"):
        fit_standardiser([])


def test_standardise_uses_train_statistics_and_zeroes_nan():
    train = [_rec("train_1", [[1.0, 10.0], [3.0, 10.0]])]
    dev = [_rec("dev_1", [[5.0, np.nan], [1.0, 12.0], [2.0, 10.0]])]
    out = standardise(_corpus({"train": train, "dev": dev}))
    # train: mean (2, 10), std (sqrt(2), 0 -> 1)
    np.testing.assert_allclose(
        out.partitions["train"][0].features,
        [[-1 / np.sqrt(2), 0.0], [1 / np.sqrt(2), 0.0]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        out.partitions["dev"][0].features,
        [[3 / np.sqrt(2), 0.0], [-1 / np.sqrt(2), 2.0], [0.0, 0.0]],
        rtol=1e-6,
    )
    assert out.partitions["dev"][0].features.dtype == np.float32
    # Labels and metadata untouched; input not modified.
    assert out.partitions["dev"][0].gold is dev[0].gold
    assert np.isnan(dev[0].features[0, 1])


def test_standardise_explicit_stats_and_per_recording():
    recs = [_rec("train_1", [[1.0], [3.0]]), _rec("train_2", [[10.0], [20.0]])]
    corpus = _corpus({"train": recs})
    out = standardise(corpus, stats=(np.array([1.0]), np.array([2.0])))
    np.testing.assert_allclose(out.partitions["train"][1].features[:, 0], [4.5, 9.5])
    per = standardise(corpus, mode="per_recording")
    for rec in per.partitions["train"]:
        np.testing.assert_allclose(rec.features[:, 0], [-1 / np.sqrt(2), 1 / np.sqrt(2)], 1e-6)
    with pytest.raises(ValueError, match=r"unknown mode 'global'.*'online'"):
        standardise(corpus, mode="global")
    with pytest.raises(ValueError, match=r"stats: expected mean and std of shape \(1,\)"):
        standardise(corpus, stats=(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match=r"unknown partition 'dev'"):
        standardise(corpus, fit_partition="dev")


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(3, 30), st.integers(1, 4)),
        elements=st.one_of(st.floats(-100, 100), st.just(np.nan)),
    )
)
def test_standardised_train_has_zero_mean_unit_std(x):
    out = standardise(_corpus({"train": [_rec("train_1", x)]})).partitions["train"][0].features
    assert not np.isnan(out).any()
    x32 = x.astype(np.float32).astype(np.float64)
    for j in range(x.shape[1]):
        col = x32[:, j][~np.isnan(x32[:, j])]
        if col.size >= 2 and np.std(col, ddof=1) > 1e-3:
            vals = out[:, j][~np.isnan(x32[:, j])].astype(np.float64)
            assert abs(vals.mean()) < 1e-4
            assert abs(np.std(vals, ddof=1) - 1.0) < 1e-4
        np.testing.assert_array_equal(out[:, j][np.isnan(x32[:, j])], 0.0)


# ------------------------------------------------------------------------------- shifting


def test_shift_labels_hand_examples():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(shift_labels(x, 2), [3.0, 4.0, 5.0, 5.0, 5.0])
    np.testing.assert_array_equal(shift_labels(x, 4), [5.0] * 5)
    same = shift_labels(x, 0)
    np.testing.assert_array_equal(same, x)
    assert same is not x
    m = np.array([[1, 10], [2, 20], [3, 30]], dtype=np.float32)
    np.testing.assert_array_equal(shift_labels(m, 1), [[2, 20], [3, 30], [3, 30]])
    assert shift_labels(m, 1).dtype == np.float32


def test_shift_back_any_rank_and_long_shifts():
    x = np.arange(5.0)
    np.testing.assert_array_equal(shift_back(x, 2), [2, 3, 4, 4, 4])
    np.testing.assert_array_equal(shift_back(x, 9), [4] * 5)  # >= T: the last value
    np.testing.assert_array_equal(shift_back(np.zeros(0), 3), np.zeros(0))
    cube = np.arange(24).reshape(4, 3, 2)
    np.testing.assert_array_equal(shift_back(cube, 1), cube[[1, 2, 3, 3]])
    with pytest.raises(ValueError, match="frames must be >= 0"):
        shift_back(x, -1)
    # shift_labels is shift_back with the label checks
    np.testing.assert_array_equal(shift_labels(x, 3), shift_back(x, 3))


def test_shift_labels_errors():
    with pytest.raises(ValueError, match="cannot shift 3 frames by 3"):
        shift_labels(np.zeros(3), 3)
    with pytest.raises(ValueError, match="frames must be >= 0"):
        shift_labels(np.zeros(3), -1)
    with pytest.raises(ValueError, match=r"expected \[T\] or \[T, K\]"):
        shift_labels(np.zeros((2, 2, 2)), 1)


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-1, 1)),
    st.integers(0, 39),
)
def test_shift_labels_property(x, frames):
    frames = frames % len(x)
    out = shift_labels(x, frames)
    assert out.shape == x.shape
    np.testing.assert_array_equal(out[: len(x) - frames], x[frames:])
    np.testing.assert_array_equal(out[len(x) - frames :], np.full(frames, x[-1]))


def test_shift_corpus_labels():
    labelled = _rec("train_1", np.zeros((6, 2)))
    unlabelled = _rec("test_1", np.zeros((6, 2)), gold=False)
    out = shift_corpus_labels(_corpus({"train": [labelled], "test": [unlabelled]}), 2)
    rec = out.partitions["train"][0]
    np.testing.assert_array_equal(rec.gold, np.r_[labelled.gold[2:], [labelled.gold[-1]] * 2])
    np.testing.assert_array_equal(rec.pu, np.r_[labelled.pu[2:], [labelled.pu[-1]] * 2])
    np.testing.assert_array_equal(rec.ratings[:4], labelled.ratings[2:])
    np.testing.assert_array_equal(rec.features, labelled.features)  # features never move
    test = out.partitions["test"][0]
    assert test.gold is None and test.ratings is None and test.pu is None


# -------------------------------------------------------------------------------- batching


def test_to_batch_pads_and_masks():
    rng = np.random.default_rng(3)
    a = _rec("train_1", rng.standard_normal((5, 2)))
    b = _rec("train_2", rng.standard_normal((3, 2)), seed=1)
    batch = to_batch([a, b])
    assert batch["x"].shape == (2, 5, 2) and batch["x"].dtype == np.float32
    assert batch["y"].shape == batch["pu"].shape == batch["mask"].shape == (2, 5)
    assert batch["mask"].dtype == bool and batch["lengths"].dtype == np.int32
    np.testing.assert_array_equal(batch["lengths"], [5, 3])
    np.testing.assert_array_equal(batch["mask"], [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(batch["x"][1, :3], b.features)
    np.testing.assert_array_equal(batch["x"][1, 3:], 0.0)
    np.testing.assert_array_equal(batch["y"][0], a.gold)
    np.testing.assert_array_equal(batch["pu"][1, :3], b.pu)
    np.testing.assert_array_equal(batch["y"][1, 3:], 0.0)
    assert batch["names"] == ["train_1", "train_2"]
    assert batch["has_labels"] and batch["has_pu"]


def test_to_batch_unlabelled_and_pad_to():
    rec = _rec("test_1", np.ones((4, 3)), gold=False)
    batch = to_batch([rec], pad_to=6)
    assert batch["x"].shape == (1, 6, 3)
    np.testing.assert_array_equal(batch["y"], 0.0)
    assert not batch["has_labels"] and not batch["has_pu"]
    np.testing.assert_array_equal(batch["labelled"], [False])
    with pytest.raises(ValueError, match="never truncated"):
        to_batch([rec], pad_to=3)
    with pytest.raises(ValueError, match="at least one recording"):
        to_batch([])
