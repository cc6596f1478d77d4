"""Tests of ddat_jax.features: raw audio -> feature streams -> a corpus load_corpus reads.

Tests that run openSMILE or write WAV files need the optional extra (``pip install -e
'.[audio]'``) and skip with that reason without it; the window arithmetic is tested always.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ddat_jax.data import csv_layout
from ddat_jax.data.avec2016 import DataFormatError
from ddat_jax.data.corpus import gold_ccc_centring, load_corpus
from ddat_jax.features import extract as ex
from ddat_jax.features.__main__ import _windows
from ddat_jax.features.__main__ import main as cli


def _have_audio() -> bool:
    try:
        import opensmile  # noqa: F401
        import soundfile  # noqa: F401
    except (ImportError, OSError):  # OSError: soundfile without its libsndfile
        return False
    return True


HAVE_AUDIO = _have_audio()
needs_audio = pytest.mark.skipif(
    not HAVE_AUDIO,
    reason="needs the optional audio extra (opensmile, soundfile): pip install -e '.[audio]'",
)

DURATION = 8.0  # seconds per synthetic recording: more than the 6 s valence window
STEMS = ("train_1", "dev_1", "test_1")


# ------------------------------------------------------------------ window arithmetic


def test_num_frames_matches_recola():
    assert ex.num_frames(300.0, 0.04) == 7501
    assert ex.num_frames(8.0, 0.1) == 81
    assert ex.num_frames(0.03, 0.04) == 1


def test_window_of_frame_centres_and_copies_edges():
    # 4 s windows at 40 ms: window k is centred on frame k + 50.
    idx = ex.window_of_frame(300, 200, window_s=4.0, frame_period=0.04)
    assert (idx[:51] == 0).all()  # frames before the first centre copy window 0
    assert idx[60] == 10
    assert idx[249] == 199 and (idx[249:] == 199).all()  # and after the last, the last


def test_nearest_frame_is_centred():
    # 25 ms frames every 10 ms; label frame n at 40 ms -> LLD frame 4n - 1 (centre 40n + 2.5 ms).
    idx = ex.nearest_frame(5, 1000, frame_period=0.04)
    np.testing.assert_array_equal(idx, [0, 3, 7, 11, 15])


def test_mean_cv_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    lld = rng.normal(3.0, 1.0, size=(997, 4))
    lld[:, 1] = 1e4 + rng.normal(size=997)  # large mean, small spread: needs the centring
    lld[:700, 2] = 0.0  # silence: mean 0 -> cv 0
    lld[:, 3] -= 5.0  # negative mean -> negative cv (openSMILE's stddevNorm)
    mean, cv = ex.mean_cv(lld, window=600, hop=10)
    assert mean.shape == cv.shape == ((997 - 600) // 10 + 1, 4)
    for k in (0, 7, len(mean) - 1):
        w = lld[10 * k : 10 * k + 600]
        np.testing.assert_allclose(mean[k], w.mean(0), rtol=1e-12)
        std = w.std(0)
        expect = np.divide(std, w.mean(0), out=np.zeros(4), where=w.mean(0) != 0)
        np.testing.assert_allclose(cv[k], expect, rtol=1e-9, atol=1e-12)
    assert (cv[:, 3] < 0).all() and (cv[:11, 2] == 0).all() and cv[11, 2] > 0
    short_mean, _ = ex.mean_cv(lld[:50], window=600, hop=10)
    assert short_mean.shape == (0, 4)


def test_window_argument_parsing():
    assert _windows(None, "sewa") is None
    assert _windows("6", "sewa") == {"*": 6.0}
    assert _windows("arousal=4,valence=8", "avec2016") == {"arousal": 4.0, "valence": 8.0}
    assert _windows("5", "avec2016") == {"arousal": 5.0, "valence": 5.0}


def test_unknown_style_lists_the_valid_ones(tmp_path):
    from ddat_jax.features import extract_corpus

    with pytest.raises(ValueError, match="avec2016"):
        extract_corpus(tmp_path, tmp_path / "out", style="egemaps")


# ------------------------------------------------------------------ synthetic recordings


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """3 synthetic voiced recordings of 8 s (train, dev, test) with 3-rater traces."""
    if not HAVE_AUDIO:
        pytest.skip("needs the optional audio extra (opensmile, soundfile)")
    from ddat_jax.features.synthetic import write_recordings

    folder = tmp_path_factory.mktemp("audio")
    key = write_recordings(folder, stems=STEMS, duration=DURATION, seed=1)
    return folder, key


@pytest.fixture(scope="module")
def corpora(recordings, tmp_path_factory):
    """The recordings extracted once in every style through the command line."""
    folder, _ = recordings
    out = {}
    for style in ex.STYLES:
        root = tmp_path_factory.mktemp(style)
        rc = cli(
            [
                "--wav-dir", str(folder / "wav"),
                "--ratings-dir", str(folder / "ratings"),
                "--out", str(root),
                "--style", style,
                "--quiet",
            ]
        )  # fmt: skip
        assert rc == 0
        out[style] = root
    return out


@needs_audio
@pytest.mark.parametrize("style", list(ex.STYLES))
def test_cli_output_loads_with_load_corpus(style, corpora, recordings):
    folder, _ = recordings
    root = corpora[style]
    st = ex.STYLES[style]
    manifest = json.loads((root / "features_manifest.json").read_text())
    assert manifest["style"] == style and manifest["modality"] == st.modality
    assert [r["stem"] for r in manifest["recordings"]] == sorted(STEMS)
    assert manifest["x_real_time"] > 0
    for dim in ("arousal", "valence"):
        corpus = load_corpus(root, modality=st.modality, dimension=dim, layout=st.layout)
        assert corpus.frame_period == pytest.approx(st.frame_period)
        assert corpus.num_features == st.num_features
        assert corpus.rater_names == ["R1", "R2", "R3"]
        n = ex.num_frames(DURATION, st.frame_period)
        for part, stem in zip(
            ("train", "dev", "test"), ("train_1", "dev_1", "test_1"), strict=True
        ):
            (rec,) = corpus.partitions[part]
            assert rec.name == stem and rec.num_frames == n
            assert np.isfinite(rec.features).all()
            # The traces are resampled by linear interpolation onto the frame times and the
            # gold standard is AVEC's CCC centring of them.
            trace = csv_layout.read_table(folder / "ratings" / dim / f"{stem}.csv")
            expect = np.stack(
                [np.interp(rec.times, trace["time"], trace[r]) for r in ("R1", "R2", "R3")], 1
            )
            np.testing.assert_allclose(rec.ratings, expect, atol=1e-6)
            np.testing.assert_allclose(rec.gold, gold_ccc_centring(expect), atol=1e-6)


@needs_audio
def test_spot_check_egemaps_windows_against_the_llds(corpora, recordings):
    """Our sliding-window eGeMAPS functionals == the same functionals computed from the LLDs.

    openSMILE's eGeMAPS LLD output is averaged here over each window (all frames, or the voiced
    ones for the F0 descriptor), which checks the window length, its alignment on the label
    frames (centre rule) and the edge copies.
    """
    from ddat_jax.features.audio import read_audio

    folder, _ = recordings
    audio = read_audio(folder / "wav" / "dev_1.wav")
    lld_names, lld = ex.egemaps_lld(audio.signal, audio.sample_rate)
    col = {n: j for j, n in enumerate(lld_names)}
    for dim, window in (("arousal", 4.0), ("valence", 6.0)):
        corpus = load_corpus(corpora["avec2016"], modality="audio", dimension=dim)
        (rec,) = corpus.partitions["dev"]
        feat = {n: j for j, n in enumerate(corpus.feature_names)}
        w = int(round(window / 0.01))
        n_windows = (len(lld) - w) // 4 + 1
        half = int(round(window / 0.08))
        for n in range(rec.num_frames):  # every frame, the copied edges included
            k = min(max(n - half, 0), n_windows - 1)
            frames = lld[4 * k : 4 * k + w]
            f0 = frames[:, col["F0semitoneFrom27.5Hz_sma3nz"]]
            voiced = f0[f0 > 0]
            mfcc1 = frames[:, col["mfcc1_sma3"]]
            pairs = {
                "loudness_sma3_amean": frames[:, col["Loudness_sma3"]].mean(),
                "mfcc1_sma3_amean": mfcc1.mean(),
                # openSMILE divides by the signed mean (negative windows occur for mfcc1)
                "mfcc1_sma3_stddevNorm": mfcc1.std() / mfcc1.mean(),
                "spectralFlux_sma3_amean": frames[:, col["spectralFlux_sma3"]].mean(),
                "F0semitoneFrom27.5Hz_sma3nz_amean": voiced.mean(),
                "F0semitoneFrom27.5Hz_sma3nz_stddevNorm": voiced.std() / voiced.mean(),
            }
            if k == n_windows - 1:
                # openSMILE's pitch smoother settles the last few F0 frames at the end of the
                # input, which the LLD run and the functionals run reach differently (~1e-5).
                pairs = {n: v for n, v in pairs.items() if not n.startswith("F0")}
            for name, value in pairs.items():
                got = rec.features[n, feat[name]]
                assert got == pytest.approx(value, rel=1e-5), (dim, n, name)


@needs_audio
def test_spot_check_sewa_mean_cv_against_pandas(corpora, recordings):
    """ComParE mean / coefficient of variation == pandas rolling statistics of the LLDs."""
    from ddat_jax.features.audio import read_audio

    folder, _ = recordings
    audio = read_audio(folder / "wav" / "test_1.wav")
    names, lld = ex.compare_lld(audio.signal, audio.sample_rate)
    rolling = pd.DataFrame(lld).rolling(600)
    mean = rolling.mean().to_numpy()[599::10]
    std = rolling.std(ddof=0).to_numpy()[599::10]
    corpus = load_corpus(corpora["sewa"], modality="compare", dimension="arousal", layout="csv")
    (rec,) = corpus.partitions["test"]
    idx = np.clip(np.arange(rec.num_frames) - 30, 0, len(mean) - 1)
    np.testing.assert_allclose(rec.features[:, :65], mean[idx], rtol=1e-5, atol=1e-6)
    cv = np.divide(std, mean, out=np.zeros_like(std), where=mean != 0)
    np.testing.assert_allclose(rec.features[:, 65:], cv[idx], rtol=1e-4, atol=1e-5)
    assert corpus.feature_names[0] == f"{names[0]}_amean"


@needs_audio
def test_mfcc_frames_are_the_nearest_lld_frames(corpora, recordings):
    from ddat_jax.features.audio import read_audio

    folder, _ = recordings
    audio = read_audio(folder / "wav" / "train_1.wav")
    names, lld = ex.mfcc_lld(audio.signal, audio.sample_rate)
    assert len(names) == 39 and names[12] == "pcm_LOGenergy"
    corpus = load_corpus(corpora["mfcc"], modality="mfcc", dimension="valence", layout="csv")
    (rec,) = corpus.partitions["train"]
    idx = ex.nearest_frame(rec.num_frames, len(lld), frame_period=0.04)
    np.testing.assert_allclose(rec.features, lld[idx], rtol=1e-6, atol=1e-5)


@needs_audio
def test_louder_higher_stretches_have_higher_arousal_features(corpora, recordings):
    """The synthetic arousal proxy is visible in the features with the expected sign.

    Compared with the control itself (the answer key, before the raters' 1.5-2.5 s lag).
    """
    _, key = recordings
    corpus = load_corpus(corpora["avec2016"], modality="audio", dimension="arousal")
    feat = {n: j for j, n in enumerate(corpus.feature_names)}
    for recs in corpus.partitions.values():
        for rec in recs:
            control = np.interp(rec.times, key[rec.name]["times"], key[rec.name]["arousal"])
            for name in ("loudness_sma3_amean", "F0semitoneFrom27.5Hz_sma3nz_amean"):
                r = np.corrcoef(rec.features[:, feat[name]], control)[0, 1]
                assert r > 0.5, (rec.name, name, r)


# ------------------------------------------------------------------------- bad inputs


def _one_recording(tmp_path, recordings, stem="train_1"):
    """A folder with one copied recording and its arousal ratings."""
    import shutil

    folder, _ = recordings
    (tmp_path / "wav").mkdir()
    (tmp_path / "ratings" / "arousal").mkdir(parents=True)
    shutil.copy(folder / "wav" / f"{stem}.wav", tmp_path / "wav" / f"{stem}.wav")
    shutil.copy(
        folder / "ratings" / "arousal" / f"{stem}.csv",
        tmp_path / "ratings" / "arousal" / f"{stem}.csv",
    )
    return tmp_path / "wav", tmp_path / "ratings"


def _run_cli(wav, ratings, out, capsys, *extra):
    rc = cli(["--wav-dir", str(wav), "--ratings-dir", str(ratings), "--out", str(out),
              "--style", "sewa", "--quiet", *extra])  # fmt: skip
    return rc, capsys.readouterr().err


@needs_audio
def test_stereo_is_an_error_naming_the_file_unless_mixed_down(tmp_path, recordings, capsys):
    import soundfile

    wav, ratings = _one_recording(tmp_path, recordings)
    x, sr = soundfile.read(wav / "train_1.wav")
    soundfile.write(wav / "train_1.wav", np.stack([x, 0.5 * x], 1), sr)
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys)
    assert rc == 2
    assert "train_1.wav: 2 channels; expected mono audio (pass --mixdown" in err
    assert not (tmp_path / "out" / "features_manifest.json").exists()
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys, "--mixdown")
    assert rc == 0, err
    manifest = json.loads((tmp_path / "out" / "features_manifest.json").read_text())
    assert manifest["recordings"][0]["source_channels"] == 2


@needs_audio
def test_empty_and_unreadable_audio_are_errors_naming_the_file(tmp_path, recordings, capsys):
    import soundfile

    wav, ratings = _one_recording(tmp_path, recordings)
    soundfile.write(wav / "train_1.wav", np.zeros(0, dtype=np.float32), 16000)
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys)
    assert rc == 2 and "train_1.wav: the file holds no audio samples (empty recording)" in err
    (wav / "train_1.wav").write_bytes(b"RIFF....not a wave file")
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys)
    assert rc == 2 and "train_1.wav: cannot read the audio" in err


@needs_audio
def test_other_sample_rates_are_resampled_or_rejected(tmp_path, recordings, capsys):
    import soundfile

    wav, ratings = _one_recording(tmp_path, recordings)
    x, sr = soundfile.read(wav / "train_1.wav")
    soundfile.write(wav / "train_1.wav", x[::2], sr // 2)  # 8 kHz
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys, "--no-resample")
    assert rc == 2
    assert "train_1.wav: sample rate 8000 Hz, expected 16000 Hz (resampling is off" in err
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys)
    assert rc == 0, err
    rec = json.loads((tmp_path / "out" / "features_manifest.json").read_text())["recordings"][0]
    assert rec["resampled"] and rec["source_rate"] == 8000
    assert rec["duration_s"] == pytest.approx(DURATION)
    soundfile.write(wav / "train_1.wav", x[::4], sr // 4)  # 4 kHz
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys)
    assert rc == 2 and "train_1.wav: sample rate 4000 Hz is below 8000 Hz" in err


@needs_audio
def test_ratings_shorter_than_the_audio_are_an_error_naming_both(tmp_path, recordings, capsys):
    wav, ratings = _one_recording(tmp_path, recordings)
    path = ratings / "arousal" / "train_1.csv"
    frame = csv_layout.read_table(path)
    csv_layout.write_table(path, frame[frame["time"] <= 5.0])
    rc, err = _run_cli(wav, ratings, tmp_path / "out", capsys)
    assert rc == 2
    assert f"{path}: the ratings end at 5 s but {wav / 'train_1.wav'} lasts 8.000 s" in err
    # Nothing is extracted when a check fails (all inputs are checked first).
    assert not (tmp_path / "out").exists()


@needs_audio
def test_ratings_longer_than_the_audio_are_truncated_and_reported(tmp_path, recordings, capsys):
    wav, ratings = _one_recording(tmp_path, recordings)
    path = ratings / "arousal" / "train_1.csv"
    frame = csv_layout.read_table(path)
    extra = frame.iloc[-25:].copy()
    extra["time"] += 1.0
    longer = pd.DataFrame(
        np.concatenate([frame.to_numpy(), extra.to_numpy()]), columns=frame.columns
    )
    csv_layout.write_table(path, longer)
    rc, err = _run_cli(
        wav, ratings, tmp_path / "out", capsys, "--partitions", str(_parts(tmp_path))
    )
    assert rc == 0, err
    manifest = json.loads((tmp_path / "out" / "features_manifest.json").read_text())
    assert manifest["recordings"][0]["labels"]["arousal"]["trace_beyond_audio_s"] == 1.0
    assert (tmp_path / "out" / "partitions.csv").read_text() == "stem,partition\ntrain_1,train\n"


def _parts(tmp_path):
    path = tmp_path / "parts.csv"
    path.write_text("stem,partition\ntrain_1,train\n")
    return path


@needs_audio
def test_bad_rating_files_are_errors_naming_the_file(tmp_path, recordings):
    from ddat_jax.features import extract_corpus

    wav, ratings = _one_recording(tmp_path, recordings)
    path = ratings / "arousal" / "train_1.csv"
    good = path.read_text()
    lines = good.splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"train_1\.csv, line 5: 'time' must be strictly"):
        extract_corpus(wav, tmp_path / "out", style="mfcc", ratings_dir=ratings)
    path.write_text(good)
    (ratings / "arousal" / "train_9.csv").write_text(good)
    with pytest.raises(DataFormatError, match=r"train_9\.csv: ratings for recording 'train_9'"):
        extract_corpus(wav, tmp_path / "out", style="mfcc", ratings_dir=ratings)
    (ratings / "arousal" / "train_9.csv").unlink()
    (ratings / "liking").mkdir()
    (ratings / "liking" / "train_1.csv").write_text(good)
    with pytest.raises(DataFormatError, match="dimension 'liking' cannot be written in the AVEC"):
        extract_corpus(wav, tmp_path / "out", style="avec2016", ratings_dir=ratings)


@needs_audio
def test_too_short_audio_and_unknown_partition_are_errors(tmp_path, recordings):
    import soundfile

    from ddat_jax.features import AudioError, extract_corpus

    wav, _ = _one_recording(tmp_path, recordings)
    x, sr = soundfile.read(wav / "train_1.wav")
    soundfile.write(wav / "train_1.wav", x[: 3 * sr], sr)
    with pytest.raises(AudioError, match=r"train_1\.wav: lasts 3\.000 s, shorter than the 4 s"):
        extract_corpus(wav, tmp_path / "out", style="avec2016")
    assert not (tmp_path / "out").exists()  # found by the checks before any extraction
    (wav / "train_1.wav").rename(wav / "speaker07.wav")
    with pytest.raises(DataFormatError, match=r"speaker07\.wav: cannot tell the partition"):
        extract_corpus(wav, tmp_path / "out", style="mfcc")


def test_missing_extra_is_explained(monkeypatch):
    import sys

    from ddat_jax.features.audio import require_audio_extra

    monkeypatch.setitem(sys.modules, "opensmile", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'ddat_jax\[audio\]'"):
        require_audio_extra()


# --------------------------------------------------------------------------- end to end


@needs_audio
@pytest.mark.slow
def test_wav_folder_to_tables_with_the_expected_sign(tmp_path):
    """WAV folder -> features -> the DDAT smoke experiment -> tables (about 2 min on 2 cores).

    Louder, higher-pitched stretches must come out as higher predicted arousal: the STL
    predictions on test correlate positively with the loudness and F0 functionals.
    """
    import subprocess
    import sys
    from pathlib import Path

    from ddat_jax.features.synthetic import write_recordings

    stems = [f"train_{k}" for k in range(1, 5)] + ["dev_1", "dev_2", "test_1", "test_2"]
    write_recordings(tmp_path / "src", stems=stems, duration=30.0, seed=0)
    corpus_root, workdir = tmp_path / "corpus", tmp_path / "run"
    assert cli(["--wav-dir", str(tmp_path / "src" / "wav"), "--ratings-dir",
                str(tmp_path / "src" / "ratings"), "--out", str(corpus_root), "--style",
                "avec2016", "--quiet"]) == 0  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "ddat_jax.main", "--config=configs/recola_re.py:smoke",
         f"--config.data.root={corpus_root}", f"--workdir={workdir}"],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip
    assert (workdir / "results" / "table1_before_postprocessing.md").is_file()
    corpus = load_corpus(corpus_root, modality="audio", dimension="arousal")
    feat = {n: j for j, n in enumerate(corpus.feature_names)}
    for rec in corpus.partitions["test"]:
        pred = pd.read_csv(workdir / "predictions" / "stl" / "test" / f"{rec.name}.csv")
        for name in ("loudness_sma3_amean", "F0semitoneFrom27.5Hz_sma3nz_amean"):
            r = np.corrcoef(pred["prediction"], rec.features[:, feat[name]])[0, 1]
            assert r > 0.2, (rec.name, name, r)


def test_out_folder_never_mixes_runs(tmp_path):
    """A non-empty folder that is not an extractor corpus is refused; a previous corpus is
    replaced whole (no stale recording of the earlier run stays beside the new ones)."""
    from ddat_jax.features.build import _check_out

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a corpus written by ddat_jax.features"):
        _check_out(other)
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "features_manifest.json").write_text("{}")
    assert _check_out(previous) == previous
    assert _check_out(tmp_path / "new") == tmp_path / "new"
