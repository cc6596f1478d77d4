"""The embedded ``sewa`` corpus: a SEWA-shaped *simulation* written in the CSV layout.

The German video-chat subset of SEWA (64 subjects, about 3 minutes each, six raters,
100 ms frames) is licensed and cannot ship. This module **simulates** a corpus of its
shape and difficulties and writes it in the project's generic CSV layout
(:mod:`ddat_jax.data.csv_layout`), so that layout is exercised on a realistic tree:

    <root>/features/audio/<stem>.csv     time + 130 columns (65 LLDs x mean, coeff. of variation)
    <root>/features/video/<stem>.csv     time + 98 columns (49 facial landmarks, x and y)
    <root>/ratings/<dimension>/<stem>.csv  time + six rater columns R1 ... R6
    <root>/partitions.csv                stem,partition (Train_DE_01,train ...)
    <root>/answer_key/                   corpus.json + one <stem>.npz per recording
    <root>/MANIFEST.json                 written last

No gold-standard file is written: the gold standard is computed from the ratings by the
corpus layer (``load_corpus(..., gold="ewe")``). Nothing in it comes from real recordings;
every number it produces describes the simulation, not SEWA.

Generative model (per recording; every constant is in :class:`SewaModel`):

1. **Latent emotion**, arousal and valence: a fast (2.5 s) and a slow (12 s) smooth
   Gaussian process, recording-specific means and scales, squashed by ``tanh``; weakly
   correlated dimensions.
2. **Ambiguity** a(t) in [0, 1] per dimension: a logistic function of a smooth process
   (mostly low, with bursts), raised in part of the silent stretches.
3. **Raters** R1 ... R6: a reaction delay per rater and dimension (mean exactly 4 s,
   spread about +-0.7 s), gain, bias, per-recording offset and smooth noise of amplitude
   ``sigma0 + sigma1 * a(t - delay)`` (so the std over raters tracks the ambiguity);
   clipped to [-1, 1], 6 decimals.
4. **Audio**: the subject is silent in about a third of the frames (stretches of 2-10 s:
   listening to the partner). While speaking, 65 low-level descriptors are a random tanh
   map of ``[g_a * arousal, g_v * valence, nuisances]`` plus speaker offset and frame
   noise; while silent they are a noise floor plus the partner's (emotion-free) speech.
   Written: mean and coefficient of variation over a centred 6 s window (100 ms hop) = 130.
   Speakers differ: each recording perturbs the emotion rows of the map
   (``expression_jitter``), so a model must generalise across speakers.
5. **Video**: 49 landmarks (x, y), normalised: a neutral face, a per-recording identity
   offset, head pose (smooth nuisance), an emotion displacement (a random smooth map of
   both dimensions, perturbed per recording like audio's), smooth per-landmark noise and
   tracking jitter. Video informs both dimensions more than audio.
   About 2 % of the frames (short stretches) have no face: written as empty fields (NaN).

Answer key: the latent traces, a(t), the speaking mask, the no-face mask, and each
rater's delay, gain and bias.

Measured calibration (:func:`calibrate`; ridge on train-standardised features, labels
shifted 4 s, alpha picked on dev, CCC over the concatenated dev partition, preset
``sewa``, seed 0):

    ========  =======  =======
    modality  arousal  valence
    ========  =======  =======
    audio      0.304    0.323
    video      0.416    0.517
    both       0.518    0.585
    ========  =======  =======

(Targets: audio arousal 0.2-0.4, video arousal 0.35-0.55, audio valence 0.15-0.35, video
valence 0.4-0.6; "both" = audio and video features in one regression.) The ridge baseline's
best shift (:func:`ddat_jax.data.delay.estimate_delay`, audio + video) is 4.1 s for both
dimensions against the raters' mean delay of 4.0 s (audio alone: 3.4 s arousal, 4.3 s
valence; video alone 4.1 / 4.0 s). Frames: 57,074 / 21,862 / 27,961 (paper: 55,072 /
22,307 / 27,597). Generation takes about 60-70 s wall on a loaded 2-core machine (25 s CPU).

The ``sewa_small`` preset (4/3/3 recordings of about 50 s, 20 audio and
14 video features) is for tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import time
import uuid

import numpy as np
import pandas as pd
from scipy import signal

from ddat_jax import atomic
from ddat_jax.data import synthetic

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "SewaModel",
    "SewaPreset",
    "default_root",
    "ensure_corpus",
    "generate_corpus",
    "load_answer_key",
    "simulate",
]

GENERATOR_VERSION = "2"
FRAME_PERIOD = 0.1
DIMENSIONS = ("arousal", "valence")
RATERS = ("R1", "R2", "R3", "R4", "R5", "R6")
PARTITIONS = ("train", "dev", "test")
_STEM_PREFIX = {"train": "Train_DE", "dev": "Devel_DE", "test": "Test_DE"}
_MANIFEST = "MANIFEST.json"


@dataclasses.dataclass(frozen=True)
class SewaPreset:
    """Sizes of a generated corpus.

    Attributes:
      name: preset name.
      n_recordings: recordings per partition (train, dev, test).
      mean_frames: mean length per partition in 100 ms frames (lengths vary +-25 %).
      n_lld: audio low-level descriptors (features: 2 x n_lld).
      n_landmarks: facial landmarks (features: 2 x n_landmarks).
    """

    name: str
    n_recordings: tuple[int, int, int]
    mean_frames: tuple[int, int, int]
    n_lld: int = 65
    n_landmarks: int = 49


PRESETS: dict[str, SewaPreset] = {
    # The paper's totals: 55,072 / 22,307 / 27,597 frames over 34 / 14 / 16 recordings.
    "sewa": SewaPreset("sewa", (34, 14, 16), (1620, 1593, 1725)),
    "sewa_small": SewaPreset("sewa_small", (4, 3, 3), (500, 500, 500), n_lld=10, n_landmarks=7),
}


@dataclasses.dataclass(frozen=True)
class SewaModel:
    """Constants of the generative model (only the calibration ranges were tuned)."""

    tau_fast_s: float = 2.5
    tau_slow_s: float = 12.0
    fast_weight: float = 0.7
    mean_sd: tuple[float, float] = (0.12, 0.12)
    scale_range: tuple[float, float] = (0.12, 0.22)
    rho: float = 0.25
    tau_ambiguity_s: float = 3.0
    ambiguity_slope: float = 2.5
    ambiguity_threshold: float = 1.0
    silence_ambiguity: float = 0.35  # a(t) raised by this in part of the silent stretches
    delay_mean_s: float = 4.0
    delay_sd_s: float = 0.7
    delay_clip_s: tuple[float, float] = (2.5, 5.5)
    gain_range: tuple[float, float] = (0.7, 1.3)
    bias_sd: float = 0.05
    offset_sd: float = 0.05
    sigma0: float = 0.03
    sigma1: float = 0.35
    tau_rater_noise_s: float = 1.0
    silence_fraction: float = 0.35
    silence_s: tuple[float, float] = (2.0, 10.0)
    audio_gain: tuple[float, float] = (0.45, 0.5)  # (arousal, valence) into the LLD map
    audio_noise_sd: float = 2.0
    audio_slow_noise_sd: float = 3.0
    video_gain: tuple[float, float] = (0.5, 0.85)
    video_noise_sd: float = 1.0
    video_pose_sd: float = 1.0
    video_slow_noise_sd: float = 3.5
    noface_fraction: float = 0.02
    expression_jitter: float = 2.0  # per-recording change of the emotion maps (speakers differ)
    window_s: float = 6.0


MODEL = SewaModel()


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *[int(s) for s in stream]])


def _smooth(rng: np.random.Generator, k: int, n: int, tau_s: float) -> np.ndarray:
    """``[k, n]`` unit-variance second-order low-pass Gaussian processes (100 ms frames)."""
    phi = float(np.exp(-FRAME_PERIOD / max(tau_s, 1e-6)))
    burn = int(np.ceil(5 * tau_s / FRAME_PERIOD))
    x = rng.standard_normal((k, n + burn))
    for _ in range(2):
        x = signal.lfilter([1.0 - phi], [1.0, -phi], x, axis=-1)
    x = x[:, burn:]
    return x / np.maximum(x.std(axis=-1, keepdims=True), 1e-12)


def _delay(x: np.ndarray, frames: float) -> np.ndarray:
    """``x(t - frames)`` by linear interpolation (first value held before the start)."""
    t = np.arange(x.shape[-1], dtype=np.float64)
    return np.interp(t - frames, t, x)


def _stretches(rng, n: int, fraction: float, length_s: tuple[float, float]) -> np.ndarray:
    """A bool ``[n]`` mask of random stretches covering about ``fraction`` of the frames."""
    out = np.zeros(n, dtype=bool)
    lo, hi = (max(1, int(round(s / FRAME_PERIOD))) for s in length_s)
    for _ in range(10_000):
        if out.mean() >= fraction:
            break
        length = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(0, max(1, n - length)))
        out[start : start + length] = True
    return out


def _window_functionals(lld: np.ndarray, window: int) -> np.ndarray:
    """Mean and coefficient of variation over a centred window: ``[T, L] -> [T, 2L]``.

    The coefficient of variation is ``std / |mean|`` with the denominator floored at 0.1.
    Edge frames take the nearest complete window (no zero padding).
    """
    n = lld.shape[0]
    window = int(min(max(window, 1), n))
    c1 = np.vstack([np.zeros((1, lld.shape[1])), np.cumsum(lld, axis=0)])
    c2 = np.vstack([np.zeros((1, lld.shape[1])), np.cumsum(lld * lld, axis=0)])
    mean = (c1[window:] - c1[:-window]) / window
    var = np.maximum((c2[window:] - c2[:-window]) / window - mean * mean, 0.0)
    cv = np.sqrt(var) / np.maximum(np.abs(mean), 0.1)
    first = window // 2
    idx = np.clip(np.arange(n) - first, 0, mean.shape[0] - 1)
    return np.concatenate([mean[idx], cv[idx]], axis=1)


@dataclasses.dataclass(frozen=True)
class _Globals:
    delay_s: np.ndarray  # [dimension, rater]
    gain: np.ndarray
    bias: np.ndarray
    audio: dict
    video: dict


def _globals(preset: SewaPreset, seed: int) -> _Globals:
    m = MODEL
    rng = _rng(seed, 0)
    d = rng.standard_normal((2, len(RATERS))) * m.delay_sd_s
    d = np.clip(d - d.mean(axis=1, keepdims=True) + m.delay_mean_s, *m.delay_clip_s)
    d += m.delay_mean_s - d.mean(axis=1, keepdims=True)  # mean exactly 4 s
    gain = rng.uniform(*m.gain_range, size=(2, len(RATERS)))
    bias = rng.standard_normal((2, len(RATERS))) * m.bias_sd
    n_in, hidden = 2 + 4, 24
    audio = {
        "w1": rng.standard_normal((n_in, hidden)) / np.sqrt(n_in) * 1.5,
        "b1": rng.standard_normal(hidden) * 0.5,
        "w2": rng.standard_normal((hidden, preset.n_lld)) / np.sqrt(hidden) * 2.0,
        "floor": rng.standard_normal((4, preset.n_lld)),
        "bias": 3.0 + rng.standard_normal(preset.n_lld),
    }
    k = 2 * preset.n_landmarks
    video = {
        "neutral": rng.standard_normal(k),
        "emotion": rng.standard_normal((4, k)) / 2.0,  # arousal, valence, and their squares
        "pose": rng.standard_normal((3, k)),
    }
    return _Globals(d, gain, bias, audio, video)


def stems(preset: SewaPreset) -> dict[str, list[str]]:
    """Partition -> stems (``Train_DE_01`` ...), SEWA's naming."""
    return {
        p: [f"{_STEM_PREFIX[p]}_{i:02d}" for i in range(1, n + 1)]
        for p, n in zip(PARTITIONS, preset.n_recordings, strict=True)
    }


