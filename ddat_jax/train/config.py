"""Configuration of the training engine: ``config.train`` and ``config.hparams``.

Two sections, split by what JAX may trace:

* ``config.train`` holds everything **static** (shapes, loop lengths, choices
  between code paths). Changing one of these fields means a new compilation.
* ``config.hparams`` holds the **continuous** knobs. They become a pytree of
  float32 arrays (:func:`hparams_from_config`) that ``train(hparams, key)``
  takes as an argument, so a grid of them is one ``jax.vmap``.

Fields of ``config.train``:

* ``epochs`` (int, 150): maximum number of epochs (the scan length).
* ``batch_size`` (int, 4): sequences per minibatch. A partition whose size is
  not a multiple is padded with masked dummy sequences.
* ``patience`` (int, 20): early stopping after this many epochs without a new
  best dev CCC (``epoch - best_epoch >= patience``); ``<= 0`` disables it.
* ``optimizer`` (str, ``"adam"``): ``"adam"`` or ``"sgd"`` (SGD with momentum).
* ``momentum`` (float, 0.9): momentum of ``"sgd"`` (ignored by Adam). Static:
  only the learning rate is a swept optimizer hyper-parameter.
* ``nesterov`` (bool, False): Nesterov momentum for ``"sgd"``.
* ``eval_every`` (int, 1): dev evaluation every this many epochs (and always
  at the last epoch). Epochs without evaluation have ``dev_ccc = NaN``.
* ``eval_batch_size`` (int, 0): sequences per forward pass when predicting
  dev; 0 means the whole partition at once.
* ``primary`` (str, ``"emotion"``): the head whose first output dimension is
  scored on dev by :func:`objective_from_config` (CCC over the concatenation of
  all valid dev frames, AVEC 2016 style) to select the best parameters.
* ``loss`` (str, ``"mse"``): loss of every head not in ``head_losses`` (a key of
  :data:`ddat_jax.train.objectives.LOSSES`).
* ``head_losses`` (dict, ``{}``): per-head loss, ``{"emotion": "ccc"}``.
* ``log_every`` (int, 1): epochs per compiled chunk of :func:`ddat_jax.train.fit`
  (:func:`~ddat_jax.train.loop.run_options_from_config`); metrics and progress
  are written at chunk ends.
* ``checkpoint_every`` (int, 10): epochs between orbax checkpoints (a multiple
  of ``log_every``); the last epoch is always saved.
* ``keep_checkpoints`` (int, 2): checkpoints kept on disk.
* ``on_nonfinite`` (str, ``"warn"``): when a member's loss becomes NaN/Inf:
  ``"warn"`` (the member is frozen at its last finite state, the others go on)
  or ``"raise"`` (``FloatingPointError`` after the chunk).

Fields of ``config.hparams``:

* ``learning_rate`` (float, 1e-3), through ``optax.inject_hyperparams``.
* ``noise_std`` (float, 0.0): std of the Gaussian noise added to the inputs
  of training minibatches (the methods use 0.2 for BLSTM soft prediction).
* ``l2`` (float, 0.0): weight ``λ`` of ``λ·Σ w²`` over the weight matrices
  (parameter arrays with ``ndim >= 2``; biases are not regularised).
* ``loss_weights`` (dict, ``{}``): per-head loss weight; a head not listed
  has weight 1.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp
import ml_collections

from ddat_jax.train.engine import OPTIMIZERS
from ddat_jax.train.loop import NONFINITE_POLICIES
from ddat_jax.train.objectives import LOSSES, Objective, Score, heads_objective


def default_train_config() -> ml_collections.ConfigDict:
    """Returns the default ``train`` and ``hparams`` sections.

    Configs embed them as ``config.train = default_train_config().train`` and
    ``config.hparams = default_train_config().hparams`` (or ``config.update``).

    Returns:
        A ``ConfigDict`` with fields ``train`` and ``hparams`` documented in
        this module's docstring.
    """
    config = ml_collections.ConfigDict()
    config.train = ml_collections.ConfigDict(
        {
            "epochs": 150,
            "batch_size": 4,
            "patience": 20,
            "optimizer": "adam",
            "momentum": 0.9,
            "nesterov": False,
            "eval_every": 1,
            "eval_batch_size": 0,
            "primary": "emotion",
            "loss": "mse",
            "head_losses": {},
            "log_every": 1,
            "checkpoint_every": 10,
            "keep_checkpoints": 2,
            "on_nonfinite": "warn",
        }
    )
    config.hparams = ml_collections.ConfigDict(
        {
            "learning_rate": 1e-3,
            "noise_std": 0.0,
            "l2": 0.0,
            "loss_weights": {},
        }
    )
    return config


def train_section(config: Any) -> Any:
    """Returns ``config.train`` if present, else ``config`` itself."""
    return config.train if "train" in config else config


def hparams_from_config(
    config: Any, heads: Iterable[str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Builds the ``hparams`` pytree that ``train(hparams, key)`` takes.

    The pytree's structure is part of the compiled program's signature: give
    ``heads`` (e.g. ``train.heads``) so that every head has an explicit weight
    and two hparams built for the same model always share one compilation.

    Args:
        config: a config with a ``hparams`` section (or the section itself).
        heads: the weight keys (e.g. ``objective.weight_keys``); keys without a
            weight get 1.0.
        **overrides: replacement values, e.g. ``learning_rate=3e-4`` or
            ``loss_weights={"emotion": 1.5, "uncertainty": 0.5}``. Values may be
            arrays with a leading grid axis.

    Returns:
        ``{"learning_rate", "noise_std", "l2": f32 arrays, "loss_weights":
        {head: f32 array}}``.
    """
    section = config.hparams if "hparams" in config else config
    values = {
        "learning_rate": section.learning_rate,
        "noise_std": section.noise_std,
        "l2": section.l2,
        "loss_weights": dict(section.loss_weights),
    }
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"Unknown hparams {sorted(unknown)}; valid: {sorted(values)}")
    values.update(overrides)
    if not isinstance(values["loss_weights"], Mapping):
        raise ValueError("hparams.loss_weights must be a dict head -> weight")
    if heads is not None:
        values["loss_weights"] = {h: 1.0 for h in heads} | dict(values["loss_weights"])
    return {
        "learning_rate": jnp.asarray(values["learning_rate"], jnp.float32),
        "noise_std": jnp.asarray(values["noise_std"], jnp.float32),
        "l2": jnp.asarray(values["l2"], jnp.float32),
        "loss_weights": {
            str(k): jnp.asarray(v, jnp.float32) for k, v in values["loss_weights"].items()
        },
    }


