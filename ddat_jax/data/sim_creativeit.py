"""An embedded USC-CreativeIT-like corpus: a *simulation* in the project's CSV layout.

USC CreativeIT (theatrical improvisations of actor pairs) is licensed and cannot ship. This
module simulates a corpus with its shape and difficulties and writes it in the CSV layout of
:mod:`ddat_jax.data.csv_layout` (read by :func:`ddat_jax.data.load_corpus`)::

    features/speech/<stem>.csv       time + 39 speech features per 1/60 s frame
    features/body/<stem>.csv         time + 24 body-motion features
    ratings/<dimension>/<stem>.csv   time + one column per rater (activation, valence, dominance)
    partitions.csv                   stem -> session (session1 ... session5)
    answer_key/                      corpus.json + <stem>.npz (latent, ambiguity, speaking)

Load it with ``load_corpus(root, modality=("speech", "body"), dimension=("activation",
"valence", "dominance"), gold="mean", partitions=SESSIONS)``. Nothing in it comes from real
recordings; every number it produces describes the simulation, not CreativeIT.

Shape (preset ``creativeit``): 16 actors in 5 sessions with mutually exclusive speakers
(4, 4, 4, 2, 2 actors; the 4-actor sessions hold two pairs), 8 recordings per session (one
per actor and interplay: 40 recordings), 3.5 min at 60 fps (12,600 frames), 4 raters.
Preset ``creativeit_small`` (tests): 5 sessions × 2 recordings of 30 s, 3 raters. The CSV
layout needs the same rater columns in every file of a dimension, so a preset has one rater
count (the real corpus has 3–4 raters per recording).

Generative model (constants in :class:`CreativeITModel`):

1. **Latent** activation / valence / dominance per recording: sums of a fast (2 s) and a
   slow (10 s) second-order low-pass Gaussian process; activation and dominance share a
   large part of their innovations, valence a small one; actor-specific means (speaker
   effects) plus interplay means; squashed by tanh into (−1, 1).
2. **Raters**: each has a reaction delay per dimension (mean 1.5 s, ±0.5 s), gain, bias and
   smooth noise whose amplitude grows with an ambiguity signal a(t) ∈ [0, 1]; ratings are
   clipped to [−1, 1]. Gold standard: the mean of the raters (computed by the loader).
3. **Speech** (39 = energy + 12 MFCCs, their Δ and ΔΔ): the actor speaks in turns (about
   half of the frames); while speaking, the 13 static coefficients are a random two-layer
   tanh map of ``[g·latent, nuisance]`` plus a speaker offset and strong frame noise (gains:
   activation 1.0, dominance 0.7, valence 0.3); while silent, a noise floor with no emotion.
   Δ and ΔΔ are the usual ±2-frame regression deltas.
4. **Body** (24 = Euler angles x, y, z of 4 joints + their Δ): a slow actor-specific posture
   drift (nuisance) plus a weak map of the latent (activation 0.35, dominance 0.25, valence
   0.03: body is nearly uninformative for valence) and frame noise.

Calibration (:func:`calibrate`: per-frame ridge, alpha 100, on the means of the
standardised features over the past 3.3 s, leave-one-session-out, mean CCC over the 5 folds,
gold = mean of the raters; preset ``creativeit``, seed 0; targets: speech activation 0.3–0.5,
valence 0.1–0.3, dominance 0.2–0.4, speech above body for every dimension)::

    ============  ==========  =======  =========
    features      activation  valence  dominance
    ============  ==========  =======  =========
    speech          0.472      0.223     0.255
    body            0.110      0.033     0.064
    speech+body     0.508      0.204     0.230
    ============  ==========  =======  =========

Simulating ``creativeit`` in memory takes about 10 s on one core; ``creativeit_small`` 1 s.
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

GENERATOR_VERSION = "2"
FRAME_PERIOD = 1.0 / 60.0
DIMENSIONS = ("activation", "valence", "dominance")
MODALITIES = ("speech", "body")
SESSIONS = tuple(f"session{i}" for i in range(1, 6))
_MANIFEST = "MANIFEST.json"


@dataclasses.dataclass(frozen=True)
class CreativeITPreset:
    """Corpus size: actors per session, interplays per pair, seconds, raters."""

    name: str
    actors: tuple[int, ...]  # actors per session (pairs = actors // 2)
    interplays: tuple[int, ...]  # interplays per pair, per session
    seconds: float
    raters: int


PRESETS = {
    "creativeit": CreativeITPreset("creativeit", (4, 4, 4, 2, 2), (2, 2, 2, 4, 4), 210.0, 4),
    "creativeit_small": CreativeITPreset("creativeit_small", (2,) * 5, (1,) * 5, 30.0, 3),
}


@dataclasses.dataclass(frozen=True)
class CreativeITModel:
    """Every constant of the generative model (module docstring)."""

    tau_fast_s: float = 2.0
    tau_slow_s: float = 10.0
    share_ad: float = 0.6  # shared innovation weight activation <-> dominance
    share_av: float = 0.15
    actor_mean_sd: float = 0.3
    interplay_mean_sd: float = 0.2
    scale: tuple[float, float] = (0.3, 0.55)
    delay_mean_s: float = 1.5
    delay_spread_s: float = 0.5
    rater_noise: tuple[float, float] = (0.08, 0.25)  # sigma0 + sigma1 * a(t)
    speech_gain: tuple[float, float, float] = (0.9, 0.6, 0.9)  # activation, valence, dominance
    speech_noise: float = 1.6
    speech_fraction: float = 0.5
    body_gain: tuple[float, float, float] = (0.35, 0.03, 0.25)
    body_drift: float = 1.0
    body_noise: float = 0.6


MODEL = CreativeITModel()


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *[int(s) for s in stream]])


def _smooth(rng, k: int, n: int, tau_s: float) -> np.ndarray:
    """``[k, n]`` unit-variance second-order low-pass Gaussian processes (60 fps)."""
    phi = float(np.exp(-FRAME_PERIOD / tau_s))
    burn = int(np.ceil(3 * tau_s / FRAME_PERIOD))
    x = rng.standard_normal((k, n + burn))
    for _ in range(2):
        x = signal.lfilter([1.0 - phi], [1.0, -phi], x, axis=-1)
    x = x[:, burn:]
    return x / np.maximum(x.std(axis=-1, keepdims=True), 1e-12)


def deltas(c: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over ±``width`` frames (edges repeated): ``[T, F] -> [T, F]``."""
    p = np.pad(c, ((width, width), (0, 0)), mode="edge")
    t = len(c)
    num = sum(
        n * (p[width + n : width + n + t] - p[width - n : width - n + t])
        for n in range(1, width + 1)
    )
    return num / (2 * sum(n * n for n in range(1, width + 1)))


