"""Feature streams from a signal through openSMILE, on the label frame grid.

Three styles (:data:`STYLES`), one per family of papers the project reproduces:

* ``avec2016`` — eGeMAPS v02 functionals (88) over a sliding window, as AVEC 2016 computed
  its audio features: window 4 s for arousal, 6 s for valence (tuned on dev by the
  organisers), hop = the label frame period (40 ms). The functionals are openSMILE's own
  (``cFunctionals`` in ``frameMode = fixed``), so every one of the 88 is exactly the eGeMAPS
  definition; only the windowing is set here.
* ``sewa`` — ComParE 2016 LLDs (65) summarised by their mean and coefficient of variation
  (std / mean with the mean's sign, as openSMILE's ``stddevNorm``; 0 where the mean is 0)
  over 6 s windows with a
  hop of the frame period (100 ms), as the SEWA / AVEC 2017 baseline: 130 features. These two
  functionals are computed here, in float64 from the LLDs (:func:`mean_cv`).
* ``mfcc`` — MFCC 1–12 + log energy (HTK ``MFCC_E``: 25 ms Hamming frames every 10 ms,
  pre-emphasis 0.97, 26 mel bands to 8 kHz, cepstral lifter 22) with Δ and ΔΔ (regression
  over ±2 frames): 39 values per frame, the per-frame input of CER-MTL's feature images. The
  10 ms frame nearest to each label frame's time is kept.

Time grid: a recording of ``D`` seconds has ``N = floor(D / P) + 1`` label frames at
``t_n = n·P`` (RECOLA: 300 s → 7501 frames). A window of length ``W`` starting at ``k·P``
is assigned to its centre ``k·P + W/2``; frames before the first complete window's centre
copy the first window, frames after the last one copy the last (AVEC 2016's edge rule: no
zero padding, every recording keeps its N frames). LLD frames are 10 ms apart; the window
start of openSMILE's LLD frames (a few ms) is below one label frame and ignored.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ddat_jax.atomic import write_text
from ddat_jax.features.audio import require_audio_extra

__all__ = [
    "LLD_HOP",
    "STYLES",
    "Style",
    "compare_lld",
    "egemaps_functionals",
    "egemaps_lld",
    "frame_times",
    "mean_cv",
    "mfcc_lld",
    "nearest_frame",
    "num_frames",
    "window_of_frame",
]

LLD_HOP = 0.01
"""Seconds between openSMILE LLD frames (all three feature sets)."""

_MFCC_WINDOW = 0.025


@dataclasses.dataclass(frozen=True)
class Style:
    """A feature style: what is extracted and in which corpus layout it is written.

    Attributes:
        name: ``avec2016``, ``sewa`` or ``mfcc``.
        layout: ``avec2016`` (ARFF, :mod:`ddat_jax.data.avec2016`) or ``csv``
            (:mod:`ddat_jax.data.csv_layout`).
        modality: the feature-set name the corpus is loaded with (``load_corpus(modality=)``).
        frame_period: default label frame period in seconds.
        windows: functional window in seconds per dimension (``"*"``: every dimension);
            empty for per-frame features.
        num_features: features per frame.
        description: one line for the manifest and ``--help``.
    """

    name: str
    layout: str
    modality: str
    frame_period: float
    windows: dict[str, float]
    num_features: int
    description: str


STYLES: dict[str, Style] = {
    "avec2016": Style(
        name="avec2016",
        layout="avec2016",
        modality="audio",
        frame_period=0.04,
        windows={"arousal": 4.0, "valence": 6.0},
        num_features=88,
        description="eGeMAPS v02 functionals over a centred sliding window (arousal 4 s, "
        "valence 6 s), hop = frame period; AVEC 2016 layout",
    ),
    "sewa": Style(
        name="sewa",
        layout="csv",
        modality="compare",
        frame_period=0.1,
        windows={"*": 6.0},
        num_features=130,
        description="ComParE 2016 LLDs: mean and coefficient of variation over a centred 6 s "
        "window, hop = frame period; CSV layout",
    ),
    "mfcc": Style(
        name="mfcc",
        layout="csv",
        modality="mfcc",
        frame_period=0.04,
        windows={},
        num_features=39,
        description="MFCC 1-12 + log energy + delta + delta-delta per frame (HTK MFCC_E_D_A, "
        "25 ms / 10 ms), sampled at the frame period; CSV layout",
    ),
}


# ------------------------------------------------------------------------------ time grid


def num_frames(duration: float, frame_period: float) -> int:
    """Label frames of a recording: ``floor(duration / frame_period) + 1`` (t = 0 included)."""
    return int(math.floor(duration / frame_period + 1e-9)) + 1


def frame_times(n: int, frame_period: float) -> np.ndarray:
    """``[n]`` frame times ``k·P`` in seconds, rounded to the nanosecond."""
    return np.round(np.arange(n) * frame_period, 9)


def window_of_frame(
    n_frames: int, n_windows: int, *, window_s: float, frame_period: float
) -> np.ndarray:
    """Window assigned to each label frame (centre rule with edge copies).

    Window k starts at ``k·P`` and is centred at ``k·P + W/2``; frame n takes the window
    centred on it, clamped to the complete windows ``0 … n_windows - 1``.

    Returns:
        ``[n_frames]`` int64 window indices.
    """
    if n_windows < 1:
        raise ValueError("no complete window")
    half = int(round(window_s / (2.0 * frame_period)))
    return np.clip(np.arange(n_frames) - half, 0, n_windows - 1)


def nearest_frame(n_frames: int, n_lld: int, *, frame_period: float) -> np.ndarray:
    """LLD frame (25 ms every 10 ms) whose centre is nearest to each label frame's time.

    Returns:
        ``[n_frames]`` int64 indices into the LLD frames, clamped to ``0 … n_lld - 1``.
    """
    t = np.arange(n_frames) * frame_period
    idx = np.floor((t - _MFCC_WINDOW / 2) / LLD_HOP + 0.5 + 1e-9).astype(np.int64)
    return np.clip(idx, 0, n_lld - 1)


def _steps(seconds: float, what: str) -> int:
    """``seconds`` as a whole number of 10 ms LLD frames."""
    steps = round(seconds / LLD_HOP)
    if steps < 1 or abs(steps * LLD_HOP - seconds) > 1e-6:
        raise ValueError(f"{what} must be a positive multiple of {LLD_HOP} s, got {seconds}")
    return int(steps)


# ------------------------------------------------------------------------------ openSMILE

_MFCC_CONF = r"""
;; MFCC 1-12 + log energy, delta, delta-delta (HTK MFCC_E_D_A) for ddat_jax.features.
[componentInstances:cComponentManager]
instance[dataMemory].type=cDataMemory
printLevelStats=0

