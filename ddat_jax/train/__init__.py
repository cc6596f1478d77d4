"""Training: objectives, the engine, and the one multi-member driver.

* :mod:`ddat_jax.train.objectives`: ``LOSSES``, ``SCORES``, ``Term``, ``Score``,
  ``Objective``, ``heads_objective`` — what a training minimises and selects on.
* :mod:`ddat_jax.train.data`: the data format (any rank, several views) and its checks.
* :mod:`ddat_jax.train.engine`: ``TrainSpec``, the typed ``TrainState`` and small pure
  functions (``init_state``, ``train_step``, ``run_epoch``, ``evaluate``,
  ``run_epochs``); ``make_train(spec, data) -> train(hparams, key)``; ``predict``.
* :mod:`ddat_jax.train.loop`: ``fit(spec, data, hparams, keys, ...)``, the chunked,
  checkpointed, resumable driver over ``K`` members (vmap / map / shard_map).
* :mod:`ddat_jax.train.keys`: ``system_key(seed, name)``, ``member_keys``.
* :mod:`ddat_jax.train.config`: the ``train`` / ``hparams`` config sections and their
  builders; :mod:`ddat_jax.train.grid`: grids (expansion, padding, selection).
"""

from ddat_jax.train.config import (
    default_train_config,
    hparams_from_config,
    objective_from_config,
)
from ddat_jax.train.data import make_partition, prepare_data
from ddat_jax.train.engine import (
    History,
    TrainResult,
    TrainSpec,
    TrainState,
    evaluate,
    init_state,
    l2_penalty,
    make_train,
    predict,
    run_epoch,
    run_epochs,
    train_on,
    train_spec_from_config,
    train_step,
)
from ddat_jax.train.keys import member_keys, system_key
from ddat_jax.train.loop import (
    FitResult,
    RunOptions,
    broadcast_hparams,
    fit,
    run_options_from_config,
)
from ddat_jax.train.objectives import (
    LOSSES,
    SCORES,
    Objective,
    Score,
    Term,
    heads_objective,
)

__all__ = [
    "LOSSES",
    "SCORES",
    "FitResult",
    "History",
    "Objective",
    "RunOptions",
    "Score",
    "Term",
    "TrainResult",
    "TrainSpec",
    "TrainState",
    "broadcast_hparams",
    "default_train_config",
    "evaluate",
    "fit",
    "heads_objective",
    "hparams_from_config",
    "init_state",
    "l2_penalty",
    "make_partition",
    "make_train",
    "member_keys",
    "objective_from_config",
    "predict",
    "prepare_data",
    "run_epoch",
    "run_epochs",
    "run_options_from_config",
    "system_key",
    "train_on",
    "train_spec_from_config",
    "train_step",
]
