"""The PRNG convention: a system's stream is a stable function of its name.

``system_key(seed, name)`` folds ``zlib.crc32(name)`` into ``key(seed)``, so a
system (a table row such as ``"stl"``) gets the same stream whatever else the
run trains and in whatever order. Its members (seeds) are
``member_keys(system_key, seeds)``: a ``jax.random.split``, whose first keys do not
depend on how many are split (threefry is counter based), so seed 0 of a
3-seed grid is the key of the same system trained alone.
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np


def system_key(seed: int, name: str) -> jax.Array:
    """``fold_in(key(seed), crc32(name))``: the root key of system ``name``.

    Args:
      seed: the experiment seed (``config.seed``).
      name: the system's name, e.g. ``"mtl_re"``.

    Returns:
      A typed PRNG key (shape ``()``).
    """
    return jax.random.fold_in(jax.random.key(int(seed)), zlib.crc32(str(name).encode()))


def member_keys(key: jax.Array, seeds: int) -> jax.Array:
    """``split(key, seeds)``: the keys of a system's ``seeds`` members, ``[seeds]``.

    ``member_keys(k, n)[i]`` is the same for every ``n > i``.
    """
    if int(seeds) < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    return jax.random.split(as_typed_key(key), int(seeds))


def as_typed_key(key) -> jax.Array:
    """A typed PRNG key from a typed key or raw ``uint32`` key data (any leading shape)."""
    if hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(jnp.asarray(np.asarray(key), jnp.uint32))


__all__ = ["as_typed_key", "member_keys", "system_key"]
