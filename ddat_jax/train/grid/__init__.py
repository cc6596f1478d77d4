"""Grids of trainings: expansion, host devices, architecture padding, selection.

* :mod:`~ddat_jax.train.grid.expand`: the ``grid`` config section -> member table,
  the members' hparams and keys.
* :mod:`~ddat_jax.train.grid.devices`: ``configure_host_devices``.
* :mod:`~ddat_jax.train.grid.padding`: ``group_shapes``, ``padded_init_params``.
* :mod:`~ddat_jax.train.grid.select`: ``select_best``, results files.
* :mod:`~ddat_jax.train.grid.run`: ``run_grid`` = expansion + ``fit`` + selection.
"""

from ddat_jax.train.grid.devices import configure_host_devices
from ddat_jax.train.grid.expand import (
    GROUPINGS,
    SELECTIONS,
    default_grid_config,
    expand_grid,
    frange,
    member_hparams,
    table_keys,
    validate_grid_config,
)
from ddat_jax.train.grid.padding import group_shapes, padded_init_params
from ddat_jax.train.grid.run import run_grid, score_members
from ddat_jax.train.grid.select import load_best_params, select_best, write_results
from ddat_jax.train.members import STRATEGIES, choose_strategy

__all__ = [
    "GROUPINGS",
    "SELECTIONS",
    "STRATEGIES",
    "choose_strategy",
    "configure_host_devices",
    "default_grid_config",
    "expand_grid",
    "frange",
    "group_shapes",
    "load_best_params",
    "member_hparams",
    "padded_init_params",
    "run_grid",
    "select_best",
    "table_keys",
    "score_members",
    "validate_grid_config",
    "write_results",
]
