"""Host devices: split the CPU into several XLA devices so that grids shard over its cores."""

from __future__ import annotations

import os
import re

import jax


def configure_host_devices(count: int | None = None) -> int:
    """Splits the host CPU into ``count`` XLA devices (``jax_num_cpu_devices``).

    Call it before the first JAX computation (importing jax is fine; creating an array
    or calling ``jax.devices()`` is too late). A count chosen by the user
    (``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` or
    ``jax_num_cpu_devices``) wins. On a GPU/TPU machine the accelerators stay the
    default devices and the CPU devices go unused.

    Args:
      count: devices to create; ``None``: the CPUs this process may use.

    Returns:
      The host device count in effect (or requested); 1 if JAX's backends were already
      initialised (the setting can no longer change).
    """
    found = re.search(
        r"--xla_force_host_platform_device_count=(\d+)", os.environ.get("XLA_FLAGS", "")
    )
    if found:
        return int(found.group(1))
    current = int(jax.config.jax_num_cpu_devices)
    if current > 0:
        return current
    if count is None:
        try:
            count = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            count = os.cpu_count() or 1
    count = max(int(count), 1)
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # backends already initialised (public signal, no jax._src import)
        return 1
    return count


__all__ = ["configure_host_devices"]