\{\cm[source{?}:include external source]}

[componentInstances:cComponentManager]
instance[framer].type=cFramer
instance[energy].type=cEnergy
instance[preemph].type=cVectorPreemphasis
instance[window].type=cWindower
instance[fft].type=cTransformFFT
instance[fftmag].type=cFFTmagphase
instance[melspec].type=cMelspec
instance[mfcc].type=cMfcc
instance[static].type=cVectorConcat
instance[delta].type=cDeltaRegression
instance[accel].type=cDeltaRegression
instance[lld].type=cVectorConcat

[framer:cFramer]
reader.dmLevel=wave
writer.dmLevel=frames
frameSize=0.025
frameStep=0.010
frameCenterSpecial=left
noPostEOIprocessing=1

[energy:cEnergy]
reader.dmLevel=frames
writer.dmLevel=energy
nameAppend=energy
rms=0
log=1
htkcompatible=1

[preemph:cVectorPreemphasis]
reader.dmLevel=frames
writer.dmLevel=framespe
k=0.97
de=0

[window:cWindower]
reader.dmLevel=framespe
writer.dmLevel=winframes
winFunc=ham
gain=1.0

[fft:cTransformFFT]
reader.dmLevel=winframes
writer.dmLevel=fftc

[fftmag:cFFTmagphase]
reader.dmLevel=fftc
writer.dmLevel=fftmag

