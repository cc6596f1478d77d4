"""A config's ``grid`` section -> a member table, the members' hparams and PRNG keys."""

from __future__ import annotations

import itertools
from typing import Any

import jax
import ml_collections
import numpy as np
import pandas as pd

from ddat_jax.train.grid.padding import GROUPINGS
from ddat_jax.train.grid.select import SELECTIONS
from ddat_jax.train.keys import member_keys
from ddat_jax.train.members import STRATEGIES

# Hyper-parameter axes in table order (outermost first); seeds are always innermost.
HP_AXES = ("w_e", "alpha", "learning_rate", "l2", "noise_std")


def default_grid_config() -> ml_collections.ConfigDict:
    """The ``grid`` section; an empty tuple means "not swept".

    Fields:

    * ``w_e`` (tuple of float): weight of the term ``w_e_head``; the term
      ``w_sigma_head`` gets ``w_total - w_e`` (``0, 0.1, …, 2`` with total 2).
    * ``w_e_head`` (``"emotion"``), ``w_sigma_head`` (``"uncertainty"``), ``w_total`` (2.0).
    * ``alpha`` (tuple of float): weight of the term ``alpha_head`` (``"aux"``).
    * ``learning_rate``, ``l2``, ``noise_std`` (tuples of float): swept ``hparams``.
    * ``seeds`` (int, 1): seeds per setting (the innermost axis).
    * ``arch`` (tuple of ``(layers, units)``): architectures; padded per group.
    * ``arch_grouping`` (``"auto"``): see :func:`ddat_jax.train.grid.padding.group_shapes`.
    * ``strategy`` (``"auto"``): ``"auto" | "vmap" | "map" | "chunked" | "loop"``.
    * ``chunk_size`` (int, 4): members per vmapped chunk of ``"chunked"``.
    * ``shard`` (bool, True): split members over all devices when there are several.
    * ``select`` (``"mean_over_seeds"``): the best setting maximises the mean best dev
      score over its seeds (then its best seed is the selected member), or
      ``"best_member"``.
    """
    g = ml_collections.ConfigDict()
    g.w_e = ()
    g.w_e_head = "emotion"
    g.w_sigma_head = "uncertainty"
    g.w_total = 2.0
    g.alpha = ()
    g.alpha_head = "aux"
    g.learning_rate = ()
    g.l2 = ()
    g.noise_std = ()
    g.seeds = 1
    g.arch = ()
    g.arch_grouping = "auto"
    g.strategy = "auto"
    g.chunk_size = 4
    g.shard = True
    g.select = "mean_over_seeds"
    return g


def grid_section(config: Any) -> Any:
    """``config.grid`` if present, else ``config``."""
    return config.grid if "grid" in config else config


def validate_grid_config(grid: Any) -> None:
    """Raises ``ValueError`` for an invalid ``grid`` section."""
    for name, valid in (
        ("strategy", STRATEGIES),
        ("arch_grouping", GROUPINGS),
        ("select", SELECTIONS),
    ):
        if grid[name] not in valid:
            raise ValueError(f"Unknown grid.{name} {grid[name]!r}; valid: {list(valid)}")
    if int(grid.seeds) < 1:
        raise ValueError(f"grid.seeds must be >= 1, got {grid.seeds}")
    if int(grid.chunk_size) < 1:
        raise ValueError(f"grid.chunk_size must be >= 1, got {grid.chunk_size}")
    for shape in grid.arch:
        if len(shape) != 2 or int(shape[0]) < 1 or int(shape[1]) < 1:
            raise ValueError(f"grid.arch entries must be (layers >= 1, units >= 1), got {shape}")


def frange(start: float, stop: float, step: float) -> tuple[float, ...]:
    """``(start, start + step, …, stop)`` rounded to 10 decimals (``stop`` included)."""
    n = int(round((stop - start) / step))
    return tuple(round(start + i * step, 10) for i in range(n + 1))


def _axes(grid: Any) -> list[tuple[str, list]]:
    axes: list[tuple[str, list]] = []
    if len(grid.arch):
        axes.append(("arch", [(int(a), int(b)) for a, b in grid.arch]))
    for name in HP_AXES:
        values = tuple(grid[name])
        if values:
            axes.append((name, [float(v) for v in values]))
    return axes


def expand_grid(config: Any) -> pd.DataFrame:
    """The grid's members as a table.

    Returns:
      One row per member, the Cartesian product ``arch × w_e × alpha × learning_rate ×
      l2 × noise_std × seed`` (seed innermost) over the swept axes. Columns: ``member``,
      ``setting`` (index without the seed), ``seed``, then ``layers``, ``units`` (if
      ``arch`` is swept), ``w_e`` and ``w_sigma`` (if ``w_e`` is), one per other axis.
    """
    grid = grid_section(config)
    validate_grid_config(grid)
    axes = _axes(grid)
    rows = []
    for s_index, setting in enumerate(itertools.product(*[v for _, v in axes])):
        for seed in range(int(grid.seeds)):
            row: dict[str, Any] = {"setting": s_index, "seed": seed}
            for (name, _), value in zip(axes, setting, strict=True):
                if name == "arch":
                    row["layers"], row["units"] = value
                elif name == "w_e":
                    row["w_e"] = value
                    row["w_sigma"] = round(float(grid.w_total) - value, 10)
                else:
                    row[name] = value
            rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(0, "member", np.arange(len(table)))
    return table


def member_hparams(config: Any, table: pd.DataFrame) -> dict[str, Any]:
    """The ``hparams`` of every member (``[K]`` float32): ``config.hparams`` + swept columns."""
    grid = grid_section(config)
    base = config.hparams
    k = len(table)

    def column(name, default):
        if name in table:
            return table[name].to_numpy(np.float32)
        return np.full((k,), default, np.float32)

    weights = {str(h): np.full((k,), float(v), np.float32) for h, v in base.loss_weights.items()}
    if "w_e" in table:
        weights[str(grid.w_e_head)] = table["w_e"].to_numpy(np.float32)
        weights[str(grid.w_sigma_head)] = table["w_sigma"].to_numpy(np.float32)
    if "alpha" in table:
        weights[str(grid.alpha_head)] = table["alpha"].to_numpy(np.float32)
    return {
        "learning_rate": column("learning_rate", base.learning_rate),
        "noise_std": column("noise_std", base.noise_std),
        "l2": column("l2", base.l2),
        "loss_weights": weights,
    }


def swept_weight_keys(config: Any, table: pd.DataFrame) -> list[str]:
    """The ``loss_weights`` keys the grid sweeps (they must be terms' weight keys)."""
    grid = grid_section(config)
    keys = []
    if "w_e" in table:
        keys += [str(grid.w_e_head), str(grid.w_sigma_head)]
    if "alpha" in table:
        keys.append(str(grid.alpha_head))
    return keys


def table_keys(key: jax.Array, table: pd.DataFrame) -> jax.Array:
    """Member ``i``'s key: ``member_keys(key, seeds)[table.seed[i]]`` (``[K]`` typed keys).

    Every setting uses the same seeds (common random numbers), and seed 0 is the key
    the system gets when it trains alone.
    """
    seeds = int(table["seed"].max()) + 1 if len(table) else 1
    return member_keys(key, seeds)[np.asarray(table["seed"].to_numpy(), np.int32)]


__all__ = [
    "GROUPINGS",
    "HP_AXES",
    "SELECTIONS",
    "default_grid_config",
    "expand_grid",
    "frange",
    "grid_section",
    "member_hparams",
    "swept_weight_keys",
    "table_keys",
    "validate_grid_config",
]
