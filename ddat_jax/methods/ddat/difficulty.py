"""Difficulty signals of DDAT stage 1 (Zhang et al., DDAT, §III).

Given the input features ``x`` and the stage-1 model's outputs, each function returns the
per-frame difficulty ``d`` that stage 2 appends to the features.
"""

from __future__ import annotations

import jax.numpy as jnp

RE_REDUCE = ("squared", "abs", "signed")


def re_vector(x, x_hat):
    """Reconstruction-error vector ``e_t = x_t − x̂_t``.

    Args:
      x: features ``[..., time, r]``.
      x_hat: the stage-1 reconstruction head's output, same shape.

    Returns:
      ``[..., time, r]``.
    """
    return x - x_hat


def re_scalar(x, x_hat, *, reduce: str = "squared"):
    """Reconstruction-error scalar ``E_t`` (summed over the r feature dimensions).

    .. math::
        E_t = \\sum_i f(x_{t,i} - \\hat x_{t,i}),\\quad
        f \\in \\{(\\cdot)^2, |\\cdot|, \\mathrm{id}\\}

    The paper writes the signed sum (``reduce="signed"``), whose terms cancel; the default
    ``"squared"`` is the squared error (the project's decision: signed terms cancel, so
    the signed sum says little about how far the reconstruction is from the input).

    Args:
      x: ``[..., time, r]``; x_hat: same shape.
      reduce: ``"squared"`` | ``"abs"`` | ``"signed"``.

    Returns:
      ``[..., time, 1]``.
    """
    e = x - x_hat
    if reduce == "squared":
        e = jnp.square(e)
    elif reduce == "abs":
        e = jnp.abs(e)
    elif reduce != "signed":
        raise ValueError(f"unknown re_reduce {reduce!r}; valid: {list(RE_REDUCE)}")
    return jnp.sum(e, axis=-1, keepdims=True)
