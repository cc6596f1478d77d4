"""A folder of recordings + rating traces -> a corpus that :func:`load_corpus` reads.

Inputs:

* ``wav_dir/<stem>.wav`` (or ``.flac``), one file per recording. The stem names the recording
  and, unless a partitions file is given, its partition (``train_1``, ``dev_2``, ``test_3``;
  the aliases of :data:`ddat_jax.data.csv_layout.PARTITION_ALIASES` work too).
* ``ratings_dir/<dimension>/<stem>.csv`` (optional): one rater trace per column after a
  ``time`` column in seconds (``,``, ``;`` or tab separated; the AVEC 2016 individual-ratings
  files qualify as they are). Any sampling of the traces works: they are linearly
  interpolated onto the label frame times. They must cover the recording: start within one
  step of 0 s and end within one step of the last frame (a shorter trace is an error naming
  both files); samples after the end of the audio are dropped and reported in the manifest.
  A recording without a ratings file has no labels (e.g. a withheld test set).

Outputs (every file written atomically, the manifest last):

* style ``avec2016``: the AVEC 2016 layout (``features_audio/<dimension>/<stem>.arff`` for
  both arousal and valence, each with its own window; ``ratings_individual/<dimension>/
  <stem>.csv``; ``ratings_gold_standard/<dimension>/<stem>.arff``), written by the project's
  AVEC writers. Dimensions must be ``arousal``/``valence`` and stems ``<partition>_<id>``.
* styles ``sewa`` and ``mfcc``: the CSV layout (``features/<modality>/<stem>.csv``,
  ``ratings/<dimension>/<stem>.csv``, ``gold/<dimension>/<stem>.csv``, ``partitions.csv``
  when a partitions file is given), written by :func:`ddat_jax.data.csv_layout.write_table`.
* ``features_manifest.json``: style, settings, openSMILE version, per-recording durations,
  frame counts, resampling, timings; and the ``load_corpus`` call that reads the corpus.

The gold standard is computed from the resampled traces (``gold=``: ``ccc_centring`` — AVEC
2016's method, the default —, ``mean``, ``ewe``, or ``none``); with a single rater the trace
itself is the gold standard and no individual-ratings file is written (a perception
uncertainty needs two raters).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax.atomic import swap_folder, write_text
from ddat_jax.data import csv_layout
from ddat_jax.data.avec2016 import (
    DIMENSIONS,
    DataFormatError,
    write_arff,
    write_gold_standard,
    write_ratings,
)
from ddat_jax.data.corpus import GOLD_METHODS
from ddat_jax.features import extract as ex
from ddat_jax.features.audio import (
    MIN_SAMPLE_RATE,
    Audio,
    AudioError,
    read_audio,
    require_audio_extra,
)

__all__ = [
    "AUDIO_SUFFIXES",
    "GOLD_CHOICES",
    "MANIFEST",
    "extract_corpus",
    "extract_recording",
    "probe_audio",
    "read_trace",
    "resample_trace",
]

AUDIO_SUFFIXES = (".wav", ".flac")
GOLD_CHOICES = ("ccc_centring", "mean", "ewe", "none")
MANIFEST = "features_manifest.json"


# ---------------------------------------------------------------------------------- audio


def probe_audio(
    path: str | os.PathLike, *, sample_rate: int, resample: bool, mixdown: bool
) -> tuple[float, int, int]:
    """Checks a file's header against the audio policy without reading the samples.

    Returns:
        ``(duration_s, rate, channels)``.

    Raises:
        AudioError: as :func:`ddat_jax.features.audio.read_audio` (except non-finite
            samples, which only reading finds).
    """
    _, soundfile = require_audio_extra()
    path = Path(path)
    try:
        info = soundfile.info(str(path))
    except Exception as err:
        raise AudioError(
            f"{path}: cannot read the audio ({err}); expected a WAV/FLAC/OGG file "
            "readable by libsndfile"
        ) from None
    if info.frames <= 0:
        raise AudioError(f"{path}: the file holds no audio samples (empty recording)")
    if info.channels > 1 and not mixdown:
        raise AudioError(
            f"{path}: {info.channels} channels; expected mono audio (pass --mixdown / "
            "mixdown=True to average the channels)"
        )
    if info.samplerate < MIN_SAMPLE_RATE:
        raise AudioError(
            f"{path}: sample rate {info.samplerate} Hz is below {MIN_SAMPLE_RATE} Hz; the "
            "feature sets need speech-band audio"
        )
    if info.samplerate != sample_rate and not resample:
        raise AudioError(
            f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate} Hz (resampling "
            "is off; drop --no-resample to resample it)"
        )
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


# -------------------------------------------------------------------------------- features


def extract_recording(
    audio: Audio,
    style: ex.Style,
    *,
    frame_period: float,
    windows: dict[str, float],
) -> tuple[np.ndarray, dict[str, tuple[list[str], np.ndarray]]]:
    """Feature streams of one recording on its label frame grid.

    Args:
        audio: the signal.
        style: one of :data:`ddat_jax.features.extract.STYLES`.
        frame_period: label frame period in seconds (a multiple of 10 ms).
        windows: functional window per dimension (``"*"``: one for all); ignored by ``mfcc``.

    Returns:
        ``(times, streams)``: frame times ``[N]`` and ``{key: (names, [N, F] float64)}``
        with one key per window entry (``"*"`` for per-frame features).

    Raises:
        AudioError: the recording is shorter than a functional window.
    """
    n = ex.num_frames(audio.duration, frame_period)
    times = ex.frame_times(n, frame_period)
    streams: dict[str, tuple[list[str], np.ndarray]] = {}
    if style.name == "mfcc":
        names, lld = ex.mfcc_lld(audio.signal, audio.sample_rate)
        if len(lld) == 0:
            raise AudioError(
                f"{audio.path}: lasts {audio.duration:.3f} s, shorter than one 25 ms MFCC frame"
            )
        streams["*"] = (names, lld[ex.nearest_frame(n, len(lld), frame_period=frame_period)])
        return times, streams
    _check_long_enough(audio.path, audio.duration, windows)
    compare = None
    for key, window_s in windows.items():
        what = "every dimension" if key == "*" else key
        if style.name == "avec2016":
            names, values = ex.egemaps_functionals(
                audio.signal, audio.sample_rate, window_s=window_s, hop_s=frame_period
            )
        else:
            if compare is None:
                compare = ex.compare_lld(audio.signal, audio.sample_rate)
            lld_names, lld = compare
            mean, cv = ex.mean_cv(
                lld,
                window=ex._steps(window_s, "the functional window"),
                hop=ex._steps(frame_period, "the frame period"),
            )
            names = [f"{c}_amean" for c in lld_names] + [f"{c}_stddevNorm" for c in lld_names]
            values = np.concatenate([mean, cv], axis=1)
        if len(values) == 0:
            raise AudioError(
                f"{audio.path}: lasts {audio.duration:.3f} s, too short for one complete "
                f"{window_s:g} s window of LLD frames ({what})"
            )
        idx = ex.window_of_frame(n, len(values), window_s=window_s, frame_period=frame_period)
        streams[key] = (names, values[idx])
    return times, streams


def _check_long_enough(path, duration: float, windows: dict[str, float]) -> None:
    for key, window_s in windows.items():
        if duration < window_s:
            what = "every dimension" if key == "*" else key
            raise AudioError(
                f"{path}: lasts {duration:.3f} s, shorter than the {window_s:g} s "
                f"functional window ({what}); use longer recordings or a shorter --window"
            )


# --------------------------------------------------------------------------------- ratings


def read_trace(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a rating-trace CSV (``time`` then one column per rater, strictly increasing time).

    Raises:
        DataFormatError: naming the file and the line.
    """
    frame = csv_layout.read_table(path, missing=(), allow_missing=False)
    t = frame["time"].to_numpy(np.float64)
    bad = np.flatnonzero(np.diff(t) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        line = int(frame.attrs["line_numbers"][i])
        raise DataFormatError(
            f"{path}, line {line}: 'time' must be strictly increasing; found {t[i]:g} after "
            f"{t[i - 1]:g}"
        )
    return frame


def resample_trace(
    frame: pd.DataFrame, times: np.ndarray, *, path, audio_path, duration: float
) -> tuple[np.ndarray, float]:
    """Linear interpolation of the rater traces onto the label frame times.

    The traces must cover ``[0, times[-1]]`` within one step (the larger of the trace's median
    step and the frame period); samples beyond the last frame are dropped.

    Returns:
        ``([N, K] float64, seconds of trace beyond the audio)``.

    Raises:
        DataFormatError: the trace starts too late or ends before the audio does.
    """
    t = frame["time"].to_numpy(np.float64)
    period = float(times[1] - times[0]) if len(times) > 1 else 0.0
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    tol = max(step, period) + 1e-6
    if t[0] > times[0] + tol:
        raise DataFormatError(
            f"{path}: the ratings start at {t[0]:g} s; expected a first rating at or within "
            f"{tol:.3g} s of 0 s (the first frame)"
        )
    if t[-1] < times[-1] - tol:
        raise DataFormatError(
            f"{path}: the ratings end at {t[-1]:g} s but {audio_path} lasts {duration:.3f} s "
            f"(last frame at {times[-1]:g} s); the ratings must cover the whole recording "
            "(complete them or trim the audio)"
        )
    values = frame.iloc[:, 1:].to_numpy(np.float64)
    out = np.stack([np.interp(times, t, values[:, j]) for j in range(values.shape[1])], axis=1)
    return out, max(0.0, float(t[-1] - times[-1]))


# ---------------------------------------------------------------------------------- corpus


def _natural_files(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir(), key=lambda p: csv_layout.natural_key(p.name)):
        if p.is_file() and p.suffix.lower() in suffixes:
            if p.stem in out:
                raise AudioError(
                    f"{p}: two recordings named {p.stem!r} ({out[p.stem].name} and {p.name})"
                )
            out[p.stem] = p
    return out


def _ratings_files(ratings_dir: Path | None, stems: Sequence[str]) -> dict[str, dict[str, Path]]:
    if ratings_dir is None:
        return {}
    if not ratings_dir.is_dir():
        raise FileNotFoundError(f"{ratings_dir}: ratings folder not found")
    out: dict[str, dict[str, Path]] = {}
    for sub in sorted(p for p in ratings_dir.iterdir() if p.is_dir()):
        files = _natural_files(sub, (".csv",))
        if files:
            out[sub.name] = files
    if not out:
        raise DataFormatError(
            f"{ratings_dir}: no rating files; expected <dimension>/<stem>.csv "
            "(e.g. arousal/train_1.csv with columns time,<rater>,...)"
        )
    for files in out.values():
        orphans = [s for s in files if s not in stems]
        if orphans:
            raise DataFormatError(
                f"{files[orphans[0]]}: ratings for recording {orphans[0]!r}, which has no audio "
                f"file (<stem>{AUDIO_SUFFIXES[0]}) in the audio folder"
            )
    return out


def _gold(values: np.ndarray, method: str) -> np.ndarray:
    if values.shape[1] == 1:
        return values[:, 0].astype(np.float32)
    return GOLD_METHODS[method](values)


def _version() -> str:
    opensmile, _ = require_audio_extra()
    return str(getattr(opensmile, "__version__", "unknown"))


def extract_corpus(
    wav_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    style: str,
    ratings_dir: str | os.PathLike | None = None,
    frame_period: float | None = None,
    windows: dict[str, float] | None = None,
    gold: str = "ccc_centring",
    partitions: str | os.PathLike | None = None,
    sample_rate: int = 16000,
    resample: bool = True,
    mixdown: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Extracts features for every recording of ``wav_dir`` and writes a corpus at ``out``.

    Every input is checked (audio headers, rating files, their coverage) before any
    extraction starts, so a bad file fails in seconds, not after an hour of extraction.

    Args:
        wav_dir: folder of ``<stem>.wav``/``.flac`` files.
        out: corpus root to write (created; existing files of the same names are replaced).
        style: ``avec2016``, ``sewa`` or ``mfcc`` (:data:`ddat_jax.features.extract.STYLES`).
        ratings_dir: folder of ``<dimension>/<stem>.csv`` rater traces, or None (no labels).
        frame_period: label frame period in seconds (multiple of 10 ms); the style's default
            (40 ms, 100 ms, 40 ms) when None. ``avec2016`` requires 40 ms.
        windows: functional windows in seconds, per dimension for ``avec2016``
            (``{"arousal": 4, "valence": 6}``), ``{"*": 6}`` for ``sewa``; style default
            when None.
        gold: ``ccc_centring``, ``mean``, ``ewe`` or ``none`` (no gold-standard files).
        partitions: a ``stem,partition`` CSV (CSV styles only), copied to the corpus.
        sample_rate: analysis rate in Hz (see :mod:`ddat_jax.features.audio`).
        resample: resample files at another rate (else they are an error).
        mixdown: average the channels of multi-channel files (else they are an error).
        progress: called with one line per recording and a final speed report (None: quiet).

    Returns:
        The manifest (also written to ``out/features_manifest.json``).

    Raises:
        ValueError: unknown style or gold method, bad frame period or window.
        AudioError: an audio file that cannot be used (the message names it).
        DataFormatError: a malformed rating file, or ratings that do not cover the audio.
    """
    t_start = time.perf_counter()
    if style not in ex.STYLES:
        raise ValueError(f"unknown style {style!r}: expected one of {list(ex.STYLES)}")
    if gold not in GOLD_CHOICES:
        raise ValueError(f"unknown gold {gold!r}: expected one of {list(GOLD_CHOICES)}")
    st = ex.STYLES[style]
    period = st.frame_period if frame_period is None else float(frame_period)
    ex._steps(period, "the frame period")
    if st.layout == "avec2016" and abs(period - 0.04) > 1e-9:
        raise ValueError(
            f"style avec2016 writes the AVEC 2016 layout, whose frame period is 0.04 s; got "
            f"{period} (use style sewa or mfcc for another frame period)"
        )
    win = dict(st.windows if windows is None else windows)
    if st.name == "mfcc":
        win = {}
    elif st.name == "avec2016":
        unknown = [k for k in win if k not in DIMENSIONS]
        if unknown or set(win) != set(DIMENSIONS):
            raise ValueError(f"style avec2016 needs a window for arousal and valence, got {win}")
    elif set(win) != {"*"}:
        raise ValueError(f"style {style} takes one window for every dimension ('*'), got {win}")
    for w in win.values():
        ex._steps(w, "the functional window")

    wav_dir = Path(wav_dir)
    if not wav_dir.is_dir():
        raise FileNotFoundError(f"{wav_dir}: audio folder not found")
    wavs = _natural_files(wav_dir, AUDIO_SUFFIXES)
    if not wavs:
        raise AudioError(f"{wav_dir}: no audio files (<stem>.wav or <stem>.flac)")
    stems = list(wavs)
    rating_files = _ratings_files(Path(ratings_dir) if ratings_dir else None, stems)
    if st.layout == "avec2016":
        bad = [d for d in rating_files if d not in DIMENSIONS]
        if bad:
            raise DataFormatError(
                f"{Path(ratings_dir) / bad[0]}: dimension {bad[0]!r} cannot be written in the "
                f"AVEC 2016 layout (expected {list(DIMENSIONS)}); use style sewa or mfcc"
            )
        if partitions is not None:
            raise ValueError(
                "the AVEC 2016 layout has no partitions file: name the recordings "
                "<partition>_<id> (train_1, dev_1, test_1) or use style sewa or mfcc"
            )
    part_map = csv_layout.read_partitions(partitions) if partitions is not None else None
    for stem in stems:
        if part_map is None:
            csv_layout.partition_of_stem(stem, path=wavs[stem])
        elif stem not in part_map:
            raise DataFormatError(
                f"{partitions}: recording {stem!r} ({wavs[stem]}) is not listed "
                "(expected a line '<stem>,<partition>' for every recording)"
            )

    # Pre-flight: every header and every rating file before the first extraction.
    say = progress or (lambda _line: None)
    traces: dict[tuple[str, str], pd.DataFrame] = {}
    for stem, path in wavs.items():
        duration, _, _ = probe_audio(
            path, sample_rate=sample_rate, resample=resample, mixdown=mixdown
        )
        _check_long_enough(path, duration, win)
        times = ex.frame_times(ex.num_frames(duration, period), period)
        for dim, files in rating_files.items():
            if stem in files:
                frame = read_trace(files[stem])
                resample_trace(frame, times, path=files[stem], audio_path=path, duration=duration)
                traces[dim, stem] = frame
    say(
        f"{len(wavs)} recordings in {wav_dir}, style {style} ({st.description}); "
        f"rating dimensions: {sorted(rating_files) or 'none'}"
    )

    # The corpus is written into a sibling temporary folder and swapped in at the end, so
    # ``out`` never mixes files of two runs (and a killed run leaves the old corpus intact).
    final = _check_out(Path(out))
    out = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    out.mkdir(parents=True)
    try:
        records = []
        total_audio = total_wall = 0.0
        for i, (stem, path) in enumerate(wavs.items(), start=1):
            t0 = time.perf_counter()
            audio = read_audio(path, sample_rate=sample_rate, resample=resample, mixdown=mixdown)
            times, streams = extract_recording(audio, st, frame_period=period, windows=win)
            t_extract = time.perf_counter() - t0
            _write_features(out, st, stem, times, streams, win)
            rec = {
                "stem": stem,
                "audio": str(path),
                "duration_s": round(audio.duration, 6),
                "source_rate": audio.source_rate,
                "resampled": audio.resampled,
                "source_channels": audio.source_channels,
                "frames": int(len(times)),
                "labels": {},
            }
            for dim in rating_files:
                if (dim, stem) not in traces:
                    continue
                frame = traces[dim, stem]
                values, beyond = resample_trace(
                    frame,
                    times,
                    path=rating_files[dim][stem],
                    audio_path=path,
                    duration=audio.duration,
                )
                raters = [str(c) for c in frame.columns[1:]]
                _write_labels(out, st, dim, stem, times, values, raters, gold)
                rec["labels"][dim] = {
                    "ratings": str(rating_files[dim][stem]),
                    "raters": raters,
                    "trace_beyond_audio_s": round(beyond, 6),
                }
            wall = time.perf_counter() - t0
            rec["extract_s"] = round(t_extract, 4)
            rec["wall_s"] = round(wall, 4)
            rec["x_real_time"] = round(audio.duration / max(t_extract, 1e-9), 2)
            records.append(rec)
            total_audio += audio.duration
            total_wall += wall
            note = f", resampled from {audio.source_rate} Hz" if audio.resampled else ""
            note += (
                f", {audio.source_channels} channels mixed down"
                if audio.source_channels > 1
                else ""
            )
            say(
                f"[{i}/{len(wavs)}] {path.name}: {audio.duration:.2f} s{note} -> "
                f"{len(times)} frames in {wall:.2f} s "
                f"({audio.duration / max(wall, 1e-9):.1f}x real time)"
            )
        if part_map is not None:
            lines = ["stem,partition"] + [f"{s},{part_map[s]}" for s in stems]
            write_text(out / "partitions.csv", "\n".join(lines) + "\n")

        elapsed = time.perf_counter() - t_start
        speed = total_audio / max(elapsed, 1e-9)
        manifest = {
            "style": style,
            "description": st.description,
            "layout": st.layout,
            "modality": st.modality,
            "num_features": st.num_features,
            "frame_period": period,
            "windows_s": win,
            "edge_rule": "frames before the first / after the last complete window's centre copy "
            "that window",
            "sample_rate": sample_rate,
            "resample": resample,
            "mixdown": mixdown,
            "gold": gold,
            "dimensions": sorted(rating_files),
            "opensmile": _version(),
            "load_corpus": (
                f"load_corpus({str(final)!r}, modality={st.modality!r}, dimension=<one of "
                f"{sorted(rating_files) or list(DIMENSIONS)}>, layout={st.layout!r})"
            ),
            "recordings": records,
            "total_audio_s": round(total_audio, 3),
            "total_wall_s": round(elapsed, 3),
            "x_real_time": round(speed, 2),
        }
        write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        swap_folder(out, final)
    finally:
        if out.exists():  # a failed run leaves no half-written corpus behind
            shutil.rmtree(out, ignore_errors=True)
    say(
        f"done: {len(wavs)} recordings, {total_audio:.1f} s of audio in {elapsed:.1f} s "
        f"({speed:.1f}x real time, style {style}); corpus at {final}"
    )
    return manifest


def _check_out(out: Path) -> Path:
    """``out`` may be new, empty, or a corpus an earlier run of this extractor wrote (it is
    then replaced whole); any other non-empty folder is refused, so nothing of the user's
    is deleted and no stale recording lies beside the new ones."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: --out exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ValueError(
            f"{out}: --out is a non-empty folder without {MANIFEST} (not a corpus written by "
            "ddat_jax.features); give a new or empty folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _write_features(out: Path, st: ex.Style, stem: str, times, streams, windows) -> None:
    for key, (names, values) in streams.items():
        frame = pd.DataFrame(values, columns=names)
        if st.layout == "avec2016":
            frame.insert(0, "frameTime", times)
            write_arff(
                out / f"features_{st.modality}" / key / f"{stem}.arff",
                frame,
                f"eGeMAPSv02_functionals_{windows[key]:g}s",
            )
        else:
            frame.insert(0, "time", times)
            csv_layout.write_table(out / "features" / st.modality / f"{stem}.csv", frame)


def _write_labels(out: Path, st: ex.Style, dim, stem, times, values, raters, gold) -> None:
    ratings = pd.DataFrame(values, columns=raters)
    ratings.insert(0, "time", times)
    g = None if gold == "none" else _gold(values, gold)
    if st.layout == "avec2016":
        if values.shape[1] > 1:
            write_ratings(out / "ratings_individual" / dim / f"{stem}.csv", ratings)
        if g is not None:
            write_gold_standard(
                out / "ratings_gold_standard" / dim / f"{stem}.arff",
                stem,
                times,
                g,
                dimension=dim,
            )
    else:
        if values.shape[1] > 1:
            csv_layout.write_table(out / "ratings" / dim / f"{stem}.csv", ratings)
        if g is not None:
            frame = pd.DataFrame({"time": times, dim: g.astype(np.float64)})
            csv_layout.write_table(out / "gold" / dim / f"{stem}.csv", frame)
