"""Curriculum-learning baseline of the DDAT paper (METHODS.md §1).

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

Compile once: every stage's segments are padded to the same length and the train
partition to the number of all segments (``TrainSpec.train_size``; the padding rows are
fully masked and never sampled, and the shuffle and noise streams are counter based), so
all stages run one compiled program. A stage sees exactly the minibatches it would see
unpadded.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from ddat_jax import models
from ddat_jax.data import preprocess
from ddat_jax.data.corpus import Recording
from ddat_jax.ddat.systems import TrainedSystem, build_rnn, predict_partitions, train_system


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


def train_curriculum(
    name: str, config, corpus, batches, *, workdir: Path, key: jax.Array, arch
) -> TrainedSystem:
    """Trains ``cl_dnn`` or ``cl_gru`` stage by stage; returns the last stage's model.

    Args:
      name: ``"cl_dnn"`` or ``"cl_gru"``.
      config: experiment config (``ddat.cl_*`` fields; every stage trains
        ``ddat.cl_epochs_per_stage`` epochs instead of ``train.epochs``).
      corpus: the prepared corpus (train recordings are segmented).
      batches: partition → ``to_batch`` dict of whole recordings (dev selection, outputs).
      workdir: folder of this system (``stage<k>/`` per stage).
      key: PRNG key.
      arch: ``(layers, hidden)`` of the GRU (ignored for the DNN).
    """
    d = config.ddat
    seg_frames = int(round(float(d.cl_segment_s) / corpus.frame_period))
    segments = segment_recordings(corpus.partitions["train"], seg_frames)
    parts = curriculum_parts(segments, int(d.cl_parts))
    pad_to = max(s.num_frames for s in segments)
    overrides = {"epochs": int(d.cl_epochs_per_stage), "train_size": len(segments)}
    if name == "cl_dnn":
        hidden = tuple(int(h) for h in d.cl_dnn_hidden)
        model_fn = lambda _: models.build_model("dnn", hidden_sizes=hidden, heads={"emotion": 1})
        archs = [None]
    elif name == "cl_gru":
        model_fn = lambda a: build_rnn(config, a, {"emotion": 1})
        archs = [tuple(arch)]
    else:
        raise ValueError(f"unknown curriculum system {name!r}; valid: ['cl_dnn', 'cl_gru']")
    params, system, seconds = None, None, 0.0
    for stage in range(1, len(parts) + 1):
        chosen = [segments[i] for p in parts[:stage] for i in p]
        stage_batches = {"train": preprocess.to_batch(chosen, pad_to=pad_to), "dev": batches["dev"]}
        targets = {p: {"emotion": b["y"]} for p, b in stage_batches.items()}
        print(
            f"[{name}] curriculum stage {stage}/{len(parts)}: {len(chosen)} segments",
            flush=True,
        )
        system = train_system(
            name,
            config,
            stage_batches,
            targets,
            heads={"emotion": 1},
            workdir=workdir / f"stage{stage}",
            key=jax.random.fold_in(key, stage),
            model_fn=model_fn,
            archs=archs,
            init_params=params,
            spec_overrides=overrides,
        )
        params, seconds = system.params, seconds + system.seconds
    outputs = predict_partitions(
        system.model, params, batches, batch_size=int(config.train.eval_batch_size)
    )
    return TrainedSystem(name, system.model, params, system.arch, system.dev_ccc, outputs, seconds)
