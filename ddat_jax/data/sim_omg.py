"""Embedded OMG-Emotion-like corpus (preset ``omg``): 7-class utterance-level emotions.

A **simulation** of the shape and difficulties of the OMG-Emotion Behavior dataset, not
the dataset: ~567 monologue videos cut into utterances (2,440 train / 617 dev / 2,229
test), seven classes (neutral, happiness, sadness, anger, surprise, fear, disgust) with
a skewed distribution, five annotators per utterance, gold = majority vote, and test
labels withheld (as OMG). One feature vector per utterance: audio 88 (eGeMAPS-like
functionals) and video ``video_dim`` (4096 by default, a VGG-Face fc7-like average;
preset ``omg_small`` shrinks everything for tests).

Generative model (per utterance): a video has a base class; each utterance keeps it with
probability ``persistence`` or draws a class from the prior. The class has a prototype
``μ_c ∈ R^6``; audio observes dims 0–3 and video dims 2–5 (two shared, two private each:
the modalities carry partly complementary class information), each plus a per-video
speaker offset and utterance noise, through a random non-linear map (tanh for audio, ReLU
for video) plus feature noise. Each annotator reports the true class with an
annotator-specific accuracy, otherwise a class drawn from the prior; the gold standard
is the majority vote, ties broken in favour of the class listed first in
:data:`CLASSES` (neutral first: OMG's own rule is unpublished; this one is documented).

On disk: the project's CSV layout (:mod:`ddat_jax.data.csv_layout`), one "recording" per
video whose "frames" are its utterances (``time`` = utterance index, period 1 s)::

    features/audio/<stem>.csv    time,a0..a87          one row per utterance
    features/video/<stem>.csv    time,v0..v<D-1>
    gold/emotion/<stem>.csv      time,emotion          class index 0..6 (train, dev)
    ratings/emotion/<stem>.csv   time,A1..A5           each annotator's class (train, dev)
    partitions.csv               stem,partition
    answer_key/utterances.csv    stem,utterance,true_class,gold (test too),base_class
    manifest.json

Calibration (:func:`calibrate`: multinomial logistic regression, L2 0.01, on standardised
features; dev macro-F1), seed 0 — target 0.25–0.40 per modality, video slightly above audio,
both together above either: preset ``omg_small`` audio 0.35, video 0.35, both 0.45; the
final constants with the full utterance counts and video_dim 128 (audio view sd 1.0 instead
of 1.1) gave audio 0.33, video 0.33, both 0.41. Only the noise levels were tuned, for these
ranges; nothing was tuned on a neural model's result.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
from collections.abc import Callable

import numpy as np
import pandas as pd

CLASSES = ("neutral", "happiness", "sadness", "anger", "surprise", "fear", "disgust")
PRIOR = np.array([0.34, 0.27, 0.14, 0.11, 0.07, 0.05, 0.02])
VERSION = 1


@dataclasses.dataclass(frozen=True)
class OmgPreset:
    """Sizes of one preset: videos and utterances per partition, feature sizes."""

    name: str
    videos: tuple[int, int, int] = (262, 66, 239)
    utterances: tuple[int, int, int] = (2440, 617, 2229)
    audio_dim: int = 88
    video_dim: int = 4096
    annotators: int = 5


PRESETS = {
    "omg": OmgPreset("omg"),
    "omg_small": OmgPreset("omg_small", (60, 24, 12), (800, 300, 110), 88, 64),
}
PARTS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class _Model:
    """Constants of the generative model (tuned only for the calibration ranges)."""

    latent_dim: int = 6
    audio_dims: tuple[int, int] = (0, 4)
    video_dims: tuple[int, int] = (2, 6)
    persistence: float = 0.55
    speaker_sd: float = 0.6
    utterance_sd: float = 0.7  # shared by both modalities
    audio_obs_sd: float = 1.1  # each modality's own view of the latent
    video_obs_sd: float = 0.2
    # Feature noise sd at 88 features, scaled by sqrt(dim / 88) so that a linear read-out
    # of a larger set (video 4096 vs the tests' 64) carries about the same information.
    audio_noise: float = 0.8
    video_noise: float = 0.3
    accuracy: tuple[float, float] = (0.55, 0.8)


M = _Model()


def preset_of(preset: str | OmgPreset) -> OmgPreset:
    if isinstance(preset, OmgPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown OMG preset {preset!r}; valid: {sorted(PRESETS)}")
    return PRESETS[preset]


def _lengths(rng, videos: int, total: int) -> np.ndarray:
    """Utterances per video (>= 2 each), summing to ``total``."""
    if total < 2 * videos:
        raise ValueError(f"{total} utterances cannot fill {videos} videos with >= 2 each")
    share = rng.dirichlet(np.full(videos, 4.0))
    n = 2 + np.floor(share * (total - 2 * videos)).astype(int)
    n[rng.choice(videos, total - n.sum(), replace=False)] += 1
    return n


def _classes(rng, n: int) -> tuple[np.ndarray, int]:
    """True classes of one video's ``n`` utterances and its base class."""
    base = int(rng.choice(len(CLASSES), p=PRIOR))
    keep = rng.random(n) < M.persistence
    return np.where(keep, base, rng.choice(len(CLASSES), n, p=PRIOR)), base


