"""The soft-prediction plan: per emotion dimension and modality, two grid programs.

Every system trains the BLSTM with two heads, ``emotion`` (E, the EWE gold standard) and
``sigma`` (the scaled perception uncertainty), on ``w_E·MSE_E + w_σ·MSE_σ`` with
``w_σ = total − w_E``, every ``w_E`` of the grid a member of ONE compiled program
(``Job.sweep``/``Job.tied``). The two systems of a (dimension, modality) differ only in the
dev score that picks each member's best epoch and the kept member:

=======================  =========================================================
``<dim>_<mod>_E``        dev score CCC of E     (E-primary network)
``<dim>_<mod>_sigma``    dev score CCC of σ     (σ-primary network)
=======================  =========================================================

The grid's ends are the single-task networks (``w_E = total``: E alone, the σ head gets
no gradient; ``w_E = 0``: σ alone). The tables (:mod:`.evaluate`) take single-task from
those ends and multi-task as the best *interior* setting on dev, from the members'
predictions (``predict_members=True``).

The run's corpus is one dimension (``config.data.dimension``); the others are loaded the
same way (:func:`corpus_of`) so that one run fills the paper's arousal and valence
columns.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping

import ml_collections
import numpy as np

from ddat_jax import models
from ddat_jax import train as train_lib
from ddat_jax.data import corpus as corpus_lib
from ddat_jax.data import prepare, preprocess, targets
from ddat_jax.experiment.systems import Context, Job, System
from ddat_jax.methods.soft_prediction.settings import HEAD, TARGETS, SoftSettings


def system_name(dim: str, mod: str, target: str) -> str:
    """``"arousal_audio_E"``: the system of one dimension, modality and primary target."""
    return f"{dim}_{mod}_{target}"


def system_label(dim: str, mod: str, target: str) -> str:
    """Row label, e.g. ``"audio arousal E-grid"``."""
    return f"{mod} {dim} {target}-grid"


@functools.lru_cache(maxsize=4)
def _load(data_json: str, dim: str):
    return prepare.prepare_corpus(_data_cfg(data_json, dim))


def _data_cfg(data_json: str, dim: str) -> ml_collections.ConfigDict:
    data = json.loads(data_json)
    data["dimension"] = dim
    data["partitions"] = tuple(data["partitions"])
    return ml_collections.ConfigDict(data)


def raw_corpus(s: SoftSettings, dim: str):
    """The corpus of ``dim`` as loaded (labels not shifted, features not standardised)."""
    cfg = _data_cfg(s.data_json, dim)
    return corpus_lib.load_corpus(
        prepare.resolve_root(cfg),
        modality=prepare.modalities_of(cfg),
        dimension=dim,
        layout=cfg.layout,
        gold=cfg.gold,
        pu_ddof=cfg.pu_ddof,
        partitions=tuple(cfg.partitions),
    )


def corpus_of(ctx: Context, dim: str):
    """The prepared corpus of ``dim`` (the run's own for ``config.data.dimension``)."""
    if dim == ctx.corpus.dimension:
        return ctx.corpus
    return _load(ctx.settings.data_json, dim)


def scaler_of(ctx: Context, dim: str) -> targets.PUScaler:
    """The PU scaler of ``dim``, fitted on its train partition."""
    recs = corpus_of(ctx, dim).partitions["train"]
    return targets.fit_pu_scaler([r.pu for r in recs], ctx.settings.pu_scaling)


def gold_of(ctx: Context, dim: str, target: str, part: str) -> list[np.ndarray]:
    """Per-recording ``[T]`` gold of a target: EWE gold (E) or the scaled PU (sigma)."""
    recs = corpus_of(ctx, dim).partitions[part]
    if target == "E":
        return [np.asarray(r.gold, np.float64) for r in recs]
    scale = scaler_of(ctx, dim)
    return [np.asarray(scale(r.pu), np.float64) for r in recs]


def _batches(ctx: Context, dim: str) -> Mapping[str, dict]:
    if dim == ctx.corpus.dimension:
        return ctx.batches
    corpus = corpus_of(ctx, dim)
    return {p: preprocess.to_batch(recs) for p, recs in corpus.partitions.items() if recs}


def build_model(s: SoftSettings):
    """The BLSTM with an ``emotion`` and a ``sigma`` head."""
    layers, units = s.arch
    return models.build_model(
        "mtl_rnn",
        cell=s.cell,
        hidden_size=int(units),
        num_layers=int(layers),
        bidirectional=s.bidirectional,
        heads={"emotion": 1, "sigma": 1},
        init_scale=s.init_scale or None,
    )


def grid_job(dim: str, mod: str, target: str):
    """``(ctx, upstream) -> Job``: the w_E grid of one dimension and modality."""

    def job(ctx: Context, upstream) -> Job:
        s: SoftSettings = ctx.settings
        a, b = ctx.corpus.modality_slices[mod]
        scale = scaler_of(ctx, dim)
        data, lengths = {}, {}
        for part, batch in _batches(ctx, dim).items():
            tg = {}
            if batch["has_labels"] and batch["has_pu"]:
                tg = {"emotion": batch["y"], "sigma": scale(batch["pu"]) * batch["mask"]}
            x = batch["x"][:, :, a:b]
            data[part] = {"inputs": x, "mask": batch["mask"], "targets": tg}
            lengths[part] = batch["lengths"]
        terms = tuple(
            train_lib.Term(loss="mse", output=HEAD[t], target=f"targets/{HEAD[t]}") for t in TARGETS
        )
        score = train_lib.Score(kind="ccc", output=HEAD[target], target=f"targets/{HEAD[target]}")
        return Job(
            data=data,
            lengths=lengths,
            model_fn=lambda arch: build_model(s),
            archs=(None,),
            objective=train_lib.Objective(terms=terms, score=score),
            loss_weights={"emotion": 1.0, "sigma": 1.0},
            settings=ctx.train,
            sweep={"emotion": s.w_grid},
            tied={"sigma": ("emotion", s.total)},
            predict_members=True,
        )

    return job


def plan(ctx: Context) -> tuple[System, ...]:
    """Two grid systems per dimension × modality; only the run's dimension's E-primary
    systems appear in the generic CCC tables (their gold is the run corpus's)."""
    s: SoftSettings = ctx.settings
    out = []
    for dim in s.dimensions:
        for mod in s.modalities:
            for target in TARGETS:
                out.append(
                    System(
                        system_name(dim, mod, target),
                        system_label(dim, mod, target),
                        grid_job(dim, mod, target),
                        in_tables=(dim == ctx.corpus.dimension and target == "E"),
                    )
                )
    return tuple(out)


def check_corpus(corpus) -> None:
    """Train and dev need individual ratings (EWE gold and PU); at least one modality."""
    for part in ("train", "dev"):
        recs = corpus.partitions.get(part) or []
        if not recs or not all(r.has_labels and r.pu is not None for r in recs):
            raise ValueError(
                f"partition {part!r} needs individual ratings (gold standard and perception "
                "uncertainty) for training and model selection"
            )