def _turns(rng, n: int, fraction: float) -> np.ndarray:
    """Speaking mask: alternating turns of 1–6 s, about ``fraction`` of the frames."""
    out, i, speak = np.zeros(n, bool), 0, bool(rng.random() < fraction)
    while i < n:
        length = int(rng.uniform(1.0, 6.0) / FRAME_PERIOD)
        out[i : i + length] = speak
        i += length
        speak = bool(rng.random() < fraction)
    return out


@dataclasses.dataclass(frozen=True)
class _Globals:
    w1: dict  # modality -> [in, hidden]
    w2: dict  # modality -> [hidden, out]
    actor_offset: np.ndarray  # [actors, 13] speech offsets
    actor_mean: np.ndarray  # [actors, 3]
    posture: np.ndarray  # [actors, 12]
    delay_s: np.ndarray  # [3, raters]
    gain: np.ndarray  # [3, raters]
    bias: np.ndarray  # [3, raters]


def _globals(preset: CreativeITPreset, seed: int) -> _Globals:
    rng = _rng(seed, 0)
    actors, k, m = sum(preset.actors), preset.raters, MODEL
    w1 = {mod: rng.normal(size=(7, 16)) / np.sqrt(7) for mod in MODALITIES}
    w2 = {"speech": rng.normal(size=(16, 13)) / 2.0, "body": rng.normal(size=(16, 12)) / 2.0}
    delay = m.delay_mean_s + m.delay_spread_s * rng.uniform(-1, 1, size=(3, k))
    delay += m.delay_mean_s - delay.mean(axis=1, keepdims=True)
    return _Globals(
        w1=w1,
        w2=w2,
        actor_offset=rng.normal(scale=0.8, size=(actors, 13)),
        actor_mean=rng.normal(scale=m.actor_mean_sd, size=(actors, 3)),
        posture=rng.normal(scale=1.0, size=(actors, 12)),
        delay_s=delay,
        gain=rng.uniform(0.7, 1.3, size=(3, k)),
        bias=rng.normal(scale=0.1, size=(3, k)),
    )


