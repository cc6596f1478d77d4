"""What a method plans and what training gives back: ``System``, ``Job``, ``Trained``.

A *system* is one row of a paper's table (STL, MTL-RE, DDAT-PU, …). A method's plan is a
tuple of systems; each says how to build its training :class:`Job` from the prepared
corpus and the systems it depends on, and optionally replaces the standard training
(curriculum stages) or adds a step after it (DDAT stage 1 writes its difficulty signals).
The experiment layer (:mod:`ddat_jax.experiment.run`) trains them in dependency order,
independent ones side by side on the available devices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Everything static about how a system is trained (from ``config.train``/``hparams``).

    Attributes:
      train: the ``config.train`` fields as a plain dict (epochs, batch_size, patience,
        optimizer, momentum, nesterov, eval_every, eval_batch_size, log_every,
        checkpoint_every, keep_checkpoints, on_nonfinite).
      hparams: the continuous knobs (learning_rate, noise_std, l2); loss weights come
        from the job.
      seeds: trainings per architecture (members ``arch × seed``), ``config.grid.seeds``.
      select: ``"mean_over_seeds"`` (best architecture by its mean dev score over seeds,
        then its best seed) or ``"best_member"``.
      strategy: how members share a program (``config.grid.strategy``).
      chunk_size: members per vmapped chunk of the ``"chunked"`` strategy.
    """

    train: Mapping[str, Any]
    hparams: Mapping[str, float]
    seeds: int = 1
    select: str = "mean_over_seeds"
    strategy: str = "auto"
    chunk_size: int = 4

    def replace_train(self, **changes) -> TrainSettings:
        """A copy with some ``train`` fields changed (e.g. the curriculum's epochs)."""
        return dataclasses.replace(self, train={**self.train, **changes})


@dataclasses.dataclass(frozen=True)
class Job:
    """One system's training problem.

    Attributes:
      data: the engine's data: partition → ``{"inputs", "mask", "targets"}`` with
        ``[N, T, ...]`` arrays; ``train`` and ``dev`` are trained/selected on, every
        partition is predicted.
      lengths: partition → ``[N]`` frames per recording (to cut the padding off).
      model_fn: ``arch -> linen module``.
      archs: the architectures to try (best on dev kept); ``(None,)`` for a model
        without one.
      objective: the engine's objective (terms + dev score).
      loss_weights: hparams loss weight of every term.
      settings: how to train.
      init_params: warm start (``None``: the model's initialisation).
      spec_overrides: fields of the engine's ``TrainSpec`` to set, e.g. ``train_size``
        (train partitions padded to one size share one compiled program).
      sweep: loss weights swept as members of one program, ``{weight: values}``
        (e.g. ``{"aux": (0.0, 0.1, ..., 1.0)}``); the best setting on dev is kept.
      tied: weights derived from a swept one, ``{weight: (source, total)}`` →
        ``weight = total − source`` (e.g. ``{"sigma": ("emotion", 2.0)}``).
      predict_members: also predict every member (``Trained.member_outputs``), for
        figures over the swept values.
    """

    data: Mapping[str, Mapping[str, Any]]
    lengths: Mapping[str, np.ndarray]
    model_fn: Callable[[Any], Any]
    archs: tuple
    objective: Any
    loss_weights: Mapping[str, float]
    settings: TrainSettings
    init_params: Any = None
    spec_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sweep: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    tied: Mapping[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    predict_members: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Trained:
    """A trained system.

    Attributes:
      name: system key, e.g. ``"mtl_re"``.
      label: table row label, e.g. ``"MTL-RE"``.
      model: the kept linen module; params: its best-dev parameters.
      arch: the kept architecture (``None`` for a model without one).
      dev_score: best dev score of the kept member.
      outputs: partition → output name → per-recording ``[T, ...]`` arrays.
      seconds: wall time of the training(s) and predictions.
      members: one row per trained member (``arch``, ``seed``, ``best_dev_score``,
        ``best_epoch``, ``selected``).
      seed_outputs: with several seeds, the outputs of every seed of the kept
        architecture and setting (for mean ± std over seeds); else empty.
      member_outputs: the outputs of every member (row order of ``members``) when the
        job asked for them; else empty.
    """

    name: str
    label: str
    model: Any
    params: Any
    arch: Any
    dev_score: float
    outputs: Mapping[str, Mapping[str, list[np.ndarray]]]
    seconds: float
    members: pd.DataFrame
    seed_outputs: tuple = ()
    member_outputs: tuple = ()


@dataclasses.dataclass(frozen=True, eq=False)
class Context:
    """What every system of a run sees (read-only).

    Attributes:
      corpus: the prepared corpus (delay-compensated, standardised).
      settings: the method's settings (a frozen dataclass of the method).
      train: the run's :class:`TrainSettings`.
      seed: the run's root seed.
      workdir: the run's folder.
      batches: partition → padded arrays of the corpus (``to_batch`` dicts).
    """

    corpus: Any
    settings: Any
    train: TrainSettings
    seed: int
    workdir: Path
    batches: Mapping[str, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class System:
    """One row of a method's tables.

    Attributes:
      name: key (folder name under ``workdir/train``; its PRNG stream is a function of it).
      label: row label in the tables.
      job: ``(context, upstream) -> Job``; ``upstream`` maps each dependency's name to
        its :class:`Trained`.
      depends: names of the systems that must be trained first.
      train: replaces the standard training: ``(context, job, upstream, *, key, workdir,
        device, label) -> Trained`` (curriculum stages); ``None`` = standard.
      after: ``(context, trained) -> None`` run once trained (DDAT stage 1 writes its
        difficulty signals for stage 2).
      in_tables: whether the row appears in the tables (a stage-1 model may not).
    """

    name: str
    label: str
    job: Callable[[Context, Mapping[str, Trained]], Job]
    depends: tuple[str, ...] = ()
    train: Callable[..., Trained] | None = None
    after: Callable[[Context, Trained], None] | None = None
    in_tables: bool = True
