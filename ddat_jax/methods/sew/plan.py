"""The SEW plan: unimodal regressors (Table 1) and SEW + ablations per pair (Table 2).

One run covers one emotion dimension (AVEC 2016 writes separate features per dimension)
and loads every modality it needs at once (``config.data.modality =
"audio+video_geometric+video_appearance"``); each system slices its views out of the
concatenated features with ``Corpus.modality_slices``.

==============================  ===============================================
``uni_<modality>``              the 4 × 120 per-frame GRU regressor on one modality
``<variant>_<weak>+<strong>``   SEW (or an ablation) trained on the pair; only
                                ``W_E`` + ``R`` predict (the weak view alone)
==============================  ===============================================

**Per-frame training** (as the paper): the train partition becomes ``[frames, 1, F]``
(every ``train_stride``-th valid frame of each recording, a length-1 sequence each) so
a minibatch of ``config.train.batch_size`` = 32 is 32 frames, and the DCCA term is
computed over those 32 frames. Dev (model selection on the CCC of the deployed
predictor, every ``dev_stride``-th frame) and the reported predictions keep the
recordings whole: the model treats every frame independently, so the layout does not
change a prediction.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import jax
import numpy as np

from ddat_jax import models
from ddat_jax import train as train_lib
from ddat_jax.experiment import training
from ddat_jax.experiment.systems import Context, Job, System, Trained
from ddat_jax.methods.sew.settings import SHORT, VARIANTS, SEWSettings

TERM_OF = {
    "translation": ("strong_from_weak", "alpha"),
    "autoencoder": ("strong_from_strong", "beta"),
}


def uni_name(modality: str) -> str:
    return f"uni_{modality}"


def uni_label(modality: str) -> str:
    return f"uni-modal {SHORT[modality]}"


def pair_name(variant: str, pair: tuple[str, str]) -> str:
    return f"{variant}_{pair[0]}+{pair[1]}"


def pair_title(pair: tuple[str, str]) -> str:
    """The paper's column title ``weak(+strong)``, e.g. ``video-geo(+audio)``."""
    return f"{SHORT[pair[0]]}(+{SHORT[pair[1]]})"


def pair_label(variant: str, pair: tuple[str, str]) -> str:
    return f"{VARIANTS[variant][0]} {pair_title(pair)}"


# ------------------------------------------------------------------------------ data


def view(ctx: Context, x: np.ndarray, modality: str) -> np.ndarray:
    """The columns of ``modality`` in the concatenated features ``x [..., F]``."""
    slices = ctx.corpus.modality_slices
    if modality not in slices:
        raise ValueError(
            f"the corpus has no {modality!r} features (loaded: {sorted(slices)}); SEW loads "
            "every modality it uses: config.data.modality='audio+video_geometric+"
            "video_appearance'"
        )
    start, stop = slices[modality]
    return x[..., start:stop]