@dataclasses.dataclass(frozen=True)
class SimulatedRecording:
    """One recording: stem, session, actor, features, ratings ``[3, T, K]``, answer key."""

    stem: str
    session: str
    actor: int
    speech: np.ndarray
    body: np.ndarray
    ratings: np.ndarray
    latent: np.ndarray
    ambiguity: np.ndarray
    speaking: np.ndarray


def _latent(rng, g: _Globals, actor: int, interplay_mean: np.ndarray, n: int) -> np.ndarray:
    m = MODEL
    base = 0.6 * _smooth(rng, 3, n, m.tau_fast_s) + 0.8 * _smooth(rng, 3, n, m.tau_slow_s)
    a, v, d = base
    d = m.share_ad * a + np.sqrt(1 - m.share_ad**2) * d
    v = m.share_av * a + np.sqrt(1 - m.share_av**2) * v
    z = np.stack([a, v, d]) / 1.0
    scale = rng.uniform(*m.scale, size=(3, 1))
    return np.tanh(g.actor_mean[actor][:, None] + interplay_mean[:, None] + scale * z)


def _ratings(rng, g: _Globals, latent: np.ndarray, amb: np.ndarray) -> np.ndarray:
    """``[3, T, K]`` rater traces."""
    m, (n, k) = MODEL, (latent.shape[1], g.gain.shape[1])
    t = np.arange(n, dtype=np.float64)
    out = np.empty((3, n, k), np.float32)
    for d in range(3):
        noise = _smooth(rng, k, n, 1.0)
        for r in range(k):
            lag = g.delay_s[d, r] / FRAME_PERIOD
            seen = np.interp(t - lag, t, latent[d])
            sd = m.rater_noise[0] + m.rater_noise[1] * np.interp(t - lag, t, amb[d])
            trace = g.gain[d, r] * seen + g.bias[d, r] + sd * noise[r]
            out[d, :, r] = np.clip(trace, -1.0, 1.0)
    return out


def _speech(rng, g: _Globals, actor: int, latent, speaking, n: int) -> np.ndarray:
    m = MODEL
    nuis = _smooth(rng, 4, n, 3.0)
    x = np.concatenate([np.asarray(m.speech_gain)[:, None] * latent * 2.0, nuis]).T
    static = np.tanh(x @ g.w1["speech"]) @ g.w2["speech"] + g.actor_offset[actor]
    static = static + m.speech_noise * rng.standard_normal((n, 13))
    floor = 0.3 * rng.standard_normal((n, 13))
    floor[:, 0] -= 3.0  # low energy in silence
    static = np.where(speaking[:, None], static, floor)
    d1 = deltas(static)
    return np.concatenate([static, d1, deltas(d1)], axis=1).astype(np.float32)


def _body(rng, g: _Globals, actor: int, latent, n: int) -> np.ndarray:
    m = MODEL
    drift = m.body_drift * _smooth(rng, 12, n, 8.0) + g.posture[actor][:, None]
    x = np.concatenate([np.asarray(m.body_gain)[:, None] * latent * 2.0, _smooth(rng, 4, n, 2.0)]).T
    angles = drift.T + np.tanh(x @ g.w1["body"]) @ g.w2["body"]
    angles = angles + m.body_noise * rng.standard_normal((n, 12))
    return np.concatenate([angles, deltas(angles)], axis=1).astype(np.float32)


