"""The CER-MTL plan: one system per table cell group.

==============================  ===================================================
``mtl_<variant>_<loss>_n<N>``   MTL network on a modality set, one loss, N = windows[0]
                                (Tables I/II: every variant × loss)
``stl_<dim>_n<N>``              one STL network per dimension, multimodal, first loss
                                (Table III)
``mtl_<variant0>_<loss0>_n<N>`` the multimodal MTL network for every further N (Table IV)
==============================  ===================================================

Every system's data are context-padded chunks (:mod:`.data`) of the prepared corpus's
recordings with the variant's feature columns; the objective is one term
``LOSSES[loss](emotion, targets/emotion)`` over the ``M`` task columns, which the trunk's
losses average over the trailing dim (task weights 1/M), and the dev score is the mean
CCC over the tasks (early stopping and selection on mean dev CCC).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import pandas as pd

from ddat_jax import models
from ddat_jax import train as train_lib
from ddat_jax.experiment import training
from ddat_jax.experiment.systems import Context, Job, System, Trained
from ddat_jax.methods.cer_mtl import data as cer_data
from ddat_jax.methods.cer_mtl.settings import CERSettings
from ddat_jax.models.cer import context_frames


@dataclasses.dataclass(frozen=True)
class Spec:
    """One system: ``kind`` (``mtl``/``stl``), variant index, loss, N and its tasks."""

    name: str
    label: str
    kind: str
    variant: int
    loss: str
    window: int
    dims: tuple[str, ...]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def specs(s: CERSettings) -> tuple[Spec, ...]:
    """Every system of the plan, in table order (module docstring)."""
    out = []
    for v in range(len(s.variant_labels)):
        for loss in s.losses:
            out.append(_mtl(s, v, loss, s.window))
    if s.stl:
        v0 = s.variant_labels[0]
        for d in s.dims:
            name = f"stl_{_slug(d)}_n{s.window}"
            label = f"STL {d} {v0} {s.losses[0].upper()} N={s.window}"
            out.append(Spec(name, label, "stl", 0, s.losses[0], s.window, (d,)))
    for n in s.windows[1:]:
        out.append(_mtl(s, 0, s.losses[0], n))
    return tuple(out)


def _mtl(s: CERSettings, v: int, loss: str, n: int) -> Spec:
    vlabel = s.variant_labels[v]
    name = f"mtl_{_slug(vlabel)}_{loss}_n{n}"
    return Spec(name, f"MTL {vlabel} {loss.upper()} N={n}", "mtl", v, loss, n, s.dims)


def gold_of(rec, corpus, dim: str) -> np.ndarray:
    """The gold standard ``[T]`` of ``dim`` (the corpus's first dimension or another)."""
    if dim == corpus.dimension:
        return rec.gold
    if dim not in rec.other_gold:
        raise ValueError(
            f"recording {rec.name!r} has no gold standard for {dim!r}; the corpus has "
            f"{list(corpus.dimensions)} (config.data.dimension='a+b' loads several)"
        )
    return rec.other_gold[dim]


def columns(corpus, modalities: tuple[str, ...]) -> np.ndarray:
    """Feature column indices of ``modalities`` (in the corpus's concatenation order)."""
    cols = [np.arange(*corpus.modality_slices[m]) for m in modalities]
    return np.concatenate(cols)


@functools.lru_cache(maxsize=2)
def _inputs(ctx: Context, variant: int, window: int):
    """Chunked inputs and masks of every partition (shared by the systems of a variant/N)."""
    s: CERSettings = ctx.settings
    left, right = context_frames(window, s.stride, s.causal)
    cols = columns(ctx.corpus, s.variants[variant])
    out = {}
    for part, recs in ctx.corpus.partitions.items():
        feats = [r.features[:, cols] for r in recs]
        out[part] = cer_data.chunk_partition(feats, None, chunk=s.chunk, left=left, right=right)
    return out


def thin(part: dict, every: int) -> dict:
    """Every ``every``-th sequence of an engine partition (``[::every]`` on every array)."""
    return {
        "inputs": part["inputs"][::every],
        "mask": part["mask"][::every],
        "targets": {k: v[::every] for k, v in part["targets"].items()},
    }


def job_for(spec: Spec):
    """The job builder of one system."""

    def job(ctx: Context, upstream) -> Job:
        s: CERSettings = ctx.settings
        left, right = context_frames(spec.window, s.stride, s.causal)
        data = {}
        for part, base in _inputs(ctx, spec.variant, spec.window).items():
            recs = ctx.corpus.partitions[part]
            d = {"inputs": base["inputs"], "mask": base["mask"], "targets": {}}
            if all(r.has_labels for r in recs):
                gold = [np.stack([gold_of(r, ctx.corpus, m) for m in spec.dims], 1) for r in recs]
                y = [cer_data.chunk_array(g, s.chunk, left, right) for g in gold]
                d["targets"] = {"emotion": np.concatenate(y).astype(np.float32)}
            data[part] = d
        if "train" in data and s.train_every > 1:
            data["train"] = thin(data["train"], s.train_every)
        lengths = {p: np.full(d["mask"].shape[0], d["mask"].shape[1]) for p, d in data.items()}
        term = train_lib.Term(loss=spec.loss, output="emotion", target="targets/emotion")
        score = train_lib.Score(
            kind="mean_ccc", output="emotion", target="targets/emotion", dims=()
        )
        tasks = len(spec.dims)
        return Job(
            data=data,
            lengths=lengths,
            model_fn=lambda arch: models.build_model(
                "cer", tasks=tasks, window=spec.window, stride=s.stride, causal=s.causal
            ),
            archs=(None,),
            objective=train_lib.Objective(terms=(term,), score=score),
            loss_weights={"emotion": 1.0},
            settings=ctx.train,
        )

    return job


def restandardise(train: dict, other: dict) -> tuple[dict, dict]:
    """Both partitions z-scored with the statistics of ``train``'s valid (target) frames.

    The corpus was standardised with the statistics of every recording (it has no train
    partition); z-scoring again with a fold's train statistics equals standardising the raw
    features with them (affine maps compose), so no held-out statistics leak into a fold.
    """
    x = train["inputs"][train["mask"]].astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0, ddof=1)
    std = np.where(std > 1e-8, std, 1.0)
    z = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return {**train, "inputs": z(train["inputs"])}, {**other, "inputs": z(other["inputs"])}