def _latent(rng, n: int) -> np.ndarray:
    m = MODEL
    z = m.fast_weight * _smooth(rng, 2, n, m.tau_fast_s)
    z += np.sqrt(1 - m.fast_weight**2) * _smooth(rng, 2, n, m.tau_slow_s)
    z[1] = m.rho * z[0] + np.sqrt(1 - m.rho**2) * z[1]
    mu = rng.standard_normal(2) * np.asarray(m.mean_sd)
    scale = rng.uniform(*m.scale_range, size=2)
    return np.tanh(mu[:, None] + scale[:, None] * z)


def _ratings(rng, g: _Globals, latent, amb, n: int) -> np.ndarray:
    """``[2, n, K]`` ratings (dimension, frame, rater)."""
    m = MODEL
    noise = _smooth(rng, 2 * len(RATERS), n, m.tau_rater_noise_s).reshape(2, len(RATERS), n)
    offsets = rng.standard_normal((2, len(RATERS))) * m.offset_sd
    out = np.empty((2, n, len(RATERS)))
    for d in range(2):
        for k in range(len(RATERS)):
            lag = g.delay_s[d, k] / FRAME_PERIOD
            amp = m.sigma0 + m.sigma1 * _delay(amb[d], lag)
            seen = _delay(latent[d], lag)
            r = g.bias[d, k] + offsets[d, k] + g.gain[d, k] * seen + amp * noise[d, k]
            out[d, :, k] = r
    return np.round(np.clip(out, -1.0, 1.0).astype(np.float32).astype(np.float64), 6)