def majority_vote(votes: np.ndarray) -> np.ndarray:
    """``[U, A]`` class votes → ``[U]`` gold; ties go to the class listed first."""
    counts = np.stack([(votes == c).sum(axis=1) for c in range(len(CLASSES))], axis=1)
    return np.argmax(counts, axis=1)  # argmax returns the first maximum


def _globals(preset: OmgPreset, seed: int) -> dict:
    g = np.random.default_rng([seed, 0])
    k_a = M.audio_dims[1] - M.audio_dims[0]
    k_v = M.video_dims[1] - M.video_dims[0]
    return {
        "mu": g.normal(size=(len(CLASSES), M.latent_dim)),
        "w_a": g.normal(size=(k_a, preset.audio_dim)) / np.sqrt(k_a),
        "b_a": g.normal(scale=0.5, size=preset.audio_dim),
        "w_v": g.normal(size=(k_v, preset.video_dim)) / np.sqrt(k_v),
        "b_v": g.normal(scale=0.5, size=preset.video_dim),
        "acc": g.uniform(*M.accuracy, size=preset.annotators),
    }


def _noise(sd: float, dim: int) -> float:
    return sd * float(np.sqrt(dim / 88.0))


def _video(rng, g: dict, preset: OmgPreset, n: int) -> dict:
    """One video's utterances: true classes, votes, gold and both feature sets."""
    true, base = _classes(rng, n)
    z = g["mu"][true] + rng.normal(scale=M.utterance_sd, size=(n, M.latent_dim))
    z = z + rng.normal(scale=M.speaker_sd, size=M.latent_dim)  # speaker offset
    za, zv = z[:, slice(*M.audio_dims)], z[:, slice(*M.video_dims)]
    za = za + rng.normal(scale=M.audio_obs_sd, size=za.shape)
    zv = zv + rng.normal(scale=M.video_obs_sd, size=zv.shape)
    audio = np.tanh(za @ g["w_a"] + g["b_a"])
    audio = audio + rng.normal(scale=_noise(M.audio_noise, preset.audio_dim), size=audio.shape)
    video = np.maximum(zv @ g["w_v"] + g["b_v"], 0.0)
    video = video + rng.normal(scale=_noise(M.video_noise, preset.video_dim), size=video.shape)
    right = rng.random((n, preset.annotators)) < g["acc"]
    other = rng.choice(len(CLASSES), (n, preset.annotators), p=PRIOR)
    votes = np.where(right, true[:, None], other)
    return {
        "true": true,
        "base": base,
        "votes": votes,
        "gold": majority_vote(votes),
        "audio": audio.astype(np.float32),
        "video": video.astype(np.float32),
    }


def simulate(preset: str | OmgPreset = "omg", seed: int = 0):
    """Yields ``(partition, stem, video dict)`` for every video, deterministically."""
    p = preset_of(preset)
    g = _globals(p, seed)
    for i, part in enumerate(PARTS):
        lengths = _lengths(np.random.default_rng([seed, 1, i]), p.videos[i], p.utterances[i])
        for v, n in enumerate(lengths):
            rng = np.random.default_rng([seed, 2, i, v])
            yield part, f"{part}_{v + 1:03d}", _video(rng, g, p, int(n))


def _write_csv(path: pathlib.Path, values: np.ndarray, names: list[str], fmt: str) -> None:
    """``time`` (utterance index) then the ``names`` columns, LF, final newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n, k = values.shape
    header = ",".join(["time", *names])
    table = np.column_stack([np.arange(n, dtype=np.float64), values])
    np.savetxt(path, table, fmt=["%d"] + [fmt] * k, delimiter=",", header=header, comments="")


def _model_dict() -> dict:
    """The generator's constants as JSON values (a cached corpus must match them)."""
    return json.loads(json.dumps(dataclasses.asdict(M)))


