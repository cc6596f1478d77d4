"""The implicit-fusion plan: per main modality, one α grid (one compiled program) and its
α = 0 member as the mono-modal baseline.

=====================  ===============================================================
``fusion_<main>``      ``ImplicitFusionRNN`` trained with ``L_main + α·L_aux`` for every
                       α of ``settings.alphas`` as members of one program; the member with
                       the best dev score is kept ("RNN (implicit fusion)")
``baseline_<main>``    the α = 0 member of the same grid ("RNN (baseline)"): the auxiliary
                       block then receives no gradient, so this is mono-modal training
=====================  ===============================================================

Data: the corpus is loaded with two modalities (``audio+video_geometric``);
``Corpus.modality_slices`` splits its features into the views ``{"main", "aux"}``. Only
the train partition carries auxiliary features: the dev view used for α/epoch selection
holds zeros, and every reported prediction (dev, test, every member) comes from
:func:`ddat_jax.models.fusion.predict_main`, which takes the main modality alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import SimpleNamespace

import jax
import numpy as np
import pandas as pd

from ddat_jax import models
from ddat_jax import train as train_lib
from ddat_jax.experiment import training
from ddat_jax.experiment.systems import Context, Job, System, Trained
from ddat_jax.methods.implicit_fusion.settings import ImplicitSettings
from ddat_jax.models.fusion import ImplicitFusionRNN, predict_main

TARGET = "emotion"


def fusion_name(main: str) -> str:
    return f"fusion_{main}"


def baseline_name(main: str) -> str:
    return f"baseline_{main}"


def fusion_label(main: str) -> str:
    return f"RNN implicit fusion ({main})"


def baseline_label(main: str) -> str:
    return f"RNN baseline ({main})"


def aux_of(corpus, main: str) -> str:
    """The auxiliary modality of ``main``: the corpus's other modality."""
    mods = tuple(corpus.modality_slices)
    if main not in mods or len(mods) != 2:
        raise ValueError(
            f"implicit fusion needs a corpus of exactly two modalities including {main!r} "
            f"(config.data.modality='audio+video_geometric'); the corpus has {list(mods)}"
        )
    return next(m for m in mods if m != main)


def view(corpus, x: np.ndarray, modality: str) -> np.ndarray:
    """The columns of ``modality`` in the concatenated features ``x [..., F]``."""
    start, stop = corpus.modality_slices[modality]
    return np.ascontiguousarray(x[..., start:stop])


def objective(s: ImplicitSettings) -> train_lib.Objective:
    """``L(p_main, y) + α · L(p_aux, y)`` (weights ``main`` = 1 and the swept ``aux``);
    dev score: CCC (regression) or macro-F1 (classes) of ``p_main``."""
    target = train_lib.objectives.TARGETS + TARGET
    terms = tuple(train_lib.Term(loss=s.loss, output=v, target=target) for v in ("main", "aux"))
    kind = "macro_f1" if s.task == "classification" else "ccc"
    score = train_lib.Score(kind=kind, output="main", target=target, dims=(0,))
    return train_lib.Objective(terms=terms, score=score)


def build(s: ImplicitSettings) -> ImplicitFusionRNN:
    """The model of the settings (``outputs``: 1, or the classes of a classifier)."""
    return models.build_model(
        "implicit_fusion_rnn",
        cell=s.cell,
        hidden_size=s.hidden_size,
        specific_layers=s.specific_layers,
        shared_layers=s.shared_layers,
        outputs=s.num_classes if s.task == "classification" else 1,
        init_scale=s.init_scale or None,
    )


def targets_of(batch: Mapping, task: str) -> np.ndarray:
    """The training target of a batch: the gold ``[N, T]``, as integer class indices
    for a classifier (the corpus stores a class index per utterance as its gold)."""
    if task != "classification":
        return batch["y"]
    y = np.asarray(batch["y"])
    if np.any(np.abs(y - np.round(y)) > 1e-6) or np.any(y < 0):
        raise ValueError("a classification corpus needs class indices 0..C-1 as its gold")
    return np.round(y).astype(np.int32)


def fusion_job(main: str):
    """``(ctx, upstream) -> Job`` of the α grid with ``main`` as the main modality."""

    def job(ctx: Context, upstream) -> Job:
        s: ImplicitSettings = ctx.settings
        aux = aux_of(ctx.corpus, main)
        data = {}
        for part in ("train", "dev"):
            b = ctx.batches[part]
            aux_x = view(ctx.corpus, b["x"], aux)
            if part != "train":  # selection never sees the auxiliary modality
                aux_x = np.zeros_like(aux_x)
            data[part] = {
                "inputs": {"main": view(ctx.corpus, b["x"], main), "aux": aux_x},
                "mask": b["mask"],
                "targets": {TARGET: targets_of(b, s.task)},
            }
        return Job(
            data=data,
            lengths={p: ctx.batches[p]["lengths"] for p in data},
            model_fn=lambda arch: build(s),
            archs=(None,),
            objective=objective(s),
            loss_weights={"main": 1.0, "aux": 0.0},
            settings=ctx.train,
            sweep={"aux": s.alphas},
        )

    return job