def _audio(rng, g: _Globals, preset, latent, speaking, n: int) -> np.ndarray:
    m, a = MODEL, g.audio
    nuis = _smooth(rng, 4, n, 6.0)
    x = np.concatenate([latent * np.asarray(m.audio_gain)[:, None] / 0.2, nuis], axis=0).T  # [n, 6]
    w1 = a["w1"].copy()
    w1[:2] += m.expression_jitter * rng.standard_normal(w1[:2].shape) * np.abs(a["w1"][:2]).mean()
    lld = np.tanh(x @ w1 + a["b1"]) @ a["w2"]
    lld += rng.standard_normal(preset.n_lld) * 0.5  # speaker offset
    lld += m.audio_slow_noise_sd * _smooth(rng, preset.n_lld, n, 2.0).T
    partner = _smooth(rng, 4, n, 1.0).T @ a["floor"]
    lld = np.where(speaking[:, None], lld, 0.3 * lld.mean(0) + partner)
    lld += m.audio_noise_sd * rng.standard_normal(lld.shape)
    lld += a["bias"]
    return _window_functionals(lld, int(round(m.window_s / FRAME_PERIOD)))


def _video(rng, g: _Globals, preset, latent, n: int) -> np.ndarray:
    m, v = MODEL, g.video
    k = 2 * preset.n_landmarks
    e = latent * np.asarray(m.video_gain)[:, None] / 0.2
    emap = v["emotion"] + m.expression_jitter * rng.standard_normal(v["emotion"].shape) / 2.0
    feats = np.concatenate([e, e**2 / 3.0], axis=0).T @ emap  # [n, k]
    pose = m.video_pose_sd * _smooth(rng, 3, n, 4.0).T @ v["pose"]
    identity = rng.standard_normal(k) * 0.7
    slow = m.video_slow_noise_sd * _smooth(rng, k, n, 1.5).T
    x = v["neutral"] + identity + feats + pose + slow
    x += m.video_noise_sd * rng.standard_normal((n, k))
    # Normalisation as a landmark tracker's: centred and scaled per frame.
    x = x - x.mean(axis=1, keepdims=True)
    x = x / np.maximum(x.std(axis=1, keepdims=True), 1e-6)
    return x


