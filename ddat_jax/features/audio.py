"""Reading WAV files for feature extraction, with one clear error per bad input.

Policy (stated once, applied to every file):

* **Sample rate**: every file is analysed at ``sample_rate`` (16 kHz by default, the rate the
  openSMILE feature sets were designed for). A file at another rate is resampled with a
  polyphase filter (:func:`scipy.signal.resample_poly`) and the resampling is recorded in the
  manifest; with ``resample=False`` a file at another rate is an error instead. Rates below
  8 kHz are always an error (the feature sets' filter banks reach 8 kHz).
* **Channels**: mono only, unless ``mixdown=True`` (the channels are averaged); a multi-channel
  file is otherwise an error naming the file and its channel count.
* **Empty or unreadable** files, and files with non-finite samples, are errors.

Every error is an :class:`AudioError` whose message starts with the file's path.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["MIN_SAMPLE_RATE", "Audio", "AudioError", "read_audio", "require_audio_extra"]

MIN_SAMPLE_RATE = 8000
_INT16_MAX = 32767 / 32768


class AudioError(ValueError):
    """An audio file cannot be used; the message names the file and says what to do."""


def require_audio_extra():
    """Imports and returns ``(opensmile, soundfile)``, or explains how to install them.

    Raises:
        ImportError: the optional ``audio`` extra is not installed.
    """
    try:
        import opensmile
        import soundfile
    except ImportError as err:
        raise ImportError(
            f"ddat_jax.features needs the optional audio extra (import failed: {err}): "
            "pip install 'ddat_jax[audio]'  (installs opensmile and soundfile)"
        ) from err
    return opensmile, soundfile


@dataclasses.dataclass(frozen=True)
class Audio:
    """A mono signal ready for extraction.

    Attributes:
        path: the source file.
        signal: ``[samples]`` float32 in [-1, 1], at ``sample_rate``.
        sample_rate: the analysis rate in Hz.
        source_rate: the file's own rate in Hz.
        source_channels: the file's channel count (1 unless mixed down).
    """

    path: Path
    signal: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.signal.size / self.sample_rate

    @property
    def resampled(self) -> bool:
        return self.source_rate != self.sample_rate


def read_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int = 16000,
    resample: bool = True,
    mixdown: bool = False,
) -> Audio:
    """Reads one audio file (any format libsndfile reads: WAV, FLAC, OGG, …).

    Args:
        path: the file.
        sample_rate: the analysis rate in Hz.
        resample: resample files at another rate (True) or reject them (False).
        mixdown: average the channels of a multi-channel file (otherwise an error).

    Returns:
        The :class:`Audio`.

    Raises:
        AudioError: unreadable, empty, multi-channel (without ``mixdown``), rate below
            8 kHz, rate other than ``sample_rate`` (with ``resample=False``), non-finite
            samples.
    """
    _, soundfile = require_audio_extra()
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises its own error type per failure
        raise AudioError(
            f"{path}: cannot read the audio ({err}); expected a WAV/FLAC/OGG file "
            "readable by libsndfile"
        ) from None
    n, channels = data.shape
    if n == 0:
        raise AudioError(f"{path}: the file holds no audio samples (empty recording)")
    if channels > 1 and not mixdown:
        raise AudioError(
            f"{path}: {channels} channels; expected mono audio (pass --mixdown / "
            "mixdown=True to average the channels)"
        )
    signal = data.mean(axis=1) if channels > 1 else data[:, 0]
    if not np.isfinite(signal).all():
        i = int(np.flatnonzero(~np.isfinite(signal))[0])
        raise AudioError(f"{path}: non-finite sample (NaN or inf) at sample {i} ({i / rate:.3f} s)")
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(
            f"{path}: sample rate {rate} Hz is below {MIN_SAMPLE_RATE} Hz; the feature sets "
            "need speech-band audio"
        )
    if rate != sample_rate:
        if not resample:
            raise AudioError(
                f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz (resampling is "
                "off; drop --no-resample to resample it)"
            )
        signal = _resample(signal, rate, sample_rate)
    # openSMILE takes 16-bit samples (x * 32768): +1.0 would wrap around to -32768, and the
    # resampling filter can overshoot full scale a little.
    signal = np.clip(signal, -1.0, _INT16_MAX)
    return Audio(
        path=path,
        signal=np.ascontiguousarray(signal, dtype=np.float32),
        sample_rate=int(sample_rate),
        source_rate=int(rate),
        source_channels=int(channels),
    )


def _resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(target))
    out = resample_poly(signal.astype(np.float64), target // g, rate // g)
    return out.astype(np.float32)
