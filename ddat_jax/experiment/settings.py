"""The generic settings of a run: a frozen view of ``seed``, ``train``, ``hparams``,
``grid``, ``postprocess`` and ``run``, validated before any data is loaded.

:func:`experiment_settings` is the only reader of those config sections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ddat_jax.experiment.systems import TrainSettings

TRAIN_FIELDS = (
    "epochs",
    "batch_size",
    "patience",
    "optimizer",
    "momentum",
    "nesterov",
    "eval_every",
    "eval_batch_size",
    "log_every",
    "checkpoint_every",
    "keep_checkpoints",
    "on_nonfinite",
)
HPARAM_FIELDS = ("learning_rate", "noise_std", "l2")
CHOICES = {
    "train.optimizer": ("adam", "sgd"),
    "train.on_nonfinite": ("warn", "raise"),
    "grid.select": ("mean_over_seeds", "best_member"),
    "grid.strategy": ("auto", "vmap", "map", "chunked", "loop"),
    "postprocess.grids": ("ddat", "avec2016"),
}


@dataclasses.dataclass(frozen=True)
class ExperimentSettings:
    """Generic settings of a run.

    Attributes:
      seed: root seed (every system's PRNG stream is ``fold_in(key(seed), crc32(name))``).
      train: how systems train (:class:`TrainSettings`).
      postprocess: ``{"enabled", "grids", "per_recording"}``.
      parallel: systems trained at once (0 = one per local device).
    """

    seed: int
    train: TrainSettings
    postprocess: Mapping[str, Any]
    parallel: int = 0


def check_choice(config, field: str) -> str:
    """The value of ``field`` (``"section.name"``) if it is one of ``CHOICES[field]``."""
    section, name = field.split(".")
    value = config[section][name]
    if value not in CHOICES[field]:
        raise ValueError(
            f"config.{field}={value!r} is not valid; valid values: {list(CHOICES[field])}"
        )
    return str(value)


def _positive(config, field: str, minimum: int = 1) -> int:
    section, name = field.split(".")
    value = int(config[section][name])
    if value < minimum:
        raise ValueError(f"config.{field} must be >= {minimum}, got {value}")
    return value


def check_data(data) -> None:
    """The ``config.data`` fields that can be checked without reading the corpus."""
    from ddat_jax.data import prepare
    from ddat_jax.data.corpus import GOLD_METHODS, LAYOUTS

    for name, valid in (("layout", LAYOUTS), ("gold", tuple(GOLD_METHODS))):
        if data[name] not in valid:
            raise ValueError(
                f"config.data.{name}={data[name]!r} is not valid; valid values: {list(valid)}"
            )
    if not data.root and data.preset not in prepare.PRESETS:
        raise ValueError(
            f"config.data.preset={data.preset!r} is not an embedded corpus; valid values: "
            f"{sorted(prepare.PRESETS)} (or give your corpus with config.data.root)"
        )
    if not str(data.modality).strip("+"):
        raise ValueError("config.data.modality is empty; e.g. 'audio' or 'audio+video_geometric'")


def experiment_settings(config) -> ExperimentSettings:
    """Builds and validates the generic settings (raises ``ValueError`` naming the field)."""
    check_data(config.data)
    for field in CHOICES:
        check_choice(config, field)
    for field in ("train.epochs", "train.batch_size", "train.eval_every", "train.log_every"):
        _positive(config, field)
    for field in ("train.checkpoint_every", "train.keep_checkpoints", "grid.seeds"):
        _positive(config, field)
    _positive(config, "grid.chunk_size")
    if int(config.train.checkpoint_every) % int(config.train.log_every):
        raise ValueError(
            "config.train.checkpoint_every must be a multiple of config.train.log_every "
            f"(got {config.train.checkpoint_every} and {config.train.log_every})"
        )
    if int(config.run.parallel) < 0:
        raise ValueError(f"config.run.parallel must be >= 0, got {config.run.parallel}")
    train = TrainSettings(
        train={f: config.train[f] for f in TRAIN_FIELDS},
        hparams={f: float(config.hparams[f]) for f in HPARAM_FIELDS},
        seeds=int(config.grid.seeds),
        select=str(config.grid.select),
        strategy=str(config.grid.strategy),
        chunk_size=int(config.grid.chunk_size),
    )
    pp = config.postprocess
    return ExperimentSettings(
        seed=int(config.seed),
        train=train,
        postprocess={
            "enabled": bool(pp.enabled),
            "grids": str(pp.grids),
            "per_recording": bool(pp.per_recording),
        },
        parallel=int(config.run.parallel),
    )