[melspec:cMelspec]
reader.dmLevel=fftmag
writer.dmLevel=melspec
copyInputName=1
processArrayFields=1
htkcompatible=1
usePower=0
nBands=26
lofreq=0
hifreq=8000
specScale=mel
inverse=0

[mfcc:cMfcc]
reader.dmLevel=melspec
writer.dmLevel=mfcc
copyInputName=0
processArrayFields=1
firstMfcc=1
lastMfcc=12
cepLifter=22.0
htkcompatible=1

[static:cVectorConcat]
reader.dmLevel=mfcc;energy
writer.dmLevel=static
includeSingleElementFields=1

[delta:cDeltaRegression]
reader.dmLevel=static
writer.dmLevel=delta
deltawin=2
blocksize=1

[accel:cDeltaRegression]
reader.dmLevel=delta
writer.dmLevel=accel
deltawin=2
blocksize=1

[lld:cVectorConcat]
reader.dmLevel=static;delta;accel
writer.dmLevel=lld
includeSingleElementFields=1

\{\cm[sink{?}:include external sink]}
"""


@functools.cache
def _config_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ddat_jax_opensmile_"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _frame_mode_conf(window_s: float, hop_s: float) -> str:
    """An openSMILE include that makes every ``cFunctionals`` slide a fixed window."""
    path = _config_dir() / f"frame_mode_{window_s:g}s_{hop_s:g}s.conf.inc"
    if not path.exists():
        write_text(
            path,
            f"frameMode = fixed\nframeSize = {window_s:.6f}\nframeStep = {hop_s:.6f}\n"
            "frameCenterSpecial = left\n",
        )
    return str(path)


@functools.cache
def _smile(kind: str, window_s: float = 0.0, hop_s: float = 0.0):
    opensmile, _ = require_audio_extra()
    fs, fl = opensmile.FeatureSet, opensmile.FeatureLevel
    if kind == "egemaps_func":
        return opensmile.Smile(
            fs.eGeMAPSv02,
            fl.Functionals,
            options={"frameModeFunctionalsConf": _frame_mode_conf(window_s, hop_s)},
        )
    if kind == "egemaps_lld":
        return opensmile.Smile(fs.eGeMAPSv02, fl.LowLevelDescriptors)
    if kind == "compare_lld":
        return opensmile.Smile(fs.ComParE_2016, fl.LowLevelDescriptors)
    if kind == "mfcc_lld":
        path = _config_dir() / "mfcc_e_d_a.conf"
        if not path.exists():
            write_text(path, _MFCC_CONF)
        return opensmile.Smile(str(path), "lld")
    raise ValueError(f"unknown openSMILE extractor {kind!r}")


def _run(smile, signal: np.ndarray, sample_rate: int) -> tuple[list[str], np.ndarray]:
    frame = smile.process_signal(np.asarray(signal, dtype=np.float32), sample_rate)
    return [str(c) for c in frame.columns], frame.to_numpy(np.float64)


def egemaps_functionals(
    signal: np.ndarray, sample_rate: int, *, window_s: float, hop_s: float
) -> tuple[list[str], np.ndarray]:
    """eGeMAPS v02 functionals over every complete window ``[k·hop, k·hop + window)``.

    Args:
        signal: ``[samples]`` mono float in [-1, 1].
        sample_rate: Hz.
        window_s: window length, a multiple of 10 ms.
        hop_s: hop, a multiple of 10 ms.

    Returns:
        The 88 feature names and ``[windows, 88]`` float64; window k covers the LLD frames
        ``k·hop/10 ms … k·hop/10 ms + window/10 ms - 1``. No rows if the signal is shorter
        than one window.
    """
    window_s = _steps(window_s, "the functional window") * LLD_HOP
    hop_s = _steps(hop_s, "the frame period") * LLD_HOP
    if signal.size / sample_rate < window_s:
        return [], np.zeros((0, STYLES["avec2016"].num_features))
    return _run(_smile("egemaps_func", round(window_s, 6), round(hop_s, 6)), signal, sample_rate)


def egemaps_lld(signal: np.ndarray, sample_rate: int) -> tuple[list[str], np.ndarray]:
    """The 25 eGeMAPS v02 LLDs (smoothed, as the functionals see them): ``[frames, 25]``."""
    return _run(_smile("egemaps_lld"), signal, sample_rate)


def compare_lld(signal: np.ndarray, sample_rate: int) -> tuple[list[str], np.ndarray]:
    """The 65 ComParE 2016 LLDs every 10 ms: names and ``[frames, 65]`` float64."""
    return _run(_smile("compare_lld"), signal, sample_rate)


def mfcc_lld(signal: np.ndarray, sample_rate: int) -> tuple[list[str], np.ndarray]:
    """MFCC 1-12, log energy, their Δ and ΔΔ every 10 ms: names and ``[frames, 39]``."""
    return _run(_smile("mfcc_lld"), signal, sample_rate)


# ------------------------------------------------------------------------- functionals


def mean_cv(lld, *, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and coefficient of variation of every LLD over sliding windows.

    .. math::
        \\mu_k = \\frac{1}{w} \\sum_{i=kh}^{kh+w-1} x_i, \\quad
        \\sigma_k = \\sqrt{\\frac{1}{w} \\sum_{i=kh}^{kh+w-1} (x_i - \\mu_k)^2}, \\quad
        \\mathrm{cv}_k = \\sigma_k / \\mu_k \\ (0 \\text{ where } \\mu_k = 0)

    (population std and a signed mean, as openSMILE's ``stddevNorm``: eGeMAPS'
    ``mfcc1_sma3_stddevNorm`` is negative on windows with a negative mean). Computed from
    float64 running sums of the LLDs centred on their recording mean, so long recordings keep
    full precision.

    Args:
        lld: ``[frames, F]``.
        window: window length in LLD frames.
        hop: hop in LLD frames.

    Returns:
        ``(mean, cv)``, each ``[windows, F]`` float64 with ``windows = (frames - window) //
        hop + 1`` (0 when there are fewer frames than one window).
    """
    x = np.asarray(lld, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"lld must be [frames, F], got shape {x.shape}")
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be >= 1, got {window} and {hop}")
    frames, width = x.shape
    if frames < window:
        empty = np.zeros((0, width))
        return empty, empty.copy()
    count = (frames - window) // hop + 1
    offset = x.mean(axis=0)
    centred = x - offset
    zeros = np.zeros((1, width))
    s1 = np.concatenate([zeros, np.cumsum(centred, axis=0)])
    s2 = np.concatenate([zeros, np.cumsum(centred * centred, axis=0)])
    starts = np.arange(count) * hop
    m = (s1[starts + window] - s1[starts]) / window
    var = np.maximum((s2[starts + window] - s2[starts]) / window - m * m, 0.0)
    mean = m + offset
    std = np.sqrt(var)
    # Windows of exact zeros (an unvoiced stretch of F0, silence) get an exact 0 mean and std
    # rather than the running sums' rounding residue, which would make their cv arbitrary.
    nonzero = np.concatenate([np.zeros((1, width), np.int64), np.cumsum(x != 0, axis=0)])
    silent = (nonzero[starts + window] - nonzero[starts]) == 0
    mean[silent] = 0.0
    std[silent] = 0.0
    cv = np.divide(std, mean, out=np.zeros_like(std), where=mean != 0)
    return mean, cv