@dataclasses.dataclass
class SimulatedRecording:
    """One recording in memory: features, ratings and the answer key."""

    stem: str
    partition: str
    audio: np.ndarray  # [T, 2 n_lld]
    video: np.ndarray  # [T, 2 n_landmarks], NaN where no face
    ratings: np.ndarray  # [2, T, 6]
    latent: np.ndarray  # [2, T]
    ambiguity: np.ndarray  # [2, T]
    speaking: np.ndarray  # [T] bool
    face: np.ndarray  # [T] bool


def simulate(preset: SewaPreset | str, seed: int = 0):
    """Simulates every recording in memory: ``(globals, [SimulatedRecording])``."""
    preset = _preset(preset)
    m, g = MODEL, _globals(preset, seed)
    recs = []
    for pi, (part, names) in enumerate(stems(preset).items()):
        for ri, stem in enumerate(names):
            rng = _rng(seed, 1, pi, ri)
            mean = preset.mean_frames[pi]
            n = int(rng.integers(int(0.75 * mean), int(1.25 * mean) + 1))
            latent = _latent(rng, n)
            speaking = ~_stretches(rng, n, m.silence_fraction, m.silence_s)
            za = _smooth(rng, 2, n, m.tau_ambiguity_s)
            amb = 1 / (1 + np.exp(-m.ambiguity_slope * (za - m.ambiguity_threshold)))
            boost = (~speaking) & (_smooth(rng, 1, n, 5.0)[0] > 0.5)
            amb = np.clip(amb + m.silence_ambiguity * boost[None], 0.0, 1.0)
            ratings = _ratings(rng, g, latent, amb, n)
            audio = _audio(rng, g, preset, latent, speaking, n)
            video = _video(rng, g, preset, latent, n)
            face = ~_stretches(rng, n, m.noface_fraction, (0.3, 2.0))
            video[~face] = np.nan
            recs.append(
                SimulatedRecording(stem, part, audio, video, ratings, latent, amb, speaking, face)
            )
    return g, recs


