"""Curriculum-learning baselines of the DDAT paper (CL-DNN, CL-GRU).

The training set is split into ``cl_parts`` (5) parts by perception-uncertainty level and
presented easiest first: stage ``s`` trains on parts ``1 … s``, warm-started from the best
dev parameters of stage ``s − 1``.

Decision (the paper is silent on how a *sequence* model sees "parts" of the training
set): the training recordings are cut into segments of ``cl_segment_s`` seconds (10 s by
default; the last, shorter segment of a recording is kept, padded and masked), each
segment is ranked by its mean annotated PU, and the ranked segments are split into
``cl_parts`` equal-count parts. Both the DNN (which sees frames independently anyway) and
the GRU-RNN train on these segments; dev evaluation and the reported predictions use the
whole recordings.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd

from ddat_jax import models
from ddat_jax.data import preprocess
from ddat_jax.data.corpus import Recording
from ddat_jax.experiment import training
from ddat_jax.experiment.systems import Context, Job, Trained
from ddat_jax.methods.ddat.settings import DDATSettings


def segment_recordings(recordings, segment_frames: int) -> list[Recording]:
    """Cuts recordings into consecutive segments of ``segment_frames`` frames (last may be shorter).

    Returns:
      Segments as Recordings named ``<name>@<start>`` with the labels sliced alongside.
    """
    if segment_frames < 1:
        raise ValueError(f"segment length must be >= 1 frame, got {segment_frames}")
    out = []
    for rec in recordings:
        if rec.pu is None:
            raise ValueError(
                f"curriculum learning ranks segments by perception uncertainty, but recording "
                f"{rec.name} has no individual ratings"
            )
        for start in range(0, rec.num_frames, segment_frames):
            sl = slice(start, min(start + segment_frames, rec.num_frames))
            out.append(
                Recording(
                    name=f"{rec.name}@{start}",
                    times=rec.times[sl],
                    features=rec.features[sl],
                    gold=rec.gold[sl],
                    ratings=None if rec.ratings is None else rec.ratings[sl],
                    pu=rec.pu[sl],
                )
            )
    return out


def curriculum_parts(segments, num_parts: int) -> list[list[int]]:
    """Splits segments into ``num_parts`` parts of increasing mean PU (easy → hard).

    Returns:
      ``num_parts`` lists of segment indices; ties are broken by segment order (stable).
    """
    if not 1 <= num_parts <= len(segments):
        raise ValueError(f"cl_parts must be in [1, {len(segments)}] segments, got {num_parts}")
    level = np.array([float(np.mean(s.pu)) for s in segments])
    order = np.argsort(level, kind="stable")
    return [list(map(int, p)) for p in np.array_split(order, num_parts)]


def stage_jobs(ctx: Context, job: Job) -> list[Job]:
    """The job of every curriculum stage: train on parts ``1 … s`` of the segments."""
    s: DDATSettings = ctx.settings
    seg_frames = int(round(s.cl_segment_s / ctx.corpus.frame_period))
    segments = segment_recordings(ctx.corpus.partitions["train"], seg_frames)
    parts = curriculum_parts(segments, s.cl_parts)
    settings = job.settings.replace_train(epochs=s.cl_epochs_per_stage)
    # Every stage is padded to all segments (masked rows never sampled), so the stages
    # share one compiled program; each still sees exactly its own minibatches.
    pad_to = max(seg.num_frames for seg in segments)
    jobs = []
    for stage in range(1, len(parts) + 1):
        b = preprocess.to_batch([segments[i] for p in parts[:stage] for i in p], pad_to=pad_to)
        train = {"inputs": b["x"], "mask": b["mask"], "targets": {"emotion": b["y"]}}
        jobs.append(
            dataclasses.replace(
                job,
                data={**job.data, "train": train},
                lengths={**job.lengths, "train": b["lengths"]},
                settings=settings,
                spec_overrides={"train_size": len(segments)},
            )
        )
    return jobs


def train_stages(ctx: Context, job: Job, *, key, workdir, device, label) -> Trained:
    """Trains the stages one after another, each warm-started from the last one's best."""
    params, seconds, result = None, 0.0, None
    jobs = stage_jobs(ctx, job)
    for stage, stage_job in enumerate(jobs, start=1):
        n = stage_job.data["train"]["inputs"].shape[0]
        print(f"[{label}] curriculum stage {stage}/{len(jobs)}: {n} segments", flush=True)
        result = training.train_job(
            f"stage{stage}",
            label,
            dataclasses.replace(stage_job, init_params=params),
            key=jax.random.fold_in(key, stage),
            workdir=workdir / f"stage{stage}",
            device=device,
        )
        params, seconds = result.params, seconds + result.seconds
    # Reported outputs: whole recordings of every partition, not the last stage's segments.
    outputs = training.predict_all(result.model, params, job, device)
    return dataclasses.replace(result, outputs=outputs, seconds=seconds, seed_outputs=())


def train_cl_dnn(ctx: Context, job: Job, upstream, *, key, workdir, device, label) -> Trained:
    """CL-DNN: the curriculum with the frame-level DNN (``cl_dnn_hidden``)."""
    hidden = ctx.settings.cl_dnn_hidden
    dnn = dataclasses.replace(
        job,
        model_fn=lambda _: models.build_model("dnn", hidden_sizes=hidden, heads={"emotion": 1}),
        archs=(None,),
    )
    return train_stages(ctx, dnn, key=key, workdir=workdir, device=device, label=label)


def train_cl_gru(ctx: Context, job: Job, upstream, *, key, workdir, device, label) -> Trained:
    """CL-GRU: the curriculum with the GRU-RNN; with several architectures each one runs
    the whole curriculum (``workdir/<layers>x<units>/``) and the best on dev is kept, as
    the paper searches every system's structure."""
    if len(job.archs) == 1:
        gru = dataclasses.replace(job, archs=(job.archs[0],))
        return train_stages(ctx, gru, key=key, workdir=workdir, device=device, label=label)
    results = []
    for arch in job.archs:
        gru = dataclasses.replace(job, archs=(arch,))
        sub = workdir / "x".join(str(v) for v in arch)
        results.append(train_stages(ctx, gru, key=key, workdir=sub, device=device, label=label))
    best = max(range(len(results)), key=lambda i: results[i].dev_score)
    members = pd.concat(
        [r.members.assign(selected=(i == best)) for i, r in enumerate(results)],
        ignore_index=True,
    )
    seconds = sum(r.seconds for r in results)
    return dataclasses.replace(results[best], members=members, seconds=seconds)
