"""The embedded SEWA-like corpus (``ddat_jax.data.sim_sewa``) in the CSV layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddat_jax.data import corpus as corpus_lib
from ddat_jax.data import prepare, sim_sewa


@pytest.fixture(scope="module")
def sewa_small(tmp_path_factory):
    return sim_sewa.generate_corpus(tmp_path_factory.mktemp("sewa") / "c", preset="sewa_small")


def test_csv_layout_loads_with_ewe_gold(sewa_small):
    c = corpus_lib.load_corpus(
        sewa_small, modality=["audio", "video"], dimension="valence", gold="ewe"
    )
    preset = sim_sewa.PRESETS["sewa_small"]
    assert c.frame_period == pytest.approx(0.1)
    assert [len(c.partitions[p]) for p in ("train", "dev", "test")] == list(preset.n_recordings)
    assert c.modality_slices == {"audio": (0, 2 * preset.n_lld), "video": (20, 34)}
    assert c.rater_names == list(sim_sewa.RATERS)
    assert (sewa_small / "partitions.csv").read_text().startswith("stem,partition\nTrain_DE_01")
    assert not (sewa_small / "gold").exists()  # the gold standard is computed (EWE)
    rec = c.partitions["dev"][0]
    np.testing.assert_allclose(rec.gold, corpus_lib.gold_ewe(rec.ratings), atol=1e-6)
    audio, video = rec.features[:, :20], rec.features[:, 20:]
    assert np.isfinite(audio).all() and np.isnan(video).any()  # no-face frames: empty fields
    lengths = {r.num_frames for recs in c.partitions.values() for r in recs}
    assert len(lengths) > 1 and all(375 <= n <= 625 for n in lengths)  # padding needed


def test_answer_key_delays_pu_tracks_ambiguity_and_silence(sewa_small):
    key = sim_sewa.load_answer_key(sewa_small)
    for dim in sim_sewa.DIMENSIONS:
        delays = np.array(list(key["rater_delay_s"][dim].values()))
        assert delays.mean() == pytest.approx(4.0, abs=1e-9)
        assert delays.min() >= 2.5 and delays.max() <= 5.5
    c = corpus_lib.load_corpus(sewa_small, modality="audio", dimension="arousal", gold="ewe")
    r_pu, silent = [], []
    for rec in c.partitions["train"] + c.partitions["dev"]:
        a = key["ambiguity"][rec.name]["arousal"]
        lag = 40  # the raters see a(t) 4 s late
        r_pu.append(np.corrcoef(rec.pu[lag:], a[:-lag])[0, 1])
        silent.append(1 - key["speaking"][rec.name].mean())
    assert np.mean(r_pu) > 0.5
    assert 0.25 < np.mean(silent) < 0.5


def test_deterministic_cached_and_refuses_foreign_folders(sewa_small, tmp_path):
    again = sim_sewa.generate_corpus(tmp_path / "again", preset="sewa_small")
    for rel in ("features/video/Test_DE_02.csv", "ratings/arousal/Train_DE_01.csv"):
        assert (again / rel).read_bytes() == (sewa_small / rel).read_bytes()
    before = (again / "MANIFEST.json").stat().st_mtime_ns
    assert sim_sewa.ensure_corpus("sewa_small", 0, root=again, progress=None) == again
    assert (again / "MANIFEST.json").stat().st_mtime_ns == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no corpus"):
        sim_sewa.generate_corpus(foreign, preset="sewa_small")
    with pytest.raises(ValueError, match="valid"):
        sim_sewa.generate_corpus(tmp_path / "x", preset="nope")


def test_registered_preset_goes_through_prepare(monkeypatch, tmp_path):
    monkeypatch.setenv("DDAT_JAX_CACHE", str(tmp_path))
    assert {"sewa", "sewa_small"} <= set(prepare.PRESETS)
    root = prepare.PRESETS["sewa_small"]("sewa_small", 0)
    assert root == sim_sewa.default_root("sewa_small", 0)
    assert json.loads((root / "MANIFEST.json").read_text())["preset"] == "sewa_small"


@pytest.mark.slow
def test_full_preset_shape_and_calibration(tmp_path):
    """The paper's partition sizes, and the ridge calibration ranges of the docstring."""
    from ddat_jax.data import delay

    root = sim_sewa.generate_corpus(tmp_path / "sewa", preset="sewa")
    ranges = {
        ("audio", "arousal"): (0.2, 0.4),
        ("video", "arousal"): (0.35, 0.55),
        ("audio", "valence"): (0.15, 0.35),
        ("video", "valence"): (0.4, 0.6),
    }
    for (mod, dim), (lo, hi) in ranges.items():
        c = corpus_lib.load_corpus(root, modality=mod, dimension=dim, gold="ewe")
        frames = [sum(r.num_frames for r in c.partitions[p]) for p in ("train", "dev", "test")]
        assert [len(c.partitions[p]) for p in ("train", "dev", "test")] == [34, 14, 16]
        assert all(abs(f / t - 1) < 0.1 for f, t in zip(frames, (55072, 22307, 27597), strict=True))
        assert lo <= delay.ridge_dev_ccc(c, 4.0) <= hi, (mod, dim)