def _fold_job(job: Job, held: str, every: int = 1) -> Job:
    """The job of one fold: train on every other partition (every ``every``-th chunk),
    select on ``held``."""
    rest = [p for p in job.data if p != held]
    train = {
        "inputs": np.concatenate([job.data[p]["inputs"] for p in rest]),
        "mask": np.concatenate([job.data[p]["mask"] for p in rest]),
        "targets": {"emotion": np.concatenate([job.data[p]["targets"]["emotion"] for p in rest])},
    }
    train, dev = restandardise(thin(train, every), job.data[held])
    lengths = {
        "train": np.full(len(train["mask"]), train["mask"].shape[1]),
        "dev": job.lengths[held],
    }
    return dataclasses.replace(job, data={"train": train, "dev": dev}, lengths=lengths)


def train_folds(ctx: Context, job: Job, upstream, *, key, workdir, device, label) -> Trained:
    """Leave-one-partition-out: one network per held-out partition (``fold_<partition>/``).

    ``outputs[p]`` are the predictions of the network that did not see ``p`` (out-of-fold);
    ``dev_score`` is the mean of the folds' best dev scores.
    """
    folds = {}
    for k, held in enumerate(job.data):
        folds[held] = training.train_job(
            f"{workdir.name}/fold_{held}",
            f"{label} [fold {held}]",
            _fold_job(job, held, ctx.settings.train_every),
            key=jax.random.fold_in(key, k),
            workdir=workdir / f"fold_{held}",
            device=device,
        )
    first = next(iter(folds.values()))
    members = pd.concat([t.members.assign(fold=p) for p, t in folds.items()], ignore_index=True)
    return Trained(
        name=workdir.name,
        label=label,
        model=first.model,
        params=first.params,
        arch=first.arch,
        dev_score=float(np.mean([t.dev_score for t in folds.values()])),
        outputs={p: t.outputs["dev"] for p, t in folds.items()},
        seconds=float(sum(t.seconds for t in folds.values())),
        members=members,
    )


def plan(ctx: Context) -> tuple[System, ...]:
    """The systems; only those predicting the corpus's first dimension enter the generic
    CCC tables (whose gold standard is that dimension); all enter the paper's tables.
    With ``folds`` every system trains leave-one-partition-out (:func:`train_folds`)."""
    first = ctx.corpus.dimension
    fit = train_folds if ctx.settings.folds else None
    return tuple(
        System(name=p.name, label=p.label, job=job_for(p), train=fit, in_tables=p.dims[0] == first)
        for p in specs(ctx.settings)
    )


def comparisons(labels) -> dict:
    """No significance columns in the generic tables (the paper tables test the effects)."""
    return {}
