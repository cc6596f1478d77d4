"""Training engine: ``make_train(config, data) -> train(hparams, key)``.

* :mod:`ddat_jax.train.config`: ``default_train_config()`` (the ``train`` and
  ``hparams`` config sections) and ``hparams_from_config``.
* :mod:`ddat_jax.train.engine`: ``make_train(config, data, model)``, a whole
  training as one pure, jittable, vmappable function; ``predict``; the data
  format (``make_partition``, ``prepare_data``, ``partition_from_batch`` /
  ``data_from_batches`` from ``ddat_jax.data.preprocess.to_batch`` dicts).
* :mod:`ddat_jax.train.loop`: ``run_training(...)``, the chunked driver with
  orbax checkpoints, ``metrics.jsonl``, progress and NaN reports.
"""

from ddat_jax.train.config import default_train_config, hparams_from_config
from ddat_jax.train.engine import (
    RECONSTRUCTION,
    TrainFns,
    data_from_batches,
    frame_ccc,
    l2_penalty,
    make_partition,
    make_train,
    make_train_fns,
    partition_from_batch,
    predict,
    prepare_data,
)
from ddat_jax.train.loop import broadcast_hparams, make_run, run_training

__all__ = [
    "RECONSTRUCTION",
    "TrainFns",
    "broadcast_hparams",
    "data_from_batches",
    "default_train_config",
    "frame_ccc",
    "hparams_from_config",
    "l2_penalty",
    "make_partition",
    "make_run",
    "make_train",
    "make_train_fns",
    "partition_from_batch",
    "predict",
    "prepare_data",
    "run_training",
]