def frame_index(mask: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``(recording, frame)`` indices of every ``stride``-th valid frame (mask ``[N, T]``)."""
    keep = mask & (np.arange(mask.shape[1]) % stride == 0)[None, :]
    return np.nonzero(keep)


def frames_partition(batch: Mapping, inputs: Mapping, targets: Mapping, stride: int) -> dict:
    """One partition as ``[frames, 1, ...]`` length-1 sequences (every ``stride``-th frame)."""
    n, t = frame_index(batch["mask"], stride)
    take = lambda a: np.asarray(a)[n, t][:, None]
    return {
        "inputs": {k: take(v) for k, v in inputs.items()},
        "mask": np.ones((len(n), 1), bool),
        "targets": {k: take(v) for k, v in targets.items()},
    }


def strided_partition(batch: Mapping, inputs: Mapping, targets: Mapping, stride: int) -> dict:
    """Whole recordings, every ``stride``-th frame (``[N, ceil(T / stride), ...]``)."""
    cut = lambda a: np.asarray(a)[:, ::stride]
    return {
        "inputs": {k: cut(v) for k, v in inputs.items()},
        "mask": cut(batch["mask"]),
        "targets": {k: cut(v) for k, v in targets.items()},
    }


def views_of(ctx: Context, batch: Mapping, pair: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``{"weak": ..., "strong"?: ...}`` of one padded partition."""
    out = {"weak": view(ctx, batch["x"], pair[0])}
    if len(pair) > 1:
        out["strong"] = view(ctx, batch["x"], pair[1])
    return out


def training_data(ctx: Context, pair: tuple[str, ...]) -> tuple[dict, dict]:
    """The engine's ``train`` (per frame) and ``dev`` (selection) partitions, and lengths."""
    s: SEWSettings = ctx.settings
    data, lengths = {}, {}
    for part, stride, layout in (
        ("train", s.train_stride, frames_partition),
        ("dev", s.dev_stride, strided_partition),
    ):
        b = ctx.batches[part]
        inputs = views_of(ctx, b, pair)
        targets = {"emotion": b["y"]}
        if part == "train" and len(pair) > 1:
            targets["strong"] = inputs["strong"]
        data[part] = layout(b, inputs, targets, stride)
        m = data[part]["mask"]
        lengths[part] = m.sum(axis=1) if part == "dev" else np.ones(m.shape[0], np.int32)
    return data, lengths


def deploy_data(ctx: Context, weak: str) -> tuple[dict, dict]:
    """Every partition, whole, with the weak view alone (the test-time inputs)."""
    data = {
        p: {"inputs": {"weak": view(ctx, b["x"], weak)}, "mask": b["mask"], "targets": {}}
        for p, b in ctx.batches.items()
    }
    return data, {p: b["lengths"] for p, b in ctx.batches.items()}


# ------------------------------------------------------------------------- objective


def objective(s: SEWSettings, variant: str | None) -> train_lib.Objective:
    """``L_pred`` (MSE on the emotion) plus the terms the variant keeps.

    Weights: ``alpha`` (translation), ``beta`` (autoencoder), ``gamma`` (DCCA), ``pred``.
    """
    terms = [train_lib.Term("mse", "emotion", "targets/emotion", name="pred")]
    kept = VARIANTS[variant][1] if variant else ()
    for t in ("translation", "autoencoder"):
        if t in kept:
            output, weight = TERM_OF[t]
            terms.append(train_lib.Term("mse", output, "targets/strong", weight=weight, name=t))
    if "cca" in kept:
        opts = (("top_k", s.top_k), ("r1", s.r1), ("r2", s.r2))
        terms.append(
            train_lib.Term(
                "dcca", "latent_w", "outputs/latent_s", weight="gamma", name="cca", options=opts
            )
        )
    return train_lib.Objective(tuple(terms), train_lib.Score("ccc", "emotion", "targets/emotion"))


def build_model(s: SEWSettings, pair: tuple[str, ...]):
    """The SEW network of a pair, or the unimodal regressor for ``(modality,)``."""
    if len(pair) == 1:
        return models.build_model("sew", latent=0, gru_layers=s.gru_layers, gru_units=s.gru_units)
    return models.build_model(
        "sew",
        weak_hidden=s.hidden[pair[0]],
        strong_hidden=s.hidden[pair[1]],
        latent=s.latent_of(pair),
        gru_layers=s.gru_layers,
        gru_units=s.gru_units,
    )


def make_job(pair: tuple[str, ...], variant: str | None):
    def job(ctx: Context, upstream) -> Job:
        s: SEWSettings = ctx.settings
        data, lengths = training_data(ctx, pair)
        return Job(
            data=data,
            lengths=lengths,
            model_fn=lambda arch: build_model(s, pair),
            archs=(None,),
            objective=objective(s, variant),
            loss_weights={"pred": 1.0, "alpha": s.alpha, "beta": s.beta, "gamma": s.gamma},
            settings=ctx.train,
        )

    return job


def make_train(weak: str):
    """The standard training, then the deployed predictor (``W_E`` + ``R``) on every
    partition with the weak view alone."""

    def train(ctx: Context, job: Job, upstream, *, key, workdir, device, label) -> Trained:
        trained = training.train_job(
            workdir.name, label, job, key=key, workdir=workdir, device=device
        )
        outputs = deployed_outputs(ctx, job, trained.model, trained.params, weak, device)
        return dataclasses.replace(trained, outputs=outputs)

    return train


def deployed_outputs(ctx: Context, job: Job, model, params, weak: str, device=None) -> dict:
    """Outputs of the test-time predictor (``W_E`` + ``R``) on every partition, per
    recording: the model is given the weak view alone."""
    data, lengths = deploy_data(ctx, weak)
    deployed = dataclasses.replace(job, data=data, lengths=lengths)
    device = device if device is not None else jax.devices()[0]
    return training.predict_all(model, params, deployed, device)


# ------------------------------------------------------------------------------ plan


def warn_rank(ctx: Context) -> None:
    """One warning per run when a DCCA batch has no more frames than latent dims."""
    s: SEWSettings = ctx.settings
    batch = int(ctx.train.train["batch_size"])
    dims = sorted({s.latent_of(p) for p in s.pairs})
    if s.pairs and any(v for v in s.variants if "cca" in VARIANTS[v][1]) and batch <= max(dims):
        warnings.warn(
            f"SEW: the DCCA term sees {batch} frames per batch for latents of {dims} dims: "
            f"the covariances have rank <= {batch - 1}, so only the ridges r1={s.r1}, "
            f"r2={s.r2} make them invertible and they shape the correlation (the paper's "
            "setting; a larger config.train.batch_size is the alternative).",
            stacklevel=2,
        )


def plan(ctx: Context) -> tuple[System, ...]:
    """Unimodal systems, then every pair × variant (longest trainings first)."""
    s: SEWSettings = ctx.settings
    for p in s.pairs:
        if s.top_k > s.latent_of(p):
            raise ValueError(f"config.sew.top_k={s.top_k} exceeds the latent size of {p}")
    warn_rank(ctx)
    out = []
    for pair in s.pairs:
        for v in s.variants:
            name, label = pair_name(v, pair), pair_label(v, pair)
            out.append(System(name, label, make_job(pair, v), train=make_train(pair[0])))
    for m in s.unimodal:
        out.append(System(uni_name(m), uni_label(m), make_job((m,), None), train=make_train(m)))
    return tuple(out)


def row_order(s: SEWSettings) -> tuple[str, ...]:
    """Unimodal rows first, then each pair's variants in the paper's order."""
    names = [uni_name(m) for m in s.unimodal]
    names += [pair_name(v, p) for p in s.pairs for v in s.variants]
    return tuple(names)
