"""Several emotion dimensions per recording: ``load_corpus(..., dimension=(...))``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddat_jax.data import csv_layout
from ddat_jax.data.avec2016 import DataFormatError
from ddat_jax.data.corpus import load_corpus

DIMS = ("activation", "valence", "dominance")
T = 30


def _write(root, *, stems=("s1_a", "s1_b", "s2_a"), dims=DIMS, raters=3, seed=0):
    """A CSV-layout corpus: shared features, per-dimension ratings; partitions s1/s2."""
    rng = np.random.default_rng(seed)
    times = np.arange(T) / 60.0
    truth = {}
    for stem in stems:
        feats = pd.DataFrame(rng.normal(size=(T, 4)), columns=[f"f{i}" for i in range(4)])
        feats.insert(0, "time", times)
        csv_layout.write_table(root / "features" / "speech" / f"{stem}.csv", feats)
        for d in dims:
            r = rng.normal(size=(T, raters))
            truth[stem, d] = r
            frame = pd.DataFrame(r, columns=[f"R{k}" for k in range(raters)])
            frame.insert(0, "time", times)
            csv_layout.write_table(root / "ratings" / d / f"{stem}.csv", frame)
    lines = ["stem,partition"] + [f"{s},{s.split('_')[0]}" for s in stems]
    (root / "partitions.csv").write_text("\n".join(lines) + "\n")
    return truth


def _load(root, dimension):
    return load_corpus(
        root, modality="speech", dimension=dimension, gold="mean", partitions=("s1", "s2")
    )


def test_several_dimensions_keep_the_first_as_gold(tmp_path):
    truth = _write(tmp_path)
    corpus = _load(tmp_path, DIMS)
    assert corpus.dimension == "activation"
    assert corpus.other_dimensions == ("valence", "dominance")
    assert corpus.dimensions == DIMS
    assert "dimension activation+valence+dominance" in corpus.summary()
    for recs in corpus.partitions.values():
        for rec in recs:
            np.testing.assert_allclose(rec.gold, truth[rec.name, "activation"].mean(1), atol=1e-6)
            assert set(rec.other_gold) == {"valence", "dominance"}
            for d in DIMS[1:]:
                np.testing.assert_allclose(rec.other_gold[d], truth[rec.name, d].mean(1), atol=1e-6)
                np.testing.assert_allclose(rec.other_ratings[d], truth[rec.name, d], atol=1e-6)
            g = rec.gold_matrix(DIMS)
            assert g.shape == (T, 3) and g.dtype == np.float32
            ref = np.stack([truth[rec.name, d].mean(1) for d in DIMS], axis=1)
            np.testing.assert_allclose(g, ref, atol=1e-6)
            np.testing.assert_allclose(rec.gold_matrix(("dominance",)), ref[:, 2:], atol=1e-6)


def test_plus_string_equals_sequence_and_single_is_unchanged(tmp_path):
    _write(tmp_path)
    a = _load(tmp_path, "activation+dominance")
    b = _load(tmp_path, ("activation", "dominance"))
    one = _load(tmp_path, "activation")
    assert a.dimensions == b.dimensions == ("activation", "dominance")
    assert one.other_dimensions == () and one.dimensions == ("activation",)
    for ra, rb, r1 in zip(
        a.partitions["s1"], b.partitions["s1"], one.partitions["s1"], strict=True
    ):
        np.testing.assert_array_equal(ra.other_gold["dominance"], rb.other_gold["dominance"])
        np.testing.assert_array_equal(ra.gold, r1.gold)
        np.testing.assert_array_equal(ra.features, r1.features)
        assert r1.other_gold == {} and r1.other_ratings == {}


def test_unknown_and_repeated_dimensions(tmp_path):
    _write(tmp_path)
    with pytest.raises(ValueError, match="repeated"):
        _load(tmp_path, ("valence", "valence"))
    with pytest.raises(ValueError, match="expected one or more"):
        _load(tmp_path, "activation+")
    rec = _load(tmp_path, ("activation", "valence")).partitions["s1"][0]
    with pytest.raises(ValueError, match="no gold standard for dimension 'dominance'"):
        rec.gold_matrix(("activation", "dominance"))


def test_a_dimension_missing_a_recording_is_an_error(tmp_path):
    _write(tmp_path)
    (tmp_path / "ratings" / "dominance" / "s2_a.csv").unlink()
    with pytest.raises(DataFormatError):
        _load(tmp_path, DIMS)
