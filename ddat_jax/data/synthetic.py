"""The embedded default corpus: a RECOLA-shaped *simulation* written in the AVEC 2016 layout.

RECOLA is licensed and cannot ship with ddat_jax. So that ``python -m ddat_jax.main`` runs out
of the box, and so that every pipeline stage is exercised on realistic data with a known answer,
this module **simulates** a corpus with the shape of RECOLA as distributed for AVEC 2016 and
writes it in the real AVEC 2016 file layout (read by :func:`ddat_jax.data.load_corpus`; the
formats are described in :mod:`ddat_jax.data.avec2016`): ``features_<modality>/<dimension>/
<stem>.arff``, ``ratings_individual/<dimension>/<stem>.csv``, ``ratings_gold_standard/
<dimension>/<stem>.arff``, stems ``train_1 ... test_9``, 7501 frames of 40 ms (0 to 300 s).
Nothing in it comes from real recordings; all numbers it produces describe the simulation, not
RECOLA.

Generative model (per recording; every constant is in :data:`_MODEL`):

1. **Latent emotion.** Arousal and valence are smooth processes: the sum of a fast (time
   constant 2.5 s) and a slow (12 s) second-order low-pass Gaussian process, with
   recording-specific means (speaker effects) and scales, softly squashed into [-1, 1]. The two
   dimensions share a fraction of their innovations and their means are correlated, so they are
   weakly correlated (about 0.2-0.3).
2. **Ambiguity** a(t) in [0, 1] per dimension: a logistic function of a smooth process (mostly
   low, with bursts), raised in a random part (~35 %) of the hard segments (item 4). a(t), like
   the latent, lives on the *content* time axis.
3. **Raters.** Six raters (FM1 ... FF3), each with a fixed reaction delay per dimension (mean
   exactly 2.4 s, spread about +-1 s), a gain, a rater bias plus a per-recording offset, and
   smooth noise whose amplitude is ``sigma0 + sigma1 * a(t - delay)``: the std over raters
   (perception uncertainty, PU) tracks the ambiguity. The first 10-38 frames of every recording
   are constant (the slider has not moved yet). Ratings are clipped to [-1, 1] and written with
   6 decimals. The gold standard is the AVEC 2016 "CCC centring" of the six ratings as written
   (:func:`ddat_jax.data.corpus.gold_ccc_centring`, the function behind
   ``load_corpus(..., gold="ccc_centring")``): each rater's agreement is its mean CCC with the
   other raters, the gold trace is the raters' mean trace moved to the agreement-weighted mean
   level.
4. **Features** observe the *undelayed* latent. Per modality, a fixed random two-layer tanh map
   takes ``[g_a * arousal, g_v * valence, 4 smooth nuisance processes]`` to low-level
   descriptors (LLDs), plus a per-recording speaker offset, a fast low-rank nuisance, and frame
   noise whose amplitude grows with arousal. Emotion gains ``(g_a, g_v)``: audio strong for
   arousal and weak for valence, video_geometric the reverse, video_appearance in between.
   The features written are AVEC-style functionals of the LLDs: mean and standard deviation over
   a centred sliding window whose length depends on the modality and dimension (audio 4 s
   arousal / 6 s valence, appearance 6 / 4 s, geometric 4 / 8 s), with the first complete
   window's vector copied back to the earlier frames and the last one copied forward (as the
   AVEC 2016 package README describes: no zero padding, every file keeps all frames). Feature
   columns are the L LLD means followed by the L LLD stds.
5. **Hard segments** per modality (2-8 s each, about 15-25 % of the frames), each segment with
   its own random direction in descriptor space (scaled by the descriptors' spread), coded in
   the answer key as 1 *dropout*, 2 *shift*, 3 *corruption*:

   - audio: silence (dropout: a noise floor, no emotion), noise bursts such as laughter or
     overlapping speech (corruption: loud smooth noise over the speech) and channel changes
     (shift: an offset, emotion attenuated to 30 %);
   - video: no face (dropout, shared by both video sets: the LLDs are forced to **0** before the
     functionals, as the AVEC 2016 README describes, so fully occluded windows are all-zero
     feature vectors; no ``?`` values are written), occlusion (corruption, shared: the tracker
     returns garbage) and pose / lighting changes (shift, per feature set).

   They raise a model's reconstruction error (the all-zero no-face vectors excepted: a model
   trained on data that contains them reconstructs them well, as it would on the real data)
   and make the emotion harder to predict from that modality. Because the ambiguity is raised
   in only part of them, RE and PU carry partly independent information: on ``recola`` dev,
   the reconstruction error of a PCA fitted on train correlates with PU at r = 0.13 (audio),
   0.04 (appearance), 0.06 (geometric), while PU tracks a(t) at r = 0.83.

Unlike AVEC 2016, the test partition's labels are written too (so test CCC can be reported);
``withhold_test_labels=True`` leaves them out as AVEC does. The answer key (latent traces, rater
delays, gains and offsets, a(t), hard-segment codes) is written to ``answer_key/`` beside the
AVEC folders. Everything is written into a temporary sibling folder, ``MANIFEST.json`` (preset,
seed, generator version, every file with its size) last, and the folder is renamed into place
at the end, so a half-written corpus is never taken for a complete one.

Label files are written with :mod:`ddat_jax.data.avec2016` (``write_ratings``,
``write_gold_standard``). Feature ARFFs use the same header layout as
``avec2016.write_arff`` (a test checks the bytes) but a vectorised number formatter
(:func:`_format_rows_fast`, fixed point with 5 decimals, trailing zeros stripped): a ``recola``
corpus holds 3.6e8 feature values (2.8 GB of text), which the row-by-row writer takes minutes
to print.

Measured calibration (``tools/calibrate_corpus.py``, preset ``recola``, seed 0): ridge regression
on train-standardised features, labels shifted back 2.4 s (60 frames, last-value padding), alpha
picked on dev from {1e0 ... 1e5}, CCC with population statistics over the concatenated dev
partition:

    ================  =======  =======
    modality          arousal  valence
    ================  =======  =======
    audio              0.726    0.230
    video_appearance   0.465    0.348
    video_geometric    0.230    0.537
    ================  =======  =======

(Targets from RECOLA baselines: audio->arousal 0.5-0.8, geometric->valence 0.3-0.6,
audio->valence 0.1-0.4.) The ceiling, CCC(latent, gold standard shifted 2.4 s), is 0.95 for
arousal and 0.87 for valence on dev.

The ``small`` preset (for tests: 3 recordings of 100 s per partition, 24 / 24 / 48 features)
keeps every property, but one train -> dev split of it is too small to be stable; its tests
average over the leave-one-partition-out splits.

Generation time (one process, one core; shared 2-core machine, so noisy): ``recola`` takes
about 47 s of CPU (15 s simulating the 27 recordings, 31 s formatting and writing 2.8 GB of
text), 46 s wall when the machine was quiet and 100-115 s wall under a load of 6; ``small``
takes 1-1.5 s. Simulating ``recola`` in memory without writing takes about 15 s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import time
import uuid
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import signal

from ddat_jax import atomic
from ddat_jax.data.corpus import gold_ccc_centring

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "CorpusPreset",
    "SimulatedRecording",
    "default_corpus_root",
    "ensure_corpus",
    "generate_corpus",
    "load_answer_key",
    "simulate_recording",
    "recording_stems",
]

#: Bumped whenever the generated data would change; part of the cache path and the manifest.
#: 2: the gold standard is computed with ``corpus.gold_ccc_centring`` (MATLAB ``CCC_calc``
#: N-1 variances) from the ratings as written; version 1 used population variances on the
#: unrounded ratings (gold values differ by about 2e-6).
GENERATOR_VERSION = "2"

_FRAME_PERIOD = 0.04
_MODALITIES = ("audio", "video_appearance", "video_geometric")
_DIMENSIONS = ("arousal", "valence")
_RATERS = ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")
_PARTITIONS = ("train", "dev", "test")
#: Functional window (seconds) per modality and dimension, as in AVEC 2016 (its package README:
#: audio 4 / 6 s, video appearance 6 / 4 s, video geometric 4 / 8 s for arousal / valence).
_WINDOW_S = {
    "audio": {"arousal": 4.0, "valence": 6.0},
    "video_appearance": {"arousal": 6.0, "valence": 4.0},
    "video_geometric": {"arousal": 4.0, "valence": 8.0},
}
_RATING_DECIMALS = 6  # decimals of the ratings written
_GOLD_DECIMALS = 8  # decimals of the gold standard written
_ANSWER_KEY_DIR = "answer_key"
_MANIFEST = "MANIFEST.json"
#: Hard-segment codes in the answer key.
HARD_CLEAN, HARD_DROPOUT, HARD_SHIFT, HARD_CORRUPT = 0, 1, 2, 3
_HARD_NAMES = {"clean": 0, "dropout": 1, "shift": 2, "corrupt": 3}


@dataclasses.dataclass(frozen=True)
class CorpusPreset:
    """Sizes of a generated corpus.

    Attributes:
      name: preset name.
      n_recordings: recordings per partition (stems ``<partition>_1 ... _n``).
      n_frames: frames per recording at 40 ms (7501 = 0 ... 300 s in RECOLA).
      feature_sizes: number of features per modality (even: LLD means then LLD stds).
    """

    name: str
    n_recordings: int
    n_frames: int
    feature_sizes: tuple[tuple[str, int], ...]

    def n_features(self, modality: str) -> int:
        """Number of features of ``modality``."""
        return dict(self.feature_sizes)[modality]


PRESETS: dict[str, CorpusPreset] = {
    "recola": CorpusPreset(
        name="recola",
        n_recordings=9,
        n_frames=7501,
        feature_sizes=(("audio", 88), ("video_appearance", 168), ("video_geometric", 632)),
    ),
    # For tests: 1-2 s to generate, every property of the full preset kept. 100 s recordings;
    # smaller feature sets (the slow feature noise scales with the set size, so each modality's
    # attainable accuracy stays about that of `recola`).
    "small": CorpusPreset(
        name="small",
        n_recordings=3,
        n_frames=2501,
        feature_sizes=(("audio", 24), ("video_appearance", 24), ("video_geometric", 48)),
    ),
}


@dataclasses.dataclass(frozen=True)
class _ModelConstants:
    """Constants of the generative model (tuned so that the calibration targets hold)."""

    # Latent emotion.
    tau_fast_s: float = 2.5
    tau_slow_s: float = 12.0
    fast_weight: float = 0.75
    mean_sd: tuple[float, float] = (0.12, 0.10)  # recording means: arousal, valence
    mean_centre: tuple[float, float] = (0.0, 0.12)
    scale_range: tuple[tuple[float, float], tuple[float, float]] = ((0.12, 0.22), (0.10, 0.18))
    rho_innovation: float = 0.25
    rho_mean: float = 0.25
    # Ambiguity.
    tau_ambiguity_s: float = 3.0
    ambiguity_slope: float = 2.5
    ambiguity_threshold: float = 1.0
    ambiguity_boost: float = 0.6
    boost_probability: float = 0.35
    # Raters.
    delay_mean_s: float = 2.4
    delay_sd_s: float = 0.6
    delay_clip_s: tuple[float, float] = (1.3, 3.5)
    gain_range: tuple[float, float] = (0.75, 1.25)
    rater_bias_sd: float = 0.05
    rater_offset_sd: float = 0.05
    rater_noise_scale_range: tuple[float, float] = (0.75, 1.25)
    sigma0: float = 0.02
    sigma1: float = 0.35
    tau_rater_noise_s: float = 1.0
    constant_start: tuple[int, int] = (10, 38)
    # Features.
    emotion_gain: tuple[tuple[str, tuple[float, float]], ...] = (
        ("audio", (0.7, 0.25)),
        ("video_appearance", (0.4, 0.7)),
        ("video_geometric", (0.2, 1.3)),
    )
    latent_unit: float = 0.2  # latent divided by this before entering the map
    n_nuisance: int = 4
    nuisance_gain: float = 1.0
    tau_nuisance_s: tuple[float, float] = (4.0, 20.0)
    n_hidden: int = 32
    lld_bias_sd: float = 1.0
    lld_bias_centre: float = 2.0
    speaker_offset_sd: float = 0.5
    fast_rank: int = 6
    fast_gain: float = 0.7
    tau_fast_nuisance_s: float = 0.4
    frame_noise_sd: float = 1.5
    noise_arousal_slope: float = 0.3
    slow_noise_sd: float = 1.5  # per-LLD independent smooth noise, for 44 LLDs (scaled by sqrt)
    tau_slow_noise_s: float = 3.0
    # Hard segments (fraction of frames, segment length range in seconds).
    dropout_fraction: tuple[tuple[str, float], ...] = (("audio", 0.10), ("video", 0.04))
    corrupt_fraction: tuple[tuple[str, float], ...] = (("audio", 0.04), ("video", 0.05))
    shift_fraction: float = 0.05
    corrupt_sd: float = 1.5
    tau_corrupt_s: float = 0.3
    segment_s: tuple[float, float] = (2.0, 8.0)
    shift_emotion_gain: float = 0.3
    shift_offset_sd: float = 1.5
    silence_sd: float = 1.5
    silence_noise_sd: float = 0.3


_MODEL = _ModelConstants()


def recording_stems(preset: CorpusPreset | str, partitions=_PARTITIONS) -> list[str]:
    """Stems ``train_1 ... test_n`` of a preset, in partition order."""
    preset = _preset(preset)
    return [f"{p}_{i}" for p in partitions for i in range(1, preset.n_recordings + 1)]


def _preset(preset: CorpusPreset | str) -> CorpusPreset:
    if isinstance(preset, CorpusPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown corpus preset {preset!r}; valid: {sorted(PRESETS)}")
    return PRESETS[preset]


# ---------------------------------------------------------------------------------------------
# Random processes.


def _rng(seed: int, *stream: int) -> np.random.Generator:
    # One named stream per component, so adding a component never changes the others.
    return np.random.default_rng([int(seed), *[int(s) for s in stream]])


def _smooth(rng: np.random.Generator, shape: tuple[int, ...], n: int, tau_s) -> np.ndarray:
    """Unit-variance second-order low-pass Gaussian processes, shape ``[*shape, n]``.

    Two cascaded AR(1) stages with time constant ``tau_s`` (scalar or broadcastable to
    ``shape``), run over a burn-in so the output starts stationary.
    """
    tau = np.broadcast_to(np.asarray(tau_s, dtype=np.float64), shape)
    burn = int(np.ceil(5.0 * np.max(tau) / _FRAME_PERIOD)) if tau.size else 0
    white = rng.standard_normal((*shape, n + burn))
    out = np.empty_like(white)
    flat_tau = tau.reshape(-1)
    flat_in = white.reshape(-1, n + burn)
    flat_out = out.reshape(-1, n + burn)
    for value in np.unique(flat_tau):
        rows = flat_tau == value
        phi = float(np.exp(-_FRAME_PERIOD / max(value, 1e-6)))
        x = signal.lfilter([1.0 - phi], [1.0, -phi], flat_in[rows], axis=-1)
        flat_out[rows] = signal.lfilter([1.0 - phi], [1.0, -phi], x, axis=-1)
    out = out[..., burn:]
    sd = out.std(axis=-1, keepdims=True)
    return out / np.maximum(sd, 1e-12)


def _delay(x: np.ndarray, delay_frames: float) -> np.ndarray:
    """``x(t - delay)`` by linear interpolation, holding the first value before the start."""
    t = np.arange(x.shape[-1], dtype=np.float64)
    return np.interp(t - delay_frames, t, x)


def _segments(
    rng: np.random.Generator, n: int, fraction: float, occupied: np.ndarray
) -> list[tuple[int, int]]:
    """Random intervals ``[start, stop)`` covering about ``fraction`` of ``n`` frames.

    Intervals keep 1 s away from each other and from the ``occupied`` frames, which are
    updated in place.
    """
    lo, hi = (int(round(s / _FRAME_PERIOD)) for s in _MODEL.segment_s)
    hi = min(hi, max(lo + 1, n // 4))
    lo = min(lo, hi - 1)
    out: list[tuple[int, int]] = []
    target, covered = fraction * n, 0
    for _ in range(1000):
        if covered >= target:
            break
        length = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(0, max(1, n - length)))
        if occupied[max(0, start - 25) : start + length + 25].any():
            continue  # keep segments apart, so each is a distinct event
        occupied[start : start + length] = True
        covered += length
        out.append((start, start + length))
    return out


def _sliding_functionals(lld: np.ndarray, *windows: int) -> list[np.ndarray]:
    """AVEC-style mean and std functionals over a centred sliding window.

    Args:
      lld: ``[time, n_lld]`` low-level descriptors.
      *windows: window lengths in frames (<= time); the cumulative sums are shared.

    Returns:
      One ``[time, 2 * n_lld]`` float32 array per window: means then (population) stds. The
      window ``[i, i+window)`` is assigned to its centre frame ``i + window // 2``; the first
      complete window's vector is copied back to the earlier frames and the last one forward
      (as in AVEC 2016).
    """
    n, n_lld = lld.shape
    centre_shift = lld.mean(axis=0)
    x = lld - centre_shift  # centring keeps the cumulative sums well conditioned
    c1 = np.zeros((n + 1, n_lld))
    c2 = np.zeros((n + 1, n_lld))
    np.cumsum(x, axis=0, out=c1[1:])
    x *= x
    np.cumsum(x, axis=0, out=c2[1:])
    outs = []
    for window in windows:
        window = int(min(max(window, 1), n))
        mean = c1[window:] - c1[:-window]
        mean /= window
        var = c2[window:] - c2[:-window]
        var /= window
        var -= mean * mean
        np.maximum(var, 0.0, out=var)
        np.sqrt(var, out=var)
        mean += centre_shift
        out = np.empty((n, 2 * n_lld), dtype=np.float32)
        first, m = window // 2, mean.shape[0]
        out[first : first + m, :n_lld] = mean
        out[first : first + m, n_lld:] = var
        out[:first] = out[first]
        out[first + m :] = out[first + m - 1]
        outs.append(out)
    return outs


def _as_written(ratings: np.ndarray) -> np.ndarray:
    """The ratings as the ratings CSV holds them: float32, then ``_RATING_DECIMALS`` decimals."""
    return np.round(np.asarray(ratings, np.float32).astype(np.float64), _RATING_DECIMALS)


# ---------------------------------------------------------------------------------------------
# The simulation.


@dataclasses.dataclass(frozen=True)
class _Globals:
    """Corpus-wide parameters: rater traits and the modality maps."""

    delay_s: np.ndarray  # [dimension, rater]
    gain: np.ndarray  # [dimension, rater]
    bias: np.ndarray  # [dimension, rater]
    noise_scale: np.ndarray  # [dimension, rater]
    maps: dict  # modality -> dict of arrays


def _make_globals(preset: CorpusPreset, seed: int) -> _Globals:
    m = _MODEL
    rng = _rng(seed, 0)
    n_dim, n_r = len(_DIMENSIONS), len(_RATERS)
    delay = rng.standard_normal((n_dim, n_r)) * m.delay_sd_s
    delay = np.clip(delay - delay.mean(axis=1, keepdims=True) + m.delay_mean_s, *m.delay_clip_s)
    delay += m.delay_mean_s - delay.mean(axis=1, keepdims=True)  # mean exactly 2.4 s
    gain = rng.uniform(*m.gain_range, size=(n_dim, n_r))
    bias = rng.standard_normal((n_dim, n_r)) * m.rater_bias_sd
    noise_scale = rng.uniform(*m.rater_noise_scale_range, size=(n_dim, n_r))
    maps = {}
    for mi, modality in enumerate(_MODALITIES):
        mrng = _rng(seed, 1, mi)
        n_lld = preset.n_features(modality) // 2
        n_in = 2 + m.n_nuisance
        maps[modality] = {
            "w1": mrng.standard_normal((n_in, m.n_hidden)) / np.sqrt(n_in) * 1.5,
            "b1": mrng.standard_normal(m.n_hidden) * 0.5,
            "w2": mrng.standard_normal((m.n_hidden, n_lld)) / np.sqrt(m.n_hidden) * 2.0,
            "bias": m.lld_bias_centre + mrng.standard_normal(n_lld) * m.lld_bias_sd,
            "fast": mrng.standard_normal((m.fast_rank, n_lld)) / np.sqrt(m.fast_rank),
            "noise": np.exp(mrng.uniform(-0.5, 0.5, size=n_lld)),
        }
    return _Globals(delay, gain, bias, noise_scale, maps)


@dataclasses.dataclass
class SimulatedRecording:
    """One simulated recording, in memory.

    Attributes:
      stem: ``<partition>_<i>``.
      time: ``[time]`` frame times in seconds.
      latent: dimension -> ``[time]`` latent emotion (content time axis, undelayed).
      ambiguity: dimension -> ``[time]`` a(t) in [0, 1] (content time axis).
      ratings: dimension -> ``[n_raters, time]`` individual ratings (rater order ``FM1 ... FF3``).
      gold: dimension -> ``[time]`` gold standard (CCC centring).
      hard: modality -> ``[time]`` uint8 codes (0 clean, 1 dropout: silence / no face, 2 shift,
        3 corruption: noise burst / occlusion).
      rater_offset: dimension -> ``[n_raters]`` this recording's rater offsets.
      constant_start: number of constant leading rating frames.
      features: modality -> dimension -> ``[time, n_features]`` float32 functionals.
    """

    stem: str
    time: np.ndarray
    latent: dict
    ambiguity: dict
    ratings: dict
    gold: dict
    hard: dict
    rater_offset: dict
    constant_start: int
    features: dict


def _frame_times(n: int) -> np.ndarray:
    return np.round(np.arange(n) * _FRAME_PERIOD, 2)


def simulate_recording(
    preset: CorpusPreset | str,
    seed: int,
    stem: str,
    *,
    modalities=_MODALITIES,
    _globals: _Globals | None = None,
) -> SimulatedRecording:
    """Simulates one recording in memory (no files).

    Args:
      preset: preset or its name.
      seed: corpus seed.
      stem: ``<partition>_<i>``, e.g. ``"dev_3"``.
      modalities: which feature sets to compute (all by default).
      _globals: corpus-wide parameters (internal reuse across recordings).

    Returns:
      The recording, deterministic in ``(preset, seed, stem)``.
    """
    preset = _preset(preset)
    m = _MODEL
    g = _globals if _globals is not None else _make_globals(preset, seed)
    if stem not in recording_stems(preset):
        raise ValueError(
            f"unknown stem {stem!r} for preset {preset.name!r}; valid: "
            f"{', '.join(recording_stems(preset))}"
        )
    partition, index = stem.rsplit("_", 1)
    p_idx, r_idx = _PARTITIONS.index(partition), int(index)
    n = preset.n_frames
    s = (2, p_idx, r_idx)  # this recording's stream prefix

    # 1. Latent emotion.
    rng = _rng(seed, *s, 0)
    fast = _smooth(rng, (2,), n, m.tau_fast_s)
    slow = _smooth(rng, (2,), n, m.tau_slow_s)
    w = m.fast_weight
    z = w * fast + np.sqrt(1.0 - w * w) * slow
    rho = m.rho_innovation
    z[1] = rho * z[0] + np.sqrt(1.0 - rho * rho) * z[1]
    mu = rng.standard_normal(2)
    mu[1] = m.rho_mean * mu[0] + np.sqrt(1.0 - m.rho_mean**2) * mu[1]
    mu = np.asarray(m.mean_centre) + mu * np.asarray(m.mean_sd)
    scale = np.array([rng.uniform(*r) for r in m.scale_range])
    latent_arr = np.tanh(mu[:, None] + scale[:, None] * z)  # soft squashing into (-1, 1)

    # Hard segments. Audio: silence (dropout), noise bursts (corrupt), channel shifts. Video:
    # no face (dropout) and occlusion (corrupt), shared by both video sets; per-set shifts.
    rng = _rng(seed, *s, 1)
    hard = {mod: np.zeros(n, dtype=np.uint8) for mod in _MODALITIES}
    events: list[tuple[int, int]] = []
    groups = {"audio": ("audio",), "video": ("video_appearance", "video_geometric")}
    for group, mods in groups.items():
        occupied = np.zeros(n, dtype=bool)
        for code, fraction in (
            (HARD_DROPOUT, dict(m.dropout_fraction)[group]),
            (HARD_CORRUPT, dict(m.corrupt_fraction)[group]),
        ):
            for a, b in _segments(rng, n, fraction, occupied):
                for mod in mods:
                    hard[mod][a:b] = code
                events.append((a, b))
        for mod in mods:
            for a, b in _segments(rng, n, m.shift_fraction, occupied.copy() | (hard[mod] > 0)):
                hard[mod][a:b] = HARD_SHIFT
                events.append((a, b))

    # 2. Ambiguity: own bursts + a boost in part of the hard segments.
    rng = _rng(seed, *s, 2)
    za = _smooth(rng, (2,), n, m.tau_ambiguity_s)
    amb = 1.0 / (1.0 + np.exp(-m.ambiguity_slope * (za - m.ambiguity_threshold)))
    boost = np.zeros(n)
    ramp = int(round(1.0 / _FRAME_PERIOD))
    for a, b in events:
        if rng.uniform() < m.boost_probability:
            bump = np.zeros(n)
            bump[a:b] = 1.0
            kernel = np.ones(ramp) / ramp
            boost = np.maximum(boost, np.convolve(bump, kernel, mode="same"))
    amb = np.clip(amb + m.ambiguity_boost * boost[None, :], 0.0, 1.0)

    # 3. Raters.
    rng = _rng(seed, *s, 3)
    n_r = len(_RATERS)
    noise = _smooth(rng, (2, n_r), n, m.tau_rater_noise_s)
    offsets = rng.standard_normal((2, n_r)) * m.rater_offset_sd
    n0 = int(rng.integers(m.constant_start[0], m.constant_start[1] + 1))
    ratings, gold = {}, {}
    for d, dim in enumerate(_DIMENSIONS):
        r = np.empty((n_r, n))
        for k in range(n_r):
            lag = g.delay_s[d, k] / _FRAME_PERIOD
            seen = _delay(latent_arr[d], lag)
            amp = g.noise_scale[d, k] * (m.sigma0 + m.sigma1 * _delay(amb[d], lag))
            r[k] = g.bias[d, k] + offsets[d, k] + g.gain[d, k] * seen + amp * noise[d, k]
        r[:, :n0] = r[:, n0 : n0 + 1]
        # The gold standard of the ratings as written, so that it equals
        # load_corpus(..., gold="ccc_centring") on the files (up to its 8 written decimals).
        r = _as_written(np.clip(r, -1.0, 1.0))
        ratings[dim] = r
        gold[dim] = gold_ccc_centring(r.T)

    # 4. Features.
    features = {}
    for mod in modalities:
        lld = _lld(g, preset, seed, s, mod, latent_arr, hard[mod], n)
        wins = [int(round(_WINDOW_S[mod][dim] / _FRAME_PERIOD)) for dim in _DIMENSIONS]
        features[mod] = dict(zip(_DIMENSIONS, _sliding_functionals(lld, *wins), strict=True))

    return SimulatedRecording(
        stem=stem,
        time=_frame_times(n),
        latent={dim: latent_arr[d].astype(np.float32) for d, dim in enumerate(_DIMENSIONS)},
        ambiguity={dim: amb[d].astype(np.float32) for d, dim in enumerate(_DIMENSIONS)},
        ratings={dim: v.astype(np.float32) for dim, v in ratings.items()},
        gold={dim: v.astype(np.float32) for dim, v in gold.items()},
        hard=hard,
        rater_offset={dim: offsets[d] for d, dim in enumerate(_DIMENSIONS)},
        constant_start=n0,
        features=features,
    )


def _lld(g: _Globals, preset, seed, s, modality, latent, hard, n) -> np.ndarray:
    """Frame-level descriptors ``[time, n_lld]`` of one modality."""
    m = _MODEL
    mp = g.maps[modality]
    mi = _MODALITIES.index(modality)
    n_lld = mp["w2"].shape[1]
    rng = _rng(seed, *s, 10 + mi)
    gain_a, gain_v = dict(m.emotion_gain)[modality]
    shift = hard == HARD_SHIFT
    egain = np.where(shift, m.shift_emotion_gain, 1.0)
    taus = np.linspace(*m.tau_nuisance_s, m.n_nuisance)
    nuis = _smooth(rng, (m.n_nuisance,), n, taus) * m.nuisance_gain
    u = np.concatenate(
        [
            (gain_a * egain * latent[0] / m.latent_unit)[None],
            (gain_v * egain * latent[1] / m.latent_unit)[None],
            nuis,
        ]
    ).T
    lld = np.tanh(u @ mp["w1"] + mp["b1"]) @ mp["w2"] + mp["bias"]
    lld += rng.standard_normal(n_lld) * m.speaker_offset_sd
    lld += (_smooth(rng, (m.fast_rank,), n, m.tau_fast_nuisance_s).T * m.fast_gain) @ mp["fast"]
    # Full-rank slow noise cannot be projected out by a linear model; scaling it with sqrt(n_lld)
    # keeps the attainable accuracy independent of the feature-set size.
    slow_sd = m.slow_noise_sd * np.sqrt(n_lld / 44.0)
    lld += _smooth(rng, (n_lld,), n, m.tau_slow_noise_s).T * (slow_sd * mp["noise"])
    ref = lld.std(axis=0)  # spread of the descriptors without the frame noise
    amp = m.frame_noise_sd * np.exp(gain_a * m.noise_arousal_slope * latent[0] / m.latent_unit)
    lld += rng.standard_normal((n, n_lld)) * mp["noise"] * amp[:, None]
    # Hard segments, each with its own random direction (so that no single direction of the
    # training data explains them), scaled by the descriptors' slow spread.
    for code in (HARD_SHIFT, HARD_CORRUPT, HARD_DROPOUT):
        run = (hard == code).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], run, [0]])))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            direction = rng.standard_normal(n_lld) * ref
            if code == HARD_SHIFT:  # channel / pose / lighting change
                lld[a:b] += m.shift_offset_sd * direction
                continue
            jitter = _smooth(rng, (n_lld,), b - a, m.tau_corrupt_s).T * ref
            if code == HARD_CORRUPT and modality == "audio":  # laughter, overlap, coughs
                lld[a:b] += m.corrupt_sd * (direction + jitter)
            elif code == HARD_CORRUPT:  # occlusion: the tracker returns garbage
                lld[a:b] = mp["bias"] + m.corrupt_sd * (direction + jitter)
            elif modality == "audio":  # silence: a noise floor, no emotion
                lld[a:b] = mp["bias"] + m.silence_sd * direction + m.silence_noise_sd * jitter
            else:  # no face: AVEC forces the descriptors to 0 before the functionals
                lld[a:b] = 0.0
    return lld


# ---------------------------------------------------------------------------------------------
# Writing.

#: Decimals of the feature values written (features are O(1-10); 1e-5 is far below any effect).
_FEATURE_DECIMALS = 5


class _Workspace:
    """Reusable scratch arrays: fresh multi-megabyte arrays cost page faults (system time) on
    every call, more than the arithmetic itself."""

    def __init__(self):
        self._arrays: dict = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self._arrays.get((name, np.dtype(dtype).str))
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self._arrays[name, np.dtype(dtype).str] = buf
        return buf[:size].reshape(shape)


def _format_rows_fast(values: np.ndarray, decimals, work: _Workspace | None = None) -> bytes:
    """Comma-separated CRLF rows of ``values`` in shortest fixed-point form, vectorised.

    Equivalent to ``"%.{d}f"`` per value with trailing zeros (and a bare ``.``) removed, and no
    sign on zero: ``0``, ``0.04``, ``300``, ``-1.25``. ``avec2016.write_arff`` formats row by
    row in Python; a full ``recola`` corpus has 3.6e8 feature values, which that takes minutes
    to print, while this digit arithmetic on ``[chars, rows, columns]`` planes is several
    times faster.

    Args:
      values: ``[rows, columns]`` finite values with ``|v| < 2**31``.
      decimals: decimals per column (scalar or ``[columns]``), at most 9.
      work: scratch arrays to reuse across calls.

    Returns:
      The data block as bytes; every row ends with ``\\r\\n``.
    """
    work = work if work is not None else _Workspace()
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("the fast feature writer takes finite values only")
    shape = values.shape
    dec = np.broadcast_to(np.asarray(decimals, dtype=np.int64), (shape[1],))
    dmax = int(dec.max())
    q = work.get("q", shape, np.float64)
    np.abs(values, out=q)
    q *= 10.0**dec
    if (dec != dmax).any():  # round at each column's own precision first
        np.rint(q, out=q)
        q *= 10.0 ** (dmax - dec)
    np.rint(q, out=q)
    if q.max(initial=0.0) >= 2.0**31 * 10.0**dmax or dmax > 9:
        raise ValueError("value too large for the fast feature writer")
    is_zero = work.get("is_zero", shape, bool)
    negative = work.get("negative", shape, bool)
    np.less(values, 0, out=negative)
    np.greater(q, 0, out=is_zero)
    negative &= is_zero
    x = work.get("x", shape, np.int32)
    rest = work.get("rest", shape, np.int32)
    tmp = work.get("tmp", shape, np.int32)
    int_part = work.get("int_part", shape, np.int32)
    frac = work.get("frac", shape, np.int32)
    q2 = work.get("q2", shape, np.float64)
    np.floor_divide(q, 10.0**dmax, out=q2)
    int_part[...] = q2
    q2 *= 10.0**dmax
    np.subtract(q, q2, out=q2)
    frac[...] = q2
    n_int = max(1, len(str(int(int_part.max(initial=0)))))
    width = 1 + n_int + 1 + dmax + 2  # sign, integer digits, '.', fraction, separator(s)
    chars = work.get("chars", (width, *shape), np.uint8)
    keep = work.get("keep", (width, *shape), bool)
    chars[0] = ord("-")
    keep[0] = negative

    def digit_of(src, dst_quotient, out_char):
        np.floor_divide(src, 10, out=dst_quotient)
        np.multiply(dst_quotient, 10, out=tmp)
        np.subtract(src, tmp, out=tmp)
        np.add(tmp, 48, out=out_char, casting="unsafe")
        return tmp

    x[...] = int_part
    for i in range(n_int):  # integer digits, right to left; no leading zeros
        digit_of(x, rest, chars[n_int - i])
        np.greater_equal(int_part, 10**i if i else 0, out=keep[n_int - i])
        x, rest = rest, x
    x[...] = frac
    trailing = work.get("trailing", shape, bool)
    trailing[...] = True
    for j in range(dmax):  # fraction digits, right to left; no trailing zeros
        pos = n_int + 1 + dmax - j
        digit = digit_of(x, rest, chars[pos])
        np.equal(digit, 0, out=is_zero)
        trailing &= is_zero
        np.logical_not(trailing, out=keep[pos])
        x, rest = rest, x
    chars[n_int + 1] = ord(".")
    np.logical_not(trailing, out=keep[n_int + 1])
    chars[-2] = ord(",")
    keep[-2] = True
    keep[-1] = False
    chars[-2, :, -1] = ord("\r")
    chars[-1, :, -1] = ord("\n")
    keep[-1, :, -1] = True
    return chars.transpose(1, 2, 0)[keep.transpose(1, 2, 0)].tobytes()


def _feature_header(relation: str, names) -> bytes:
    # The layout of avec2016.write_arff (checked by a test): relation, blank, attributes, two
    # blanks, @data, blank.
    lines = [f"@relation {relation}", ""]
    lines += [f"@attribute {name} numeric" for name in names]
    lines += ["", "", "@data", ""]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _feature_names(modality: str, n_features: int) -> list[str]:
    n_lld = n_features // 2
    return [
        f"{modality}_lld{i + 1:03d}_{stat}" for stat in ("amean", "stddev") for i in range(n_lld)
    ]


def _write_feature_arff(
    path: pathlib.Path, times, values, modality: str, dimension: str, work=None
) -> None:
    """Writes one feature ARFF: ``frameTime`` then the functionals (no class attribute)."""
    names = ["frameTime", *_feature_names(modality, values.shape[1])]
    table = np.concatenate([np.asarray(times, np.float64)[:, None], values], axis=1)
    decimals = np.full(table.shape[1], _FEATURE_DECIMALS)
    decimals[0] = 2
    header = _feature_header(f"ddat_jax_synthetic_{modality}_{dimension}", names)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(_format_rows_fast(table, decimals, work))


def _write_recording(
    root: pathlib.Path, rec: SimulatedRecording, write_labels: bool, work: _Workspace | None = None
) -> None:
    from ddat_jax.data import avec2016

    for modality, per_dim in rec.features.items():
        for dim, values in per_dim.items():
            path = root / f"features_{modality}" / dim / f"{rec.stem}.arff"
            _write_feature_arff(path, rec.time, values, modality, dim, work)
    if write_labels:
        for dim in _DIMENSIONS:
            frame = pd.DataFrame({"time": rec.time.astype(np.float64)})
            for k, rater in enumerate(_RATERS):
                frame[rater] = _as_written(rec.ratings[dim][k])
            avec2016.write_ratings(root / "ratings_individual" / dim / f"{rec.stem}.csv", frame)
            avec2016.write_gold_standard(
                root / "ratings_gold_standard" / dim / f"{rec.stem}.arff",
                rec.stem,
                rec.time,
                np.round(rec.gold[dim].astype(np.float64), _GOLD_DECIMALS),
                dimension=dim,
            )
    key = {"time": rec.time, "constant_start": np.int64(rec.constant_start)}
    for dim in _DIMENSIONS:
        key[f"latent_{dim}"] = rec.latent[dim]
        key[f"ambiguity_{dim}"] = rec.ambiguity[dim]
        key[f"rater_offset_{dim}"] = rec.rater_offset[dim]
    for modality in _MODALITIES:
        key[f"hard_{modality}"] = rec.hard[modality]
    (root / _ANSWER_KEY_DIR).mkdir(parents=True, exist_ok=True)
    np.savez(root / _ANSWER_KEY_DIR / f"{rec.stem}.npz", **key)


def _manifest_of(root: pathlib.Path, preset: CorpusPreset, seed: int, withhold: bool) -> dict:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != _MANIFEST)
    return {
        "generator": "ddat_jax.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "preset": preset.name,
        "preset_sizes": dataclasses.asdict(preset),
        "seed": int(seed),
        "withhold_test_labels": bool(withhold),
        "simulation": "synthetic RECOLA-shaped corpus; not real data",
        "files": [
            {"path": p.relative_to(root).as_posix(), "size": p.stat().st_size} for p in files
        ],
    }


def _read_manifest(root: pathlib.Path) -> dict | None:
    try:
        return json.loads((pathlib.Path(root) / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(root: pathlib.Path, preset: str, seed: int, withhold: bool) -> tuple[bool, str]:
    """Whether ``root`` holds a complete, current corpus; the reason when not."""
    manifest = _read_manifest(root)
    if manifest is None:
        return False, "no readable MANIFEST.json"
    want = {
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "seed": int(seed),
        "withhold_test_labels": bool(withhold),
    }
    for key, value in want.items():
        if manifest.get(key) != value:
            return False, f"manifest {key}={manifest.get(key)!r}, want {value!r}"
    if not manifest.get("files"):
        return False, "manifest lists no files"
    for entry in manifest["files"]:
        path = pathlib.Path(root) / entry["path"]
        try:
            size = path.stat().st_size
        except OSError:
            return False, f"missing file {entry['path']}"
        if size != entry["size"]:
            return False, f"size of {entry['path']} is {size}, manifest says {entry['size']}"
    return True, "complete"


def generate_corpus(
    root: str | os.PathLike,
    *,
    preset: CorpusPreset | str = "recola",
    seed: int = 0,
    withhold_test_labels: bool = False,
) -> pathlib.Path:
    """Generates the simulated corpus in the AVEC 2016 layout under ``root``.

    Writes ``features_<modality>/<dimension>/<stem>.arff``,
    ``ratings_individual/<dimension>/<stem>.csv``, ``ratings_gold_standard/<dimension>/
    <stem>.arff`` (test stems only when ``withhold_test_labels`` is False), the answer key in
    ``answer_key/`` (one ``<stem>.npz`` per recording plus ``corpus.json``) and, last,
    ``MANIFEST.json``. Everything is written into a temporary sibling folder that is renamed to
    ``root`` at the end, so ``root`` is either absent, the previous corpus, or complete.

    Args:
      root: target folder; must not exist, be empty, or hold a corpus made by this module
        (which is replaced).
      preset: ``"recola"``, ``"small"`` or a :class:`CorpusPreset`.
      seed: the seed; equal seeds give byte-identical corpora.
      withhold_test_labels: leave the test partition's ratings and gold standard out, as AVEC
        2016 does.

    Returns:
      ``root`` as a path.

    Raises:
      FileExistsError: ``root`` is a non-empty folder without this module's manifest.
    """
    preset = _preset(preset)
    root = pathlib.Path(root).expanduser().absolute()
    if root.exists():
        if not root.is_dir():
            raise FileExistsError(f"{root} exists and is not a folder")
        old = _read_manifest(root)
        ours = old is not None and old.get("generator") == "ddat_jax.data.synthetic"
        if any(root.iterdir()) and not ours:
            raise FileExistsError(
                f"{root} is not empty and holds no corpus made by ddat_jax.data.synthetic; "
                "refusing to overwrite it"
            )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        g = _make_globals(preset, seed)
        work = _Workspace()
        for stem in recording_stems(preset):
            rec = simulate_recording(preset, seed, stem, _globals=g)
            labels = not (withhold_test_labels and stem.startswith("test_"))
            _write_recording(tmp, rec, labels, work)
        del work
        corpus = {
            "description": "Simulated RECOLA-shaped corpus (ddat_jax.data.synthetic); not real.",
            "preset": preset.name,
            "seed": int(seed),
            "generator_version": GENERATOR_VERSION,
            "frame_period": _FRAME_PERIOD,
            "raters": list(_RATERS),
            "dimensions": list(_DIMENSIONS),
            "modalities": list(_MODALITIES),
            "stems": recording_stems(preset),
            "labels_withheld": [s for s in recording_stems(preset, ("test",))]
            if withhold_test_labels
            else [],
            "hard_codes": _HARD_NAMES,
            "window_s": _WINDOW_S,
            "model": dataclasses.asdict(_MODEL),
        }
        for name, arr in (
            ("rater_delay_s", g.delay_s),
            ("rater_gain", g.gain),
            ("rater_bias", g.bias),
            ("rater_noise_scale", g.noise_scale),
        ):
            corpus[name] = {
                dim: {r: float(arr[d, k]) for k, r in enumerate(_RATERS)}
                for d, dim in enumerate(_DIMENSIONS)
            }
        (tmp / _ANSWER_KEY_DIR / "corpus.json").write_text(json.dumps(corpus, indent=1))
        manifest = _manifest_of(tmp, preset, seed, withhold_test_labels)
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        atomic.swap_folder(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def cache_base() -> pathlib.Path:
    """The project's cache folder: ``$DDAT_JAX_CACHE`` if set, else
    ``$XDG_CACHE_HOME/ddat_jax``, else ``~/.cache/ddat_jax`` (embedded corpora, compiled
    programs)."""
    base = os.environ.get("DDAT_JAX_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = os.path.join(xdg, "ddat_jax") if xdg else os.path.join("~", ".cache", "ddat_jax")
    return pathlib.Path(base).expanduser()


def default_corpus_root(preset: str | CorpusPreset = "recola", seed: int = 0) -> pathlib.Path:
    """Cache folder of a generated corpus.

    ``$DDAT_JAX_CACHE`` if set, else ``$XDG_CACHE_HOME/ddat_jax``, else ``~/.cache/ddat_jax``;
    then ``corpus-v<GENERATOR_VERSION>/<preset>-seed<seed>``.
    """
    name = _preset(preset).name
    return cache_base() / f"corpus-v{GENERATOR_VERSION}" / f"{name}-seed{seed}"


def ensure_corpus(
    preset: str | CorpusPreset = "recola",
    seed: int = 0,
    *,
    root: str | os.PathLike | None = None,
    withhold_test_labels: bool = False,
    progress: Callable[[str], None] | None = print,
) -> pathlib.Path:
    """Returns a complete generated corpus, generating it only when needed.

    Reuses ``root`` (default :func:`default_corpus_root`) when its manifest matches the
    generator version, preset, seed and label switch and every listed file is present with its
    size; otherwise (re)generates it.

    Args:
      preset: preset name.
      seed: the seed.
      root: where the corpus lives; the user's cache by default.
      withhold_test_labels: see :func:`generate_corpus`.
      progress: called with one-line messages (``None``: silent).

    Returns:
      The corpus folder.
    """
    say = progress or (lambda _msg: None)
    root = pathlib.Path(root) if root is not None else default_corpus_root(preset, seed)
    ok, why = _is_complete(root, _preset(preset).name, seed, withhold_test_labels)
    if ok:
        say(f"embedded corpus: reusing {root} (simulated, preset {preset!r}, seed {seed})")
        return root
    say(f"embedded corpus: generating simulated preset {preset!r} (seed {seed}) in {root} ({why})")
    t0 = time.perf_counter()
    generate_corpus(root, preset=preset, seed=seed, withhold_test_labels=withhold_test_labels)
    say(f"embedded corpus: done in {time.perf_counter() - t0:.1f} s")
    return root


def load_answer_key(root: str | os.PathLike) -> dict:
    """Loads the answer key of a generated corpus.

    Args:
      root: the corpus folder.

    Returns:
      A dict with ``preset``, ``seed``, ``generator_version``, ``frame_period``, ``raters``,
      ``dimensions``, ``modalities``, ``stems``, ``labels_withheld``, ``window_s``, ``model``;
      rater traits ``rater_delay_s`` / ``rater_gain`` / ``rater_bias`` / ``rater_noise_scale``
      as ``{dimension: {rater: value}}`` (delays in seconds); and per recording, keyed
      ``[stem]``: ``time`` ``[T]``, ``latent[stem][dimension]`` ``[T]`` (undelayed),
      ``ambiguity[stem][dimension]`` ``[T]`` in [0, 1] (content time axis, like the latent),
      ``hard[stem][modality]`` ``[T]`` bool (degraded frames), ``hard_kind[stem][modality]``
      ``[T]`` uint8 (0 clean, 1 dropout: silence / no face, 2 shift, 3 corruption),
      ``rater_offset[stem][dimension]`` ``{rater: value}`` and ``constant_start[stem]`` (number
      of constant leading rating frames).
    """
    folder = pathlib.Path(root) / _ANSWER_KEY_DIR
    key = json.loads((folder / "corpus.json").read_text())
    for name in ("time", "latent", "ambiguity", "hard", "hard_kind", "rater_offset"):
        key[name] = {}
    key["constant_start"] = {}
    for stem in key["stems"]:
        with np.load(folder / f"{stem}.npz") as z:
            key["time"][stem] = z["time"]
            key["latent"][stem] = {d: z[f"latent_{d}"] for d in key["dimensions"]}
            key["ambiguity"][stem] = {d: z[f"ambiguity_{d}"] for d in key["dimensions"]}
            key["hard_kind"][stem] = {m: z[f"hard_{m}"] for m in key["modalities"]}
            key["hard"][stem] = {m: z[f"hard_{m}"] > 0 for m in key["modalities"]}
            key["rater_offset"][stem] = {
                d: dict(zip(key["raters"], z[f"rater_offset_{d}"].tolist(), strict=True))
                for d in key["dimensions"]
            }
            key["constant_start"][stem] = int(z["constant_start"])
    return key