def names(k: int, prefix: str) -> list[str]:
    return [f"{prefix}{j}" for j in range(k)]


def generate_corpus(root: str | os.PathLike, *, preset: str = "omg", seed: int = 0):
    """Writes the preset into ``root`` (replaced atomically); returns ``root``."""
    p = preset_of(preset)
    root = pathlib.Path(root)
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    rows, parts = [], []
    for part, stem, v in simulate(p, seed):
        parts.append(f"{stem},{part}")
        feats = tmp / "features"
        _write_csv(feats / "audio" / f"{stem}.csv", v["audio"], names(p.audio_dim, "a"), "%.6g")
        _write_csv(feats / "video" / f"{stem}.csv", v["video"], names(p.video_dim, "v"), "%.5g")
        if part != "test":
            gold = tmp / "gold" / "emotion" / f"{stem}.csv"
            _write_csv(gold, v["gold"][:, None], ["emotion"], "%d")
            votes = [f"A{j + 1}" for j in range(p.annotators)]
            _write_csv(tmp / "ratings" / "emotion" / f"{stem}.csv", v["votes"], votes, "%d")
        for u in range(len(v["true"])):
            rows.append((stem, u, int(v["true"][u]), int(v["gold"][u]), v["base"]))
    (tmp / "partitions.csv").write_text("stem,partition\n" + "\n".join(parts) + "\n")
    key = pd.DataFrame(rows, columns=["stem", "utterance", "true_class", "gold", "base_class"])
    (tmp / "answer_key").mkdir(parents=True, exist_ok=True)
    key.to_csv(tmp / "answer_key" / "utterances.csv", index=False)
    manifest = {"generator": "sim_omg", "version": VERSION, "preset": dataclasses.asdict(p)}
    manifest["model"] = _model_dict()
    manifest.update(seed=seed, classes=list(CLASSES), simulated=True)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def default_root(preset: str = "omg", seed: int = 0) -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "ddat_jax" / f"omg-v{VERSION}" / f"{preset}-seed{seed}"


def ensure_corpus(
    preset: str = "omg", seed: int = 0, *, root=None, progress: Callable | None = print
) -> pathlib.Path:
    """The cached corpus (regenerated when missing or written with another version,
    preset, seed or generator constants)."""
    root = pathlib.Path(root) if root is not None else default_root(preset, seed)
    path = root / "manifest.json"
    p = preset_of(preset)
    if path.is_file():
        m = json.loads(path.read_text())
        same = m.get("version") == VERSION and m.get("seed") == seed
        preset_json = json.loads(json.dumps(dataclasses.asdict(p)))
        if same and m.get("preset") == preset_json and m.get("model") == _model_dict():
            return root
    if progress:
        progress(f"embedded corpus: generating simulated OMG-like preset {preset!r} in {root}")
    return generate_corpus(root, preset=preset, seed=seed)


def load_answer_key(root: str | os.PathLike) -> pd.DataFrame:
    """``answer_key/utterances.csv``: stem, utterance, true_class, gold, base_class."""
    return pd.read_csv(pathlib.Path(root) / "answer_key" / "utterances.csv")


def calibrate(root: str | os.PathLike, *, l2: float = 1e-2) -> dict[str, float]:
    """Dev macro-F1 of a multinomial logistic regression per modality (and both),
    trained on the standardised train utterances: the preset's calibration."""
    from ddat_jax.data import corpus as corpus_lib
    from ddat_jax.data import preprocess
    from ddat_jax.evaluation import classification as cl

    c = corpus_lib.load_corpus(root, modality=("audio", "video"), dimension="emotion", layout="csv")
    c = preprocess.standardise(c)

    def xy(part):
        recs = c.partitions[part]
        x = np.concatenate([r.features for r in recs])
        return x, np.concatenate([r.gold for r in recs]).astype(int)

    (xtr, ytr), (xdv, ydv) = xy("train"), xy("dev")
    out = {}
    for name, (a, b) in {**c.modality_slices, "both": (0, xtr.shape[1])}.items():
        w = cl.logistic_regression(xtr[:, a:b], ytr, len(CLASSES), l2=l2)
        out[name] = cl.macro_f1(cl.predict_logistic(w, xdv[:, a:b]), ydv, len(CLASSES))
    return out