def validate_train_config(train: Any) -> None:
    """Raises ``ValueError`` for an invalid ``config.train`` section."""
    if train.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {train.optimizer!r}; valid: {list(OPTIMIZERS)}")
    kinds = [train.loss, *dict(train.head_losses).values()]
    for kind in kinds:
        if kind not in LOSSES:
            raise ValueError(f"Unknown loss kind {kind!r}; valid: {sorted(LOSSES)}")
    if train.on_nonfinite not in NONFINITE_POLICIES:
        raise ValueError(
            f"Unknown on_nonfinite {train.on_nonfinite!r}; valid: {list(NONFINITE_POLICIES)}"
        )
    for name in ("epochs", "batch_size", "eval_every", "log_every", "checkpoint_every"):
        if int(train[name]) < 1:
            raise ValueError(f"config.train.{name} must be >= 1, got {train[name]}")
    if int(train.checkpoint_every) % int(train.log_every):
        raise ValueError(
            "config.train.checkpoint_every must be a multiple of config.train.log_every "
            f"(got {train.checkpoint_every} and {train.log_every})"
        )


def objective_from_config(train: Any, heads: Iterable[str]) -> Objective:
    """The per-head objective of a ``config.train`` section.

    Every head in ``heads`` gets a term against the data target of the same name with
    the loss ``train.head_losses[head]`` (default ``train.loss``); the dev score is the
    CCC of dim 0 of ``train.primary``.
    """
    validate_train_config(train)
    kinds = {str(h): str(dict(train.head_losses).get(h, train.loss)) for h in heads}
    unknown = set(dict(train.head_losses)) - set(kinds)
    if unknown:
        raise ValueError(f"config.train.head_losses names unknown heads {sorted(unknown)}")
    primary = str(train.primary)
    if primary not in kinds:
        raise ValueError(f"primary head {primary!r} is not a model head; heads: {sorted(kinds)}")
    return heads_objective(kinds, Score("ccc", output=primary, target=f"targets/{primary}"))