def _preset(preset: SewaPreset | str) -> SewaPreset:
    if isinstance(preset, SewaPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown sewa preset {preset!r}; valid: {sorted(PRESETS)}")
    return PRESETS[preset]


def _write_csv(path: pathlib.Path, values: np.ndarray, columns: list[str]) -> None:
    n = values.shape[0]
    frame = pd.DataFrame(values, columns=columns)
    frame.insert(0, "time", np.round(np.arange(n) * FRAME_PERIOD, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g", na_rep="", lineterminator="\n")


def _write_recording(root: pathlib.Path, rec: SimulatedRecording, preset: SewaPreset) -> None:
    lld = [f"lld{i + 1}" for i in range(preset.n_lld)]
    audio_cols = [f"{c}_mean" for c in lld] + [f"{c}_cv" for c in lld]
    video_cols = [f"{a}{i + 1}" for i in range(preset.n_landmarks) for a in ("x", "y")]
    _write_csv(root / "features" / "audio" / f"{rec.stem}.csv", rec.audio, audio_cols)
    _write_csv(root / "features" / "video" / f"{rec.stem}.csv", rec.video, video_cols)
    for d, dim in enumerate(DIMENSIONS):
        _write_csv(root / "ratings" / dim / f"{rec.stem}.csv", rec.ratings[d], list(RATERS))
    np.savez_compressed(
        root / "answer_key" / f"{rec.stem}.npz",
        latent=rec.latent.astype(np.float32),
        ambiguity=rec.ambiguity.astype(np.float32),
        speaking=rec.speaking,
        face=rec.face,
    )


def generate_corpus(root: str | os.PathLike, *, preset: str = "sewa", seed: int = 0):
    """Writes the simulated corpus to ``root`` (atomically: a temporary sibling folder,
    ``MANIFEST.json`` last, then swapped into place). Returns ``root`` as a path.

    Raises:
      FileExistsError: ``root`` is a non-empty folder without this generator's manifest.
    """
    preset_ = _preset(preset)
    root = pathlib.Path(root).expanduser().absolute()
    if root.is_dir() and any(root.iterdir()) and _manifest(root) is None:
        raise FileExistsError(f"{root} is not empty and holds no corpus of {__name__}")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (tmp / "answer_key").mkdir(parents=True)
    try:
        g, recs = simulate(preset_, seed)
        for rec in recs:
            _write_recording(tmp, rec, preset_)
        lines = ["stem,partition"] + [f"{r.stem},{r.partition}" for r in recs]
        (tmp / "partitions.csv").write_text("\n".join(lines) + "\n")
        key = {
            "description": f"Simulated SEWA-shaped corpus ({__name__}); not real data.",
            "preset": preset_.name,
            "seed": int(seed),
            "frame_period": FRAME_PERIOD,
            "raters": list(RATERS),
            "dimensions": list(DIMENSIONS),
            "stems": {p: [r.stem for r in recs if r.partition == p] for p in PARTITIONS},
            "model": dataclasses.asdict(MODEL),
        }
        for name, arr in (("rater_delay_s", g.delay_s), ("rater_gain", g.gain)):
            key[name] = {
                dim: dict(zip(RATERS, map(float, arr[d]), strict=True))
                for d, dim in enumerate(DIMENSIONS)
            }
        key["mean_delay_s"] = {dim: float(g.delay_s[d].mean()) for d, dim in enumerate(DIMENSIONS)}
        (tmp / "answer_key" / "corpus.json").write_text(json.dumps(key, indent=1))
        manifest = {
            "generator": __name__,
            "version": GENERATOR_VERSION,
            "preset": preset_.name,
            "seed": int(seed),
            "files": sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()),
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        atomic.swap_folder(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _manifest(root: pathlib.Path) -> dict | None:
    try:
        man = json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return man if man.get("generator") == __name__ else None


def default_root(preset: str = "sewa", seed: int = 0) -> pathlib.Path:
    """Cache folder: ``$DDAT_JAX_CACHE`` (or ``$XDG_CACHE_HOME/ddat_jax``, or
    ``~/.cache/ddat_jax``) ``/sewa-v<version>/<preset>-seed<seed>``."""
    name = _preset(preset).name
    return synthetic.cache_base() / f"sewa-v{GENERATOR_VERSION}" / f"{name}-seed{seed}"


def ensure_corpus(preset: str = "sewa", seed: int = 0, *, root=None, progress=print):
    """The cached corpus of ``(preset, seed)``, generated when absent or incomplete."""
    root = pathlib.Path(root) if root is not None else default_root(preset, seed)
    man = _manifest(root)
    ok = (
        man is not None
        and (man["version"], man["preset"], man["seed"]) == (GENERATOR_VERSION, preset, seed)
        and all((root / f).is_file() for f in man["files"])
    )
    if ok:
        return root
    if progress:
        progress(f"embedded corpus: generating simulated SEWA-like {preset!r} in {root}")
    t0 = time.perf_counter()
    generate_corpus(root, preset=preset, seed=seed)
    if progress:
        progress(f"embedded corpus: done in {time.perf_counter() - t0:.1f} s")
    return root


def load_answer_key(root: str | os.PathLike) -> dict:
    """``corpus.json`` plus, per stem, ``latent``/``ambiguity`` ``{dimension: [T]}`` and
    ``speaking``/``face`` ``[T]`` bool."""
    folder = pathlib.Path(root) / "answer_key"
    key = json.loads((folder / "corpus.json").read_text())
    for name in ("latent", "ambiguity", "speaking", "face"):
        key[name] = {}
    for stem in (s for p in PARTITIONS for s in key["stems"][p]):
        with np.load(folder / f"{stem}.npz") as z:
            for name in ("latent", "ambiguity"):
                key[name][stem] = dict(zip(DIMENSIONS, z[name], strict=True))
            key["speaking"][stem], key["face"][stem] = z["speaking"], z["face"]
    return key