def _layout(preset: CreativeITPreset) -> list[tuple[str, str, int, int]]:
    """``(stem, session, actor, interplay id)`` of every recording, session order."""
    out, actor, play = [], 0, 0
    for s, (n_act, n_play) in enumerate(zip(preset.actors, preset.interplays, strict=True)):
        for pair in range(n_act // 2):
            for _ in range(n_play):
                for a in (actor + 2 * pair, actor + 2 * pair + 1):
                    out.append((f"S{s + 1}_I{play:02d}_A{a + 1:02d}", SESSIONS[s], a, play))
                play += 1
        actor += n_act
    return out


def simulate(preset: CreativeITPreset | str, seed: int = 0):
    """``(globals, [SimulatedRecording])`` in memory (nothing written)."""
    preset = _preset(preset)
    g = _globals(preset, seed)
    n = int(round(preset.seconds / FRAME_PERIOD))
    recs = []
    plays = {}
    for i, (stem, session, actor, play) in enumerate(_layout(preset)):
        if play not in plays:
            plays[play] = _rng(seed, 1, play).normal(scale=MODEL.interplay_mean_sd, size=3)
        rng = _rng(seed, 2, i)
        latent = _latent(rng, g, actor, plays[play], n)
        amb = 1.0 / (1.0 + np.exp(-(2.0 * _smooth(rng, 3, n, 4.0) - 1.5)))
        speaking = _turns(rng, n, MODEL.speech_fraction)
        recs.append(
            SimulatedRecording(
                stem=stem,
                session=session,
                actor=actor,
                speech=_speech(rng, g, actor, latent, speaking, n),
                body=_body(rng, g, actor, latent, n),
                ratings=_ratings(rng, g, latent, amb),
                latent=latent.astype(np.float32),
                ambiguity=amb.astype(np.float32),
                speaking=speaking,
            )
        )
    return g, recs


def _preset(preset: CreativeITPreset | str) -> CreativeITPreset:
    if isinstance(preset, CreativeITPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown creativeit preset {preset!r}; valid: {sorted(PRESETS)}")
    return PRESETS[preset]


SPEECH_COLUMNS = ["energy", *[f"mfcc{i}" for i in range(1, 13)]]
SPEECH_COLUMNS = (
    SPEECH_COLUMNS + [f"d_{c}" for c in SPEECH_COLUMNS] + [f"dd_{c}" for c in SPEECH_COLUMNS]
)
BODY_COLUMNS = [f"{j}_{a}" for j in ("head", "torso", "rarm", "larm") for a in "xyz"]
BODY_COLUMNS = BODY_COLUMNS + [f"d_{c}" for c in BODY_COLUMNS]


def _write_csv(path: pathlib.Path, values: np.ndarray, columns: list[str]) -> None:
    frame = pd.DataFrame(values, columns=columns)
    # The time keeps 6 decimals (the values 5 significant digits): 1/60 s steps stay exact
    # to 1e-6 s, well inside the loader's 0.1 % grid tolerance.
    frame.insert(0, "time", [f"{t:.6f}" for t in np.arange(len(values)) * FRAME_PERIOD])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.5g", lineterminator="\n")


def _write_recording(root: pathlib.Path, rec: SimulatedRecording, raters: list[str]) -> None:
    _write_csv(root / "features" / "speech" / f"{rec.stem}.csv", rec.speech, SPEECH_COLUMNS)
    _write_csv(root / "features" / "body" / f"{rec.stem}.csv", rec.body, BODY_COLUMNS)
    for d, dim in enumerate(DIMENSIONS):
        _write_csv(root / "ratings" / dim / f"{rec.stem}.csv", rec.ratings[d], raters)
    np.savez_compressed(
        root / "answer_key" / f"{rec.stem}.npz",
        latent=rec.latent,
        ambiguity=rec.ambiguity,
        speaking=rec.speaking,
    )


def generate_corpus(root: str | os.PathLike, *, preset: str = "creativeit", seed: int = 0):
    """Writes the simulated corpus to ``root`` (a temporary sibling folder, ``MANIFEST.json``
    last, then swapped into place). Returns ``root``.

    Raises:
      FileExistsError: ``root`` is a non-empty folder without this generator's manifest.
    """
    p = _preset(preset)
    root = pathlib.Path(root).expanduser().absolute()
    if root.is_dir() and any(root.iterdir()) and _manifest(root) is None:
        raise FileExistsError(f"{root} is not empty and holds no corpus of {__name__}")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (tmp / "answer_key").mkdir(parents=True)
    raters = [f"R{k + 1}" for k in range(p.raters)]
    try:
        g, recs = simulate(p, seed)
        for rec in recs:
            _write_recording(tmp, rec, raters)
        lines = ["stem,partition"] + [f"{r.stem},{r.session}" for r in recs]
        (tmp / "partitions.csv").write_text("\n".join(lines) + "\n")
        key = {
            "description": f"Simulated CreativeIT-shaped corpus ({__name__}); not real data.",
            "preset": p.name,
            "seed": int(seed),
            "frame_period": FRAME_PERIOD,
            "raters": raters,
            "dimensions": list(DIMENSIONS),
            "sessions": {s: [r.stem for r in recs if r.session == s] for s in SESSIONS},
            "actor": {r.stem: r.actor for r in recs},
            "rater_delay_s": {d: g.delay_s[i].tolist() for i, d in enumerate(DIMENSIONS)},
            "model": dataclasses.asdict(MODEL),
        }
        (tmp / "answer_key" / "corpus.json").write_text(json.dumps(key, indent=1))
        manifest = {
            "generator": __name__,
            "version": GENERATOR_VERSION,
            "preset": p.name,
            "seed": int(seed),
            "files": sorted(str(q.relative_to(tmp)) for q in tmp.rglob("*") if q.is_file()),
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


def default_root(preset: str = "creativeit", seed: int = 0) -> pathlib.Path:
    """Cache folder ``<cache>/creativeit-v<version>/<preset>-seed<seed>`` (``$DDAT_JAX_CACHE``,
    else ``$XDG_CACHE_HOME/ddat_jax``, else ``~/.cache/ddat_jax``)."""
    name = _preset(preset).name
    return synthetic.cache_base() / f"creativeit-v{GENERATOR_VERSION}" / f"{name}-seed{seed}"


def ensure_corpus(preset: str = "creativeit", seed: int = 0, *, root=None, progress=print):
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
        progress(f"embedded corpus: generating simulated CreativeIT-like {preset!r} in {root}")
    t0 = time.perf_counter()
    generate_corpus(root, preset=preset, seed=seed)
    if progress:
        progress(f"embedded corpus: done in {time.perf_counter() - t0:.1f} s")
    return root


def load_answer_key(root: str | os.PathLike) -> dict:
    """``corpus.json`` plus per stem ``latent [3, T]``, ``ambiguity [3, T]``, ``speaking [T]``."""
    folder = pathlib.Path(root) / "answer_key"
    key = json.loads((folder / "corpus.json").read_text())
    for name in ("latent", "ambiguity", "speaking"):
        key[name] = {}
    for stem in key["actor"]:
        with np.load(folder / f"{stem}.npz") as z:
            for name in ("latent", "ambiguity", "speaking"):
                key[name][stem] = z[name]
    return key


def _past_mean(x: np.ndarray, frames: int) -> np.ndarray:
    """Mean over the past ``frames`` frames (fewer at the start): ``[T, F] -> [T, F]``."""
    c = np.cumsum(np.pad(x, ((1, 0), (0, 0))), axis=0)
    t = np.arange(1, len(x) + 1)
    lo = np.maximum(t - frames, 0)
    return (c[t] - c[lo]) / (t - lo)[:, None]


def calibrate(recs, *, window_s: float = 3.3, alpha: float = 100.0, step: int = 10) -> dict:
    """Leave-one-session-out ridge on past-window feature means: mean CCC over folds.

    Args:
      recs: :class:`SimulatedRecording` s (from :func:`simulate`).
      window_s: the causal window (the paper's N·t = 3.3 s).
      alpha: ridge penalty on standardised features.
      step: every ``step``-th frame is used (speed).

    Returns:
      ``{modality: {dimension: mean CCC over the 5 folds}}`` (gold = mean of the raters).
    """
    from ddat_jax import metrics

    w = int(round(window_s / FRAME_PERIOD))
    out = {}
    for mod in ("speech", "body", "speech+body"):
        feats = {
            r.stem: np.concatenate([_past_mean(getattr(r, m), w) for m in mod.split("+")], axis=1)[
                ::step
            ]
            for r in recs
        }
        gold = {r.stem: r.ratings.mean(axis=2)[:, ::step].T for r in recs}
        scores = np.zeros((len(SESSIONS), 3))
        for f, held in enumerate(SESSIONS):
            tr = [r.stem for r in recs if r.session != held]
            te = [r.stem for r in recs if r.session == held]
            x = np.concatenate([feats[s] for s in tr])
            mu, sd = x.mean(0), x.std(0) + 1e-8
            xs = (x - mu) / sd
            y = np.concatenate([gold[s] for s in tr])
            beta = np.linalg.solve(xs.T @ xs + alpha * np.eye(xs.shape[1]), xs.T @ (y - y.mean(0)))
            pred = np.concatenate([((feats[s] - mu) / sd) @ beta + y.mean(0) for s in te])
            ref = np.concatenate([gold[s] for s in te])
            scores[f] = [metrics.ccc(pred[:, d], ref[:, d]) for d in range(3)]
        out[mod] = dict(zip(DIMENSIONS, scores.mean(0).round(3).tolist(), strict=True))
    return out
