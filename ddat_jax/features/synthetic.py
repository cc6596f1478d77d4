"""Synthetic voiced recordings with rater traces that follow known controls.

Test data the project makes itself for the audio path: per recording, two slow control
contours in [-0.8, 0.8] — an arousal proxy ``a(t)`` and a valence proxy ``v(t)`` — drive a
harmonic tone (10 harmonics) with

* pitch ``f0(t) = 140 · 2^(a(t)/2)`` Hz (higher when aroused),
* level ``20·a(t) - 20`` dBFS (louder when aroused),
* spectral tilt: harmonic h has amplitude ``h^-(2 - v(t))`` (brighter when positive),

chopped into "utterances" by silence stretches (0.3–1.2 s, about a quarter of the time) and
over a faint noise floor. Each rater's trace is the control delayed by 1.5–2.5 s (raters
lag), plus an offset and smooth noise, clipped to [-1, 1], sampled every 40 ms — so a model
on the extracted features should predict higher arousal for louder, higher-pitched stretches.

``python -m ddat_jax.features.synthetic --out DIR`` writes ``DIR/wav/<stem>.wav`` and
``DIR/ratings/{arousal,valence}/<stem>.csv`` (``time,R1,R2,R3``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax.data import csv_layout
from ddat_jax.features.audio import require_audio_extra

__all__ = ["control", "voiced_signal", "write_recordings"]


def control(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """A slow random contour in [-0.8, 0.8]: a sum of 3 sinusoids of 6–30 s periods."""
    out = np.zeros_like(times)
    for _ in range(3):
        period = rng.uniform(6.0, 30.0)
        out += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * times / period + rng.uniform(0, 6.3))
    span = np.max(np.abs(out)) or 1.0
    return 0.8 * out / span


def voiced_signal(
    rng: np.random.Generator,
    arousal: np.ndarray,
    valence: np.ndarray,
    *,
    sample_rate: int,
    harmonics: int = 10,
) -> np.ndarray:
    """The harmonic signal driven by per-sample controls ``[samples]`` -> ``[samples]``."""
    n = arousal.size
    f0 = 140.0 * 2.0 ** (arousal / 2.0)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    tilt = 2.0 - valence
    tone = np.zeros(n)
    for h in range(1, harmonics + 1):
        audible = h * f0 < 0.45 * sample_rate
        tone += audible * h ** (-tilt) * np.sin(h * phase)
    level = 10.0 ** ((20.0 * arousal - 20.0) / 20.0)
    gate = np.ones(n)
    t = 0.0
    duration = n / sample_rate
    while True:
        t += rng.uniform(1.5, 4.0)  # an utterance
        if t >= duration:
            break
        stop = min(t + rng.uniform(0.3, 1.2), duration)
        gate[int(t * sample_rate) : int(stop * sample_rate)] = 0.0
        t = stop
    # 10 ms ramps so the gate does not click.
    ramp = int(0.01 * sample_rate)
    gate = np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    signal = 0.25 * level * gate * tone + 1e-3 * rng.standard_normal(n)
    return np.clip(signal, -0.99, 0.99).astype(np.float32)


def _trace(rng, times, ctrl_times, ctrl) -> np.ndarray:
    delay = rng.uniform(1.5, 2.5)
    base = np.interp(times - delay, ctrl_times, ctrl)
    wobble = np.convolve(rng.standard_normal(times.size), np.ones(25) / 25, mode="same")
    return np.clip(base + rng.uniform(-0.1, 0.1) + 0.3 * wobble, -1.0, 1.0)


def write_recordings(
    folder: str | os.PathLike,
    *,
    stems=("train_1", "train_2", "dev_1", "test_1"),
    duration: float = 20.0,
    sample_rate: int = 16000,
    raters: int = 3,
    rating_period: float = 0.04,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Writes ``folder/wav/<stem>.wav`` and ``folder/ratings/<dim>/<stem>.csv``.

    Args:
        folder: output folder.
        stems: recording names.
        duration: seconds per recording.
        sample_rate: Hz (16-bit PCM WAV).
        raters: rater columns per trace.
        rating_period: seconds between rating samples.
        seed: everything is a function of it.

    Returns:
        ``{stem: {"times": [T], "arousal": [T], "valence": [T]}}``: the controls at the
        rating times (the answer key).
    """
    _, soundfile = require_audio_extra()
    folder = Path(folder)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    key = {}
    for i, stem in enumerate(stems):
        rng = np.random.default_rng([seed, i])
        n = int(round(duration * sample_rate))
        t_audio = np.arange(n) / sample_rate
        t_ctrl = np.arange(0.0, duration + 1e-9, 0.01)
        ctrl = {"arousal": control(rng, t_ctrl), "valence": control(rng, t_ctrl)}
        signal = voiced_signal(
            rng,
            np.interp(t_audio, t_ctrl, ctrl["arousal"]),
            np.interp(t_audio, t_ctrl, ctrl["valence"]),
            sample_rate=sample_rate,
        )
        soundfile.write(str(folder / "wav" / f"{stem}.wav"), signal, sample_rate, "PCM_16")
        times = np.round(
            np.arange(int(np.floor(duration / rating_period + 1e-9)) + 1) * rating_period, 9
        )
        key[stem] = {"times": times}
        for dim, c in ctrl.items():
            frame = pd.DataFrame({"time": times})
            for k in range(raters):
                frame[f"R{k + 1}"] = _trace(rng, times, t_ctrl, c)
            csv_layout.write_table(folder / "ratings" / dim / f"{stem}.csv", frame)
            key[stem][dim] = np.interp(times, t_ctrl, c)
    return key


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m ddat_jax.features.synthetic", description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=4)
    p.add_argument("--dev", type=int, default=2)
    p.add_argument("--test", type=int, default=2)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    stems = [
        f"{part}_{k}"
        for part, n in (("train", a.train), ("dev", a.dev), ("test", a.test))
        for k in range(1, n + 1)
    ]
    write_recordings(a.out, stems=stems, duration=a.duration, seed=a.seed)
    print(f"wrote {len(stems)} recordings of {a.duration:g} s to {a.out}/wav and {a.out}/ratings")


if __name__ == "__main__":
    main()
