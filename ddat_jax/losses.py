"""Differentiable correlation losses for time-continuous regression, in pure ``jax.numpy``.

Every function here is a small pure function in the style of ``optax.losses``:
positional ``predictions, targets``, keyword-only options, **unreduced** output
(the statistic is reduced along ``axis`` only; the caller averages over the batch),
and no Python control flow that depends on values, so all of them work under
``jax.jit``, ``jax.vmap`` and ``jax.grad`` in float32 and float64.

Masking: ``where`` is a boolean array broadcastable to ``predictions``; frames where
it is ``False`` (padding) are ignored. Masked frames are *selected away* with
``jnp.where`` rather than multiplied by zero, so NaN or Inf in padded frames
neither leaks into the value nor into the gradient.

NaN policy: a NaN in an unmasked frame propagates (the result is NaN), as in
every other JAX loss. To ignore missing labels pass ``where=~jnp.isnan(targets)``.

Degenerate inputs (documented and tested):

* constant predictions (or targets): CCC and PCC are 0 with a finite gradient;
* identical, non-constant inputs: CCC = PCC = 1 (up to ``eps``);
* fully masked or length-1 sequences: CCC = PCC = 0, MSE = 0, all gradients finite
  (0); there is no NaN anywhere;
* the statistics are computed two-pass (mean first, then centred moments), which
  keeps float32 accurate for signals with a large offset.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

Axis = int | Sequence[int] | None

__all__ = ["ccc", "ccc_loss", "dcca_loss", "mse", "pcc", "pcc_loss"]


def _prepare(predictions, targets, where):
    """Promotes to a floating dtype (at least float32) and broadcasts the three arrays."""
    predictions = jnp.asarray(predictions)
    targets = jnp.asarray(targets)
    dtype = jnp.result_type(predictions.dtype, targets.dtype, jnp.float32)
    predictions = predictions.astype(dtype)
    targets = targets.astype(dtype)
    try:
        shape = jnp.broadcast_shapes(predictions.shape, targets.shape)
        if where is not None:
            where = jnp.asarray(where, dtype=bool)
            shape = jnp.broadcast_shapes(shape, where.shape)
    except ValueError as err:
        raise ValueError(
            "predictions, targets (and where) must be broadcastable to one shape; got "
            f"predictions {predictions.shape}, targets {targets.shape}"
            + ("" if where is None else f", where {jnp.shape(where)}")
        ) from err
    predictions = jnp.broadcast_to(predictions, shape)
    targets = jnp.broadcast_to(targets, shape)
    if where is None:
        where = jnp.ones(shape, dtype=bool)
    else:
        where = jnp.broadcast_to(where, shape)
    return predictions, targets, where


def _moments(predictions, targets, *, axis, where):
    """Masked population moments along ``axis`` (two-pass).

    Returns ``(mean_p, mean_t, var_p, var_t, cov)``, each reduced along ``axis``,
    with population (1/N) normalisation. ``N = 0`` gives zeros, never NaN.
    """
    p, t, w = _prepare(predictions, targets, where)
    zero = jnp.zeros((), p.dtype)
    count = jnp.sum(w, axis=axis, keepdims=True).astype(p.dtype)
    # max(N, 1): a fully masked row has all-zero sums, so any positive divisor gives 0.
    safe_count = jnp.maximum(count, 1)
    p0 = jnp.where(w, p, zero)
    t0 = jnp.where(w, t, zero)
    mean_p = jnp.sum(p0, axis=axis, keepdims=True) / safe_count
    mean_t = jnp.sum(t0, axis=axis, keepdims=True) / safe_count
    dp = jnp.where(w, p - mean_p, zero)
    dt = jnp.where(w, t - mean_t, zero)
    var_p = jnp.sum(dp * dp, axis=axis) / jnp.squeeze(safe_count, axis=axis)
    var_t = jnp.sum(dt * dt, axis=axis) / jnp.squeeze(safe_count, axis=axis)
    cov = jnp.sum(dp * dt, axis=axis) / jnp.squeeze(safe_count, axis=axis)
    mean_p = jnp.squeeze(mean_p, axis=axis)
    mean_t = jnp.squeeze(mean_t, axis=axis)
    return mean_p, mean_t, var_p, var_t, cov


def _normalise_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an input with {ndim} dimensions")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _ndim(predictions, targets, where):
    shapes = [jnp.shape(predictions), jnp.shape(targets)]
    if where is not None:
        shapes.append(jnp.shape(where))
    try:
        return len(jnp.broadcast_shapes(*shapes))
    except ValueError as err:
        raise ValueError(
            "predictions, targets (and where) must be broadcastable to one shape; got "
            + ", ".join(str(s) for s in shapes)
        ) from err


def ccc(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
    eps: float = 1e-8,
) -> jax.Array:
    r"""Lin's concordance correlation coefficient, reduced along ``axis``.

    .. math::
        \rho_c = \frac{2\,\sigma_{pt}}{\sigma_p^2 + \sigma_t^2 + (\mu_p - \mu_t)^2}

    with population (``1/N``) statistics over the unmasked frames:
    :math:`\mu_p = \frac1N\sum_i p_i`, :math:`\sigma_p^2 = \frac1N\sum_i (p_i-\mu_p)^2`,
    :math:`\sigma_{pt} = \frac1N\sum_i (p_i-\mu_p)(t_i-\mu_t)`. The denominator is
    floored at ``eps``: :math:`\max(\cdot, \epsilon)`, which leaves the value exact
    whenever the denominator exceeds ``eps`` and makes the degenerate cases finite
    (both inputs constant and equal, fully masked, length 1: :math:`\rho_c = 0`).
    A constant prediction against varying targets gives exactly 0 with the
    informative gradient :math:`2 (t_i - \mu_t) / (N D)`.

    Population statistics match ``audmetric.concordance_cc`` and the AVEC 2018
    scripts; the official AVEC 2016 MATLAB ``CCC_calc`` mixes ``N-1`` variances with
    an ``N`` covariance (see :func:`ddat_jax.metrics.ccc` with
    ``matlab_compatible=True``); the difference is ``O(1/N)``.

    Args:
      predictions: predictions, e.g. ``[batch, time]`` or ``[batch, time, outputs]``.
      targets: targets, broadcastable with ``predictions``.
      axis: axis or axes to reduce (the time axis); ``None`` reduces all axes.
      where: optional boolean mask broadcastable to ``predictions``; ``False`` frames
        (padding) are ignored, even if they hold NaN.
      eps: floor of the denominator.

    Returns:
      The CCC with ``axis`` removed, e.g. ``[batch]``; values in ``[-1, 1]``.

    References:
      Lin, *A concordance correlation coefficient to evaluate reproducibility*,
      Biometrics 45(1), 1989.
      Valstar et al., *AVEC 2016: Depression, mood, and emotion recognition workshop
      and challenge*, 2016.
    """
    axis = _normalise_axis(axis, _ndim(predictions, targets, where))
    mean_p, mean_t, var_p, var_t, cov = _moments(predictions, targets, axis=axis, where=where)
    denom = var_p + var_t + jnp.square(mean_p - mean_t)
    return 2.0 * cov / jnp.maximum(denom, eps)


def ccc_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
    eps: float = 1e-8,
) -> jax.Array:
    r"""CCC loss :math:`1 - \rho_c`, reduced along ``axis`` (see :func:`ccc`).

    Values lie in ``[0, 2]``; degenerate rows (fully masked, length 1, both inputs
    constant) give 1 with a finite gradient.

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, broadcastable with ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid frames.
      eps: floor of the CCC denominator.

    Returns:
      The loss with ``axis`` removed, e.g. ``[batch]`` (unreduced over the batch).

    References:
      Weninger et al., *Discriminatively trained recurrent neural networks for
      continuous dimensional emotion recognition from audio*, IJCAI 2016.
    """
    return 1.0 - ccc(predictions, targets, axis=axis, where=where, eps=eps)


def pcc(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
    eps: float = 1e-8,
) -> jax.Array:
    r"""Pearson's correlation coefficient, reduced along ``axis``.

    .. math::
        \rho = \frac{\sigma_{pt}}{\sqrt{\max(\sigma_p^2, \epsilon)\,\max(\sigma_t^2, \epsilon)}}

    with population statistics over the unmasked frames (the normalisation cancels).
    Each variance is floored at ``eps`` *before* the square root, so the value is
    exact whenever both variances exceed ``eps``, and a constant input gives 0 with
    a finite gradient (of order :math:`1/\sqrt{\epsilon}` -- the exact gradient of
    PCC at a constant input does not exist).

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, broadcastable with ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid frames.
      eps: floor of each variance.

    Returns:
      The PCC with ``axis`` removed; values in ``[-1, 1]``.

    References:
      Pearson, *Notes on regression and inheritance in the case of two parents*,
      Proc. R. Soc. London 58, 1895.
    """
    axis = _normalise_axis(axis, _ndim(predictions, targets, where))
    _, _, var_p, var_t, cov = _moments(predictions, targets, axis=axis, where=where)
    return cov / (jnp.sqrt(jnp.maximum(var_p, eps)) * jnp.sqrt(jnp.maximum(var_t, eps)))


def pcc_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
    eps: float = 1e-8,
) -> jax.Array:
    r"""PCC loss :math:`1 - \rho`, reduced along ``axis`` (see :func:`pcc`).

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, broadcastable with ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid frames.
      eps: floor of each variance.

    Returns:
      The loss with ``axis`` removed, in ``[0, 2]``.

    References:
      Kollias & Zafeiriou / Atmaja & Akagi-style correlation losses; see also
      *CER-MTL* (the project's ``cer_mtl_correlation_loss`` paper).
    """
    return 1.0 - pcc(predictions, targets, axis=axis, where=where, eps=eps)


def mse(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    r"""Mean squared error over the unmasked frames, reduced along ``axis``.

    .. math::
        \mathrm{MSE} = \frac{1}{\max(N, 1)} \sum_{i:\,w_i} (p_i - t_i)^2

    A fully masked row gives 0 (not NaN).

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, broadcastable with ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid frames.

    Returns:
      The MSE with ``axis`` removed.
    """
    axis = _normalise_axis(axis, _ndim(predictions, targets, where))
    p, t, w = _prepare(predictions, targets, where)
    sq = jnp.where(w, jnp.square(p - t), jnp.zeros((), p.dtype))
    count = jnp.sum(w, axis=axis).astype(p.dtype)
    return jnp.sum(sq, axis=axis) / jnp.maximum(count, 1)


def dcca_loss(*args, **kwargs):  # pragma: no cover - placeholder replaced below
    raise NotImplementedError("dcca_loss is being implemented")
