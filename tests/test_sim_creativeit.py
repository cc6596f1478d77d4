"""The embedded CreativeIT-like corpus: layout, loader round trip, answer key, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from ddat_jax import metrics
from ddat_jax.data import prepare, sim_creativeit
from ddat_jax.data.corpus import load_corpus

DIMS = sim_creativeit.DIMENSIONS


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    return sim_creativeit.generate_corpus(
        tmp_path_factory.mktemp("cit") / "small", preset="creativeit_small", seed=0
    )


def test_loader_reads_every_dimension_and_session(small_root):
    corpus = load_corpus(
        small_root,
        modality=("speech", "body"),
        dimension=DIMS,
        gold="mean",
        partitions=sim_creativeit.SESSIONS,
    )
    assert corpus.dimensions == DIMS
    assert corpus.num_features == 39 + 24
    assert corpus.modality_slices == {"speech": (0, 39), "body": (39, 63)}
    assert corpus.frame_period == pytest.approx(1 / 60, rel=1e-4)
    assert list(corpus.partitions) == list(sim_creativeit.SESSIONS)
    _, sims = sim_creativeit.simulate("creativeit_small", 0)
    by_stem = {s.stem: s for s in sims}
    for recs in corpus.partitions.values():
        assert len(recs) == 2
        for rec in recs:
            sim = by_stem[rec.name]
            assert rec.num_frames == 1800 and rec.ratings.shape == (1800, 3)
            # Gold = the mean of the raters as written (5 significant digits).
            np.testing.assert_allclose(rec.gold, sim.ratings[0].mean(axis=1), atol=1e-4)
            np.testing.assert_allclose(
                rec.other_gold["dominance"], sim.ratings[2].mean(axis=1), atol=1e-4
            )
            np.testing.assert_allclose(rec.features[:, :39], sim.speech, rtol=1e-4, atol=1e-3)


def test_sessions_are_speaker_exclusive_and_answer_key(small_root):
    key = sim_creativeit.load_answer_key(small_root)
    actors = {s: {key["actor"][stem] for stem in stems} for s, stems in key["sessions"].items()}
    seen = set()
    for s in actors.values():
        assert not (s & seen)
        seen |= s
    assert np.mean([np.mean(v) for v in key["rater_delay_s"].values()]) == pytest.approx(1.5)
    stem = key["sessions"]["session1"][0]
    assert key["latent"][stem].shape == (3, 1800)
    assert 0.2 < key["speaking"][stem].mean() < 0.8


def test_full_preset_layout():
    p = sim_creativeit.PRESETS["creativeit"]
    layout = sim_creativeit._layout(p)
    assert len(layout) == 40 and p.seconds * 60 == 12600 and sum(p.actors) == 16
    per_session = {s: [x for x in layout if x[1] == s] for s in sim_creativeit.SESSIONS}
    assert all(len(v) == 8 for v in per_session.values())
    assert "creativeit" in prepare.PRESETS and "creativeit_small" in prepare.PRESETS


def test_deltas_of_a_ramp_and_a_parabola():
    t = np.arange(20.0)[:, None]
    np.testing.assert_allclose(sim_creativeit.deltas(3 * t)[2:-2], 3.0)
    d2 = sim_creativeit.deltas(sim_creativeit.deltas(t**2))
    np.testing.assert_allclose(d2[4:-4], 2.0)


def test_speech_carries_emotion_only_while_speaking():
    _, sims = sim_creativeit.simulate("creativeit_small", 1)
    rec = sims[0]
    e = rec.speech[:, 0]
    assert e[~rec.speaking].mean() < e[rec.speaking].mean() - 1.0


@pytest.mark.slow
def test_calibration_ranges_full_preset():
    """Ridge on 3.3 s past means, leave-one-session-out: the documented target ranges."""
    _, sims = sim_creativeit.simulate("creativeit", 0)
    cal = sim_creativeit.calibrate(sims)
    assert 0.3 <= cal["speech"]["activation"] <= 0.5
    assert 0.1 <= cal["speech"]["valence"] <= 0.3
    assert 0.2 <= cal["speech"]["dominance"] <= 0.4
    for d in DIMS:
        assert cal["speech"][d] > cal["body"][d]
    assert abs(cal["body"]["valence"]) < 0.1
    lat = np.concatenate([s.latent[0] for s in sims])
    gold = np.concatenate([s.ratings[0].mean(axis=1) for s in sims])
    assert metrics.pcc(lat, gold) > 0.5
