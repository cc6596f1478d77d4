"""Architecture grids: grouping shapes into padded programs and the members' initial params."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ddat_jax.models.padded import Padding
from ddat_jax.train.engine import init_params

PyTree = Any
GROUPINGS = ("auto", "all", "none", "depth", "width")


def group_shapes(
    shapes: Sequence[tuple[int, int]], grouping: str = "auto", backend: str | None = None
) -> list[list[tuple[int, int]]]:
    """Groups architectures ``(layers, units)`` into padded programs.

    Cost model (``tools/bench_grid.py --arch``): on GPU/TPU a scan step is latency-bound,
    so a padded group costs about its deepest member's time and one program for the
    whole grid (``"all"``) wins. On CPU a step is compute-bound: a padded member costs
    ``max_layers × max_units²`` whatever its real shape, so ``"auto"`` runs each shape
    unpadded (``"none"``) there.

    Args:
      shapes: ``(layers, units)`` (duplicates are merged).
      grouping: ``"all"``, ``"none"``, ``"depth"`` (one program per depth),
        ``"width"`` (one per width) or ``"auto"`` (``"none"`` on CPU, ``"all"`` elsewhere).
      backend: ``jax.default_backend()`` if None.

    Returns:
      Groups of shapes (sorted), each run as one program padded to its largest shape.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"Unknown grid.arch_grouping {grouping!r}; valid: {list(GROUPINGS)}")
    shapes = sorted({(int(a), int(b)) for a, b in shapes})
    if grouping == "auto":
        grouping = "none" if (backend or jax.default_backend()) == "cpu" else "all"
    if grouping == "all":
        return [shapes] if shapes else []
    if grouping == "none":
        return [[s] for s in shapes]
    key = (lambda s: s[0]) if grouping == "depth" else (lambda s: s[1])
    return [list(g) for _, g in itertools.groupby(sorted(shapes, key=key), key=key)]


def padded_init_params(
    build_model_fn: Callable[..., Any],
    padding: Padding,
    member_shapes: Sequence[tuple[int, int]],
    keys: jax.Array,
    inputs: PyTree,
) -> PyTree:
    """Each member's unpadded initialisation, embedded in the padded layout.

    Member ``j`` is initialised exactly as the engine initialises
    ``build_model_fn(num_layers=L_j, hidden_size=H_j)`` with ``keys[j]``, so a padded
    member starts (and ends) where its unpadded training would.

    Returns:
      Padded parameters with a leading member axis (NumPy).
    """
    init = {}
    out = []
    for shape, key in zip(member_shapes, keys, strict=True):
        shape = (int(shape[0]), int(shape[1]))
        if shape not in init:
            model = build_model_fn(num_layers=shape[0], hidden_size=shape[1])
            init[shape] = jax.jit(lambda k, m=model: init_params(m, k, inputs))
        out.append(padding.embed(jax.device_get(init[shape](key))))
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *out)


__all__ = ["GROUPINGS", "group_shapes", "padded_init_params"]