def predict_members(ctx: Context, model, params, main: str, device) -> list[dict]:
    """Main-only outputs of every member (leading ``[K]`` axis of ``params``) for every
    held-out partition: ``[{part: {"main": [T, C] per recording}}]``."""
    bs = int(ctx.train.train["eval_batch_size"])
    fn = jax.jit(
        jax.vmap(lambda p, x, m: predict_main(model, p, x, m, bs), in_axes=(0, None, None))
    )
    k = len(jax.tree.leaves(params)[0])
    out = [{} for _ in range(k)]
    with jax.default_device(device):
        for part, b in ctx.batches.items():
            if part == "train":
                continue
            res = jax.device_get(fn(params, view(ctx.corpus, b["x"], main), b["mask"]))["main"]
            for m in range(k):
                out[m][part] = {
                    "main": [np.asarray(res[m, i, :n]) for i, n in enumerate(b["lengths"])]
                }
    return out


def member_rows(job: Job, result, settings: list[dict], seeds: int) -> pd.DataFrame:
    """One row per member: ``arch, setting, seed, w/aux, best_dev_score, best_epoch,
    stopped_epoch`` (the trunk's ``members.csv`` columns)."""
    rows = []
    for m in range(len(settings) * seeds):
        rows.append(
            {
                "arch": "default",
                "setting": m // seeds,
                "seed": m % seeds,
                "w/aux": settings[m // seeds]["aux"],
                "best_dev_score": float(np.asarray(result.best_score)[m]),
                "best_epoch": int(np.asarray(result.best_epoch)[m]),
                "stopped_epoch": int(np.asarray(result.stopped_epoch)[m]),
            }
        )
    return pd.DataFrame(rows)


def train_grid(main: str):
    """``System.train`` of ``fusion_<main>``: every α (× seed) as members of one program
    (the engine's multi-member driver), best on dev; main-only predictions of every member."""

    def train(ctx: Context, job: Job, upstream, *, key, workdir, device, label) -> Trained:
        t0 = time.perf_counter()
        training.check_job_hash(fusion_name(main), job, workdir)
        seeds = int(job.settings.seeds)
        settings = training.weight_settings(job)
        keys = jax.random.wrap_key_data(
            np.tile(
                np.asarray(jax.random.key_data(train_lib.member_keys(key, seeds))),
                (len(settings), 1),
            )
        )
        model = job.model_fn(None)
        cfg = SimpleNamespace(**job.settings.train)
        spec = train_lib.train_spec_from_config(cfg, model, job.objective, **job.spec_overrides)
        result = train_lib.fit(
            spec,
            job.data,
            training.member_hparams(job, settings, seeds),
            keys,
            workdir=workdir / "default",
            options=train_lib.run_options_from_config(
                cfg,
                strategy=job.settings.strategy,
                chunk_size=job.settings.chunk_size,
                devices=(device,),
                label=label,
            ),
            init_params=job.init_params,
        )
        members = member_rows(job, result, settings, seeds)
        kept = training.select_member(members, job.settings.select)
        members["selected"] = np.arange(len(members)) == kept
        outs = predict_members(ctx, model, result.best_params, main, device)
        same = np.flatnonzero((members["setting"] == members["setting"][kept]).to_numpy())
        return Trained(
            name=fusion_name(main),
            label=label,
            model=model,
            params=jax.tree.map(lambda a: np.asarray(a)[kept], result.best_params),
            arch=None,
            dev_score=float(members["best_dev_score"].iloc[kept]),
            outputs=outs[kept],
            seconds=time.perf_counter() - t0,
            members=members,
            seed_outputs=tuple(outs[i] for i in same) if seeds > 1 else (),
            member_outputs=tuple(outs),
        )

    return train


def take_baseline(main: str):
    """``System.train`` of ``baseline_<main>``: the α = 0 member(s) of the grid (no new
    training; its job is ``None``)."""

    def train(ctx: Context, job, upstream, *, key, workdir, device, label) -> Trained:
        grid: Trained = upstream[fusion_name(main)]
        rows = np.flatnonzero((grid.members["w/aux"] == 0.0).to_numpy())
        sub = grid.members.iloc[rows].drop(columns="selected").reset_index(drop=True)
        kept = training.select_member(sub, ctx.train.select)
        sub["selected"] = np.arange(len(sub)) == kept
        outs = [grid.member_outputs[i] for i in rows]
        return Trained(
            name=baseline_name(main),
            label=label,
            model=grid.model,
            params=None,  # the α = 0 member's parameters live in the grid's checkpoints
            arch=None,
            dev_score=float(sub["best_dev_score"].iloc[kept]),
            outputs=outs[kept],
            seconds=0.0,
            members=sub,
            seed_outputs=tuple(outs) if len(outs) > 1 else (),
        )

    return train


def plan(ctx: Context) -> tuple[System, ...]:
    """Per direction: the α grid, then its α = 0 member as the baseline row."""
    s: ImplicitSettings = ctx.settings
    out = []
    for main in s.directions:
        aux_of(ctx.corpus, main)
        out.append(
            System(fusion_name(main), fusion_label(main), fusion_job(main), train=train_grid(main))
        )
        out.append(
            System(
                baseline_name(main),
                baseline_label(main),
                lambda ctx, upstream: None,
                depends=(fusion_name(main),),
                train=take_baseline(main),
            )
        )
    return tuple(out)


def row_order(directions) -> tuple[str, ...]:
    return tuple(n for m in directions for n in (baseline_name(m), fusion_name(m)))


def comparisons(labels) -> dict[str, dict[str, str]]:
    """Implicit fusion of each direction is tested against its baseline (role ``stl``:
    the single-modality training)."""
    out = {}
    for label in labels:
        if label.startswith("RNN implicit fusion ("):
            base = label.replace("RNN implicit fusion (", "RNN baseline (")
            if base in labels:
                out[label] = {"stl": base}
    return out
