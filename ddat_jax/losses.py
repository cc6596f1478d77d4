"""Differentiable correlation losses for time-continuous regression, in pure ``jax.numpy``.

``ccc``, ``ccc_loss``, ``pcc``, ``pcc_loss``, ``mse`` and ``dcca_loss`` are small pure
functions in the style of ``optax.losses``, usable in any JAX project (importing this
module imports JAX only): positional ``predictions, targets``, keyword-only options,
**unreduced** output (the statistic is reduced along ``axis`` only; the caller averages
over the batch), and no Python control flow that depends on values, so all of them work
under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` in float32 and float64.

Shapes cannot silently go wrong: ``predictions`` and ``targets`` must have the same
shape (no broadcasting between them: ``[1, T, 1]`` against ``[1, T]`` would otherwise
become ``[1, T, T]``), and a correlation reduced over fewer than 2 values (e.g. the
default ``axis=-1`` on a ``[batch, time, 1]`` head, which would return a constant with
zero gradient) raises a ``ValueError`` that names the shapes and suggests the axis.
Shape checks happen at trace time, so they cost nothing under ``jax.jit``.

Masking: ``where`` is a boolean array broadcastable to ``predictions``; values where
it is ``False`` (padding) are ignored. Masked values are *selected away* with
``jnp.where`` rather than multiplied by zero, so NaN or Inf in padded frames
neither leaks into the value nor into the gradient. Masking equals slicing.

NaN policy: a NaN in an unmasked frame propagates (the result is NaN), as in
every other JAX loss. To ignore missing labels pass ``where=~jnp.isnan(targets)``.

Dtypes: inputs are promoted to at least float32 (integers and bfloat16 compute in
float32; float64 stays float64 when x64 is enabled, e.g. ``with jax.enable_x64(True)``).

Degenerate inputs (documented and tested):

* constant predictions (or targets): CCC and PCC are 0 with a finite gradient;
* identical, non-constant inputs: CCC = PCC = 1 (up to ``eps``);
* fully masked rows or a single valid frame: CCC = PCC = 0, MSE = 0, all gradients
  finite (0); there is no NaN anywhere;
* Deep CCA: finite value and gradients for identical views, constant views, dead
  units, repeated singular values and fully masked problems;
* the statistics are computed two-pass (mean first, then centred moments), which
  keeps float32 accurate for signals with a large offset.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

Axis = int | Sequence[int] | None

__all__ = ["RankDeficientWarning", "ccc", "ccc_loss", "dcca_loss", "mse", "pcc", "pcc_loss"]


def _check_shapes(name, predictions, targets, where):
    """Validates the shapes and returns the common shape (no broadcasting of the inputs).

    ``predictions`` and ``targets`` must have exactly the same shape: broadcasting them
    would silently turn ``[1, T, 1]`` against ``[1, T]`` into ``[1, T, T]`` (every frame
    compared with every other frame). ``where`` may broadcast *to* that shape (e.g. a
    ``[batch, time, 1]`` mask for ``[batch, time, outputs]``) but must not enlarge it.
    """
    p_shape = tuple(jnp.shape(predictions))
    t_shape = tuple(jnp.shape(targets))
    if p_shape != t_shape:
        hint = ""
        if p_shape[-1:] == (1,) and p_shape[:-1] == t_shape:
            hint = (
                " For a head with one output, squeeze it (predictions[..., 0]) or give the"
                " targets the same axis (targets[..., None])."
            )
        elif t_shape[-1:] == (1,) and t_shape[:-1] == p_shape:
            hint = " Squeeze the targets (targets[..., 0]) or add the axis to the predictions."
        raise ValueError(
            f"{name}: predictions and targets must have the same shape; got predictions "
            f"{p_shape} and targets {t_shape} (they are not broadcast against each other)." + hint
        )
    if where is not None:
        w_shape = tuple(jnp.shape(where))
        try:
            ok = jnp.broadcast_shapes(p_shape, w_shape) == p_shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name}: where must be broadcastable to the shape of predictions {p_shape}; "
                f"got where {w_shape}"
            )
    return p_shape


def _check_count(name, shape, axis, axis_given):
    """Raises if the reduced axes hold fewer than 2 values (a correlation of one value)."""
    n = 1
    for a in axis:
        n *= shape[a]
    if n >= 2:
        return
    rest = [a for a in range(len(shape)) if a not in axis and shape[a] >= 2]
    msg = (
        f"{name}: axis={axis_given!r} reduces {n} value(s) per result for inputs of shape "
        f"{shape}; a correlation needs at least 2 (with 1 it is a constant with zero "
        f"gradient, and training would silently do nothing)."
    )
    if rest:
        best = max(rest, key=lambda a: (shape[a], a))
        msg += f" Did you mean axis={best} (size {shape[best]})?"
    if len(shape) == 3 and shape[-1] == 1:
        msg += (
            " For a [batch, time, 1] head reduce over time: axis=1 (one value per sequence)"
            " or axis=(0, 1) (pooled over the batch)."
        )
    raise ValueError(msg)


def _prepare(predictions, targets, where):
    """Promotes to a floating dtype (at least float32); broadcasts ``where``.

    The shapes must have been checked by :func:`_check_shapes`.
    """
    predictions = jnp.asarray(predictions)
    targets = jnp.asarray(targets)
    dtype = jnp.result_type(predictions.dtype, targets.dtype, jnp.float32)
    predictions = predictions.astype(dtype)
    targets = targets.astype(dtype)
    if where is None:
        where = jnp.ones(predictions.shape, dtype=bool)
    else:
        where = jnp.broadcast_to(jnp.asarray(where, dtype=bool), predictions.shape)
    return predictions, targets, where


def _shifted_mean(x, w, axis, safe_count):
    """Masked mean computed as ``ref + mean(x - ref)`` with ``ref`` a data value.

    Shifting by a value of the data (the masked maximum, held constant for autodiff)
    makes the mean of a constant input exactly that constant, so its deviations, and
    hence CCC/PCC of a constant prediction, are exactly 0 in float32 too; it also
    reduces cancellation for signals with a large offset. The gradient is unchanged.
    """
    zero = jnp.zeros((), x.dtype)
    ref = jnp.max(jnp.where(w, x, -jnp.inf), axis=axis, keepdims=True)
    ref = jax.lax.stop_gradient(jnp.where(jnp.isneginf(ref), zero, ref))
    shifted = jnp.where(w, x - ref, zero)
    return ref + jnp.sum(shifted, axis=axis, keepdims=True) / safe_count


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
    mean_p = _shifted_mean(p, w, axis, safe_count)
    mean_t = _shifted_mean(t, w, axis, safe_count)
    dp = jnp.where(w, p - mean_p, zero)
    dt = jnp.where(w, t - mean_t, zero)
    var_p = jnp.sum(dp * dp, axis=axis) / jnp.squeeze(safe_count, axis=axis)
    var_t = jnp.sum(dt * dt, axis=axis) / jnp.squeeze(safe_count, axis=axis)
    cov = jnp.sum(dp * dt, axis=axis) / jnp.squeeze(safe_count, axis=axis)
    mean_p = jnp.squeeze(mean_p, axis=axis)
    mean_t = jnp.squeeze(mean_t, axis=axis)
    return mean_p, mean_t, var_p, var_t, cov


def _normalise_axis(axis, ndim):
    if isinstance(axis, jax.core.Tracer) or any(
        isinstance(a, jax.core.Tracer) for a in (axis if isinstance(axis, tuple | list) else ())
    ):
        raise TypeError(
            "axis is traced; it selects axes and must be static: close over it "
            "(jax.jit(lambda x, y: f(x, y, axis=1))) or use jax.jit(f, static_argnames='axis')"
        )
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


def _reduction_axes(name, predictions, targets, where, axis, *, correlation):
    shape = _check_shapes(name, predictions, targets, where)
    axes = _normalise_axis(axis, len(shape))
    if correlation:
        _check_count(name, shape, axes, axis)
    return axes


@functools.partial(jax.jit, static_argnames=("axis", "kind"))
def _correlation_core(predictions, targets, where, eps, *, axis, kind):
    """One compiled program per shape (fast eager calls; inlined under an outer ``jit``)."""
    mean_p, mean_t, var_p, var_t, cov = _moments(predictions, targets, axis=axis, where=where)
    if kind.startswith("ccc"):
        denom = var_p + var_t + jnp.square(mean_p - mean_t)
        value = 2.0 * cov / jnp.maximum(denom, eps)
    else:
        value = cov / (jnp.sqrt(jnp.maximum(var_p, eps)) * jnp.sqrt(jnp.maximum(var_t, eps)))
    return 1.0 - value if kind.endswith("_loss") else value


@functools.partial(jax.jit, static_argnames=("axis",))
def _mse_core(predictions, targets, where, *, axis):
    p, t, w = _prepare(predictions, targets, where)
    # Select before squaring: where(w, (p - t)**2, 0) would give NaN gradients for NaN
    # padding (0 * NaN in the backward pass).
    zero = jnp.zeros((), p.dtype)
    sq = jnp.square(jnp.where(w, p, zero) - jnp.where(w, t, zero))
    count = jnp.sum(w, axis=axis).astype(p.dtype)
    return jnp.sum(sq, axis=axis) / jnp.maximum(count, 1)


def _correlation(kind, predictions, targets, where, axis, eps):
    predictions = jnp.asarray(predictions)
    targets = jnp.asarray(targets)
    where = None if where is None else jnp.asarray(where, dtype=bool)
    axes = _reduction_axes(kind, predictions, targets, where, axis, correlation=True)
    return _correlation_core(predictions, targets, where, eps, axis=axes, kind=kind)


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
        \rho_c = \frac{2\,\sigma_{pt}}{\max\!\big(\sigma_p^2 + \sigma_t^2 + (\mu_p - \mu_t)^2,
        \ \epsilon\big)}

    Conventions:

    * **Moments**: population (``1/N``) statistics over the unmasked values,
      :math:`\mu_p = \frac1N\sum_i p_i`, :math:`\sigma_p^2 = \frac1N\sum_i (p_i-\mu_p)^2`,
      :math:`\sigma_{pt} = \frac1N\sum_i (p_i-\mu_p)(t_i-\mu_t)` (as ``audmetric`` and
      the AVEC 2018 scripts; the AVEC 2016 MATLAB ``CCC_calc`` mixes ``N-1`` variances
      with an ``N`` covariance, see :func:`ddat_jax.metrics.ccc`; the difference is
      :math:`O(1/N)`).
    * **Reduction**: one CCC pools *all* values of the reduced axes. For
      ``[batch, time]`` inputs, ``axis=-1`` (default) gives one CCC per sequence
      (average them yourself: the AVEC 2018 per-recording mean), ``axis=None`` or
      ``axis=(0, 1)`` one CCC over the concatenated frames (AVEC 2016). For a
      ``[batch, time, 1]`` head use ``axis=1`` (per sequence) or ``axis=(0, 1)``.
    * **Shapes**: ``predictions`` and ``targets`` must have the same shape (they are
      never broadcast against each other, which would silently compare every frame
      with every other frame); the reduced axes must hold at least 2 values, or a
      ``ValueError`` says which axis was meant. The default ``axis=-1`` suits the
      ``[batch, time]`` layout of ``optax``-style losses; rather than guessing the time
      axis for other layouts, a size-1 reduction is an error.
    * **Mask**: ``where`` (boolean, broadcastable to ``predictions``) selects the valid
      values; masked values are excluded from every moment, even if they hold NaN, and
      get a zero gradient. Masking is equivalent to slicing the valid values out.
    * **Degenerate inputs**: a constant prediction gives exactly 0 with the
      informative gradient :math:`2 (t_i - \mu_t) / (N D)`; both inputs constant, a
      fully masked row or a single valid value give 0 with a finite gradient
      (the ``eps`` floor leaves every other value exact). Never NaN, unless an
      unmasked value is NaN.

    Args:
      predictions: predictions, e.g. ``[batch, time]`` or ``[batch, time, outputs]``.
      targets: targets, the same shape as ``predictions``.
      axis: axis or axes to reduce (the time axis); ``None`` reduces all axes. Under
        ``jax.jit`` it must be static (``static_argnames="axis"`` or a closure).
      where: optional boolean mask broadcastable to ``predictions``; ``False`` values
        (padding) are ignored.
      eps: floor of the denominator.

    Returns:
      The CCC with ``axis`` removed, e.g. ``[batch]``; values in ``[-1, 1]``.

    Raises:
      ValueError: if the shapes differ, ``where`` does not broadcast to them, ``axis``
        is out of range, or the reduced axes hold fewer than 2 values.

    Examples:
      >>> import jax.numpy as jnp
      >>> from ddat_jax.losses import ccc
      >>> p = jnp.array([[0.1, 0.3, 0.2, 0.5], [0.2, -0.1, 0.4, 9.9]])
      >>> t = jnp.array([[0.0, 0.2, 0.3, 0.4], [0.1, 0.0, 0.3, 0.0]])
      >>> c = ccc(p, t, where=p < 9)   # one value per sequence; 9.9 is padding
      >>> print([f"{v:.4f}" for v in c.tolist()])
      ['0.7838', '0.8302']
      >>> ccc(p[:, :, None], t[:, :, None], axis=1).shape   # a [batch, time, 1] head
      (2, 1)
      >>> ccc(p[:, :, None], t[:, :, None])   # default axis=-1 has size 1 here
      Traceback (most recent call last):
      ...
      ValueError: ccc: axis=-1 reduces 1 value(s) per result ... Did you mean axis=1 (size 4)? ...

    References:
      Lin, *A concordance correlation coefficient to evaluate reproducibility*,
      Biometrics 45(1), 1989.
      Valstar et al., *AVEC 2016: Depression, mood, and emotion recognition workshop
      and challenge*, 2016.
    """
    return _correlation("ccc", predictions, targets, where, axis, eps)


def ccc_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
    eps: float = 1e-8,
) -> jax.Array:
    r"""CCC loss :math:`1 - \rho_c`, reduced along ``axis`` only (see :func:`ccc`).

    Same conventions as :func:`ccc` (population moments, pooling over the reduced
    axes, equal shapes, at least 2 values per result, ``where`` mask). The result is
    **not** averaged over the remaining (batch) axes: take ``jnp.mean`` yourself.
    Values lie in ``[0, 2]``; degenerate rows (fully masked, one valid value, both
    inputs constant) give 1 with a finite gradient.

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, the same shape as ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid values, broadcastable to ``predictions``.
      eps: floor of the CCC denominator.

    Returns:
      The loss with ``axis`` removed, e.g. ``[batch]`` (unreduced over the batch).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from ddat_jax.losses import ccc_loss
      >>> y = jnp.sin(jnp.linspace(0.0, 6.0, 20))[None, :, None]   # [batch, time, 1]
      >>> pred = 0.5 * y
      >>> loss = ccc_loss(pred, y, axis=1)   # reduce over time: shape [batch, 1]
      >>> print(loss.shape, f"{float(loss.mean()):.4f}")
      (1, 1) 0.2000
      >>> grad = jax.jit(jax.grad(lambda p: ccc_loss(p, y, axis=1).mean()))(pred)
      >>> bool(jnp.abs(grad).max() > 0)
      True

    References:
      Weninger et al., *Discriminatively trained recurrent neural networks for
      continuous dimensional emotion recognition from audio*, IJCAI 2016.
    """
    return _correlation("ccc_loss", predictions, targets, where, axis, eps)


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

    Conventions: population moments over the unmasked values (the normalisation
    cancels, so ``1/N`` and ``1/(N-1)`` give the same :math:`\rho` whenever both
    variances exceed ``eps``); pooling over all reduced axes, equal shapes, at least 2
    values per result and the ``where`` mask as in :func:`ccc`. Each variance is
    floored at ``eps`` *before* the square root, so a constant input gives 0 with a
    finite gradient (of order :math:`1/\sqrt{\epsilon}`: the exact gradient of PCC at a
    constant input does not exist); fully masked rows and single values give 0.
    :math:`\rho` is invariant to affine maps :math:`p \mapsto a p + b` with
    :math:`a > 0` (it changes sign for :math:`a < 0`).

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, the same shape as ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid values, broadcastable to ``predictions``.
      eps: floor of each variance.

    Returns:
      The PCC with ``axis`` removed; values in ``[-1, 1]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from ddat_jax.losses import pcc
      >>> t = jnp.array([0.0, 0.2, 0.3, 0.4])
      >>> print(f"{float(pcc(3.0 * t - 1.0, t)):.4f}")   # affine maps do not change it
      1.0000

    References:
      Pearson, *Note on regression and inheritance in the case of two parents*,
      Proc. R. Soc. London 58, 1895.
    """
    return _correlation("pcc", predictions, targets, where, axis, eps)


def pcc_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
    eps: float = 1e-8,
) -> jax.Array:
    r"""PCC loss :math:`1 - \rho`, reduced along ``axis`` only (see :func:`pcc`).

    Same conventions as :func:`pcc`; unreduced over the batch; values in ``[0, 2]``.
    Unlike the CCC loss it ignores scale and offset, so pair it with an MSE term (or
    post-hoc scaling) if the absolute level matters.

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, the same shape as ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid values, broadcastable to ``predictions``.
      eps: floor of each variance.

    Returns:
      The loss with ``axis`` removed, in ``[0, 2]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from ddat_jax.losses import pcc_loss
      >>> t = jnp.array([[0.0, 0.2, 0.3, 0.4]])
      >>> pcc_loss(-t, t)   # perfectly anti-correlated: 2
      Array([2.], dtype=float32)

    References:
      Köprü & Erzin, *Multimodal continuous emotion recognition using deep multi-task
      learning with correlation loss* (compares CCC, PCC and MSE losses).
    """
    return _correlation("pcc_loss", predictions, targets, where, axis, eps)


def mse(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    r"""Mean squared error over the unmasked values, reduced along ``axis``.

    .. math::
        \mathrm{MSE} = \frac{1}{\max(N, 1)} \sum_{i:\,w_i} (p_i - t_i)^2

    Conventions: the mean is over the valid values of the reduced axes only (``N``
    counts them), unreduced over the other axes; ``predictions`` and ``targets`` must
    have the same shape (never broadcast against each other). Unlike the correlations,
    a reduced axis of size 1 is allowed (it gives the element-wise squared error). A
    fully masked row gives 0 (not NaN) with a zero gradient; masked values may hold
    NaN.

    Args:
      predictions: predictions, e.g. ``[batch, time]``.
      targets: targets, the same shape as ``predictions``.
      axis: axis or axes to reduce; ``None`` reduces all axes.
      where: optional boolean mask of valid values, broadcastable to ``predictions``.

    Returns:
      The MSE with ``axis`` removed.

    Examples:
      >>> import jax.numpy as jnp
      >>> from ddat_jax.losses import mse
      >>> p = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, jnp.nan]])
      >>> t = jnp.array([[1.0, 2.0, 5.0], [1.0, 1.0, 1.0]])
      >>> mse(p, t, where=jnp.array([[True, True, True], [True, True, False]]))
      Array([1.3333334, 1.       ], dtype=float32)
    """
    predictions = jnp.asarray(predictions)
    targets = jnp.asarray(targets)
    where = None if where is None else jnp.asarray(where, dtype=bool)
    axes = _reduction_axes("mse", predictions, targets, where, axis, correlation=False)
    return _mse_core(predictions, targets, where, axis=axes)


_matmul = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)


@jax.custom_jvp
def _inv_sqrt_psd(sigma: jax.Array, eps: jax.Array) -> jax.Array:
    """``sigma^{-1/2}`` of a symmetric PSD matrix via ``eigh``, eigenvalues floored at ``eps``."""
    w, v = jnp.linalg.eigh(sigma)
    s = jnp.sqrt(jnp.maximum(w, eps))
    return _matmul(v / s, v.T)


@_inv_sqrt_psd.defjvp
def _inv_sqrt_psd_jvp(primals, tangents):
    # Daleckii-Krein formula for a spectral function f(S) = V g(W) V^T:
    #   df = V (G o (V^T dS V)) V^T,  G_ij = (g(w_i) - g(w_j)) / (w_i - w_j),  G_ii = g'(w_i).
    # Unlike differentiating eigh (whose eigenvector JVP divides by w_i - w_j), this is
    # exact and finite for repeated eigenvalues, which occur whenever samples < dims (the
    # ridge r * I then becomes a degenerate eigenvalue). For g(x) = x^{-1/2} the divided
    # difference has the cancellation-free closed form -1 / (s_i s_j (s_i + s_j)), s = sqrt(w).
    # eps is a floor, not a parameter: its tangent is ignored.
    sigma, eps = primals
    dsigma = tangents[0]
    w, v = jnp.linalg.eigh(sigma)
    wf = jnp.maximum(w, eps)
    s = jnp.sqrt(wf)
    out = _matmul(v / s, v.T)
    dd = -1.0 / (s[:, None] * s[None, :] * (s[:, None] + s[None, :]))
    # Account for the floor: g(x) = max(x, eps)^{-1/2} is flat below eps. The ratio is
    # exactly 1 when both eigenvalues are above the floor.
    diff = w[:, None] - w[None, :]
    distinct = diff != 0
    ratio = jnp.where(
        distinct,
        (wf[:, None] - wf[None, :]) / jnp.where(distinct, diff, 1.0),
        (w[:, None] > eps).astype(w.dtype) * jnp.ones_like(diff),
    )
    dsym = 0.5 * (dsigma + dsigma.T)
    inner = _matmul(_matmul(v.T, dsym), v)
    dout = _matmul(_matmul(v, dd * ratio * inner), v.T)
    return out, dout


@jax.custom_jvp
def _sum_selected_singular_values(t: jax.Array, select: jax.Array) -> jax.Array:
    """``sum_i select_i * s_i`` over the singular values of ``t`` in descending order.

    ``select`` is a 0/1 vector (``1`` for the top ``k``); passing it as an array rather
    than a static ``k`` lets ``top_k`` be traced under ``jax.jit``.
    """
    return jnp.sum(select * jnp.linalg.svd(t, compute_uv=False))


@_sum_selected_singular_values.defjvp
def _sum_selected_singular_values_jvp(primals, tangents):
    # d(sum_{i<=k} s_i) = tr(U_k^T dT V_k) = <U_k V_k^T, dT>. U_k V_k^T is invariant to
    # rotations inside a block of equal singular values, so the derivative is well
    # defined (and finite) with repeated values, as long as s_k > s_{k+1}; with a tie at
    # the cut-off it is one valid subgradient. Only singular vectors enter, never
    # 1 / (s_i^2 - s_j^2) as in the generic SVD JVP. select is not differentiated.
    t, select = primals
    dt = tangents[0]
    u, s, vt = jnp.linalg.svd(t, full_matrices=False)
    return jnp.sum(select * s), jnp.sum(_matmul(u * select, vt) * dt)


class RankDeficientWarning(UserWarning):
    """Deep CCA with too few samples for the view dimensions (the correlation is spurious).

    Emitted once per ``(samples, dims_a, dims_b)`` by :func:`dcca_loss`; silence it with
    ``warnings.filterwarnings("ignore", category=RankDeficientWarning)``.
    """


_RANK_WARNED: set[tuple[int, int, int]] = set()


def _warn_rank(m: int, da: int, db: int) -> None:
    key = (m, da, db)
    if m - 1 > max(da, db) or key in _RANK_WARNED:
        return
    _RANK_WARNED.add(key)
    import warnings

    warnings.warn(
        f"dcca_loss: {m} samples per problem for views of {da} and {db} dims. The centred "
        f"samples span at most {m - 1} dimensions, so a view with >= {m - 1} dims can "
        "match any other view perfectly: without the ridge every canonical correlation "
        "is 1 whatever the data, and the value is decided by r1, r2 rather than by the "
        "data. Use more samples than dims + 1 (a larger batch, or pool time frames, e.g. "
        "axis=(0, 1) for [batch, time, dims]), fewer latent dims, or larger ridges. "
        "(Warned once per shape; a where mask can lower the count further unnoticed.)",
        RankDeficientWarning,
        stacklevel=3,
    )


def _dcca_one(a, b, w, select, r1, r2, eps):
    """Total top-k correlation of one problem: ``a [m, da]``, ``b [m, db]``, ``w [m]``."""
    zero = jnp.zeros((), a.dtype)
    wm = w[:, None]
    n = jnp.sum(w).astype(a.dtype)
    mean_a = jnp.sum(jnp.where(wm, a, zero), axis=0) / jnp.maximum(n, 1)
    mean_b = jnp.sum(jnp.where(wm, b, zero), axis=0) / jnp.maximum(n, 1)
    # Select (not multiply) so that NaN/Inf in masked samples reaches neither the value
    # nor the gradient.
    ac = jnp.where(wm, a - mean_a, zero)
    bc = jnp.where(wm, b - mean_b, zero)
    scale = 1.0 / jnp.maximum(n - 1, 1)
    sigma_ab = scale * _matmul(ac.T, bc)
    sigma_aa = scale * _matmul(ac.T, ac) + r1 * jnp.eye(a.shape[1], dtype=a.dtype)
    sigma_bb = scale * _matmul(bc.T, bc) + r2 * jnp.eye(b.shape[1], dtype=a.dtype)
    t = _matmul(_matmul(_inv_sqrt_psd(sigma_aa, eps), sigma_ab), _inv_sqrt_psd(sigma_bb, eps))
    return _sum_selected_singular_values(t, select)


def _check_top_k(top_k, kmax):
    """Validates a concrete ``top_k``; returns it (``kmax`` for ``None``), or the tracer."""
    if top_k is None:
        return kmax
    if isinstance(top_k, jax.core.Tracer):
        return top_k  # cannot be checked; clipped to [1, kmax] in _dcca_core
    if isinstance(top_k, bool) or int(top_k) != top_k:
        raise ValueError(f"dcca_loss: top_k must be an integer; got {top_k!r}")
    if not 1 <= int(top_k) <= kmax:
        raise ValueError(
            f"dcca_loss: top_k must be in [1, min(dims_a, dims_b)] = [1, {kmax}]; got {top_k}"
        )
    return int(top_k)


@functools.partial(jax.jit, static_argnames=("perm", "batch_shape"))
def _dcca_core(a, b, w, k, r1, r2, eps, *, perm, batch_shape):
    """Moves the batch axes first and the sample axes next, then one problem per batch entry.

    ``k`` is traced, so every ``top_k`` shares one compiled program: the top ``k``
    singular values are selected with a 0/1 mask, never with a shape.
    """
    ndim = a.ndim
    lead = a.shape[:-1]
    dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
    da, db = a.shape[-1], b.shape[-1]
    kmax = min(da, db)
    select = (jnp.arange(kmax) < jnp.clip(k, 1, kmax)).astype(dtype)
    w = jnp.ones(lead, bool) if w is None else jnp.broadcast_to(w, lead)
    m = a.size // (da * math.prod(batch_shape))
    a = jnp.transpose(a.astype(dtype), perm + (ndim - 1,)).reshape((-1, m, da))
    b = jnp.transpose(b.astype(dtype), perm + (ndim - 1,)).reshape((-1, m, db))
    w = jnp.transpose(w, perm).reshape((-1, m))
    corr = jax.vmap(_dcca_one, in_axes=(0, 0, 0, None, None, None, None))(
        a, b, w, select, r1, r2, eps
    )
    return 0.0 - corr.reshape(batch_shape)  # 0 - x: no -0.0 for uncorrelated views


def dcca_loss(
    view_a: jax.typing.ArrayLike,
    view_b: jax.typing.ArrayLike,
    *,
    top_k: int | None = None,
    axis: Axis = None,
    where: jax.typing.ArrayLike | None = None,
    r1: float = 1e-3,
    r2: float = 1e-3,
    eps: float = 1e-9,
) -> jax.Array:
    r"""Deep CCA loss: minus the total canonical correlation of two views.

    The **last axis is the feature axis** of each view (``dims_a`` and ``dims_b`` may
    differ); ``axis`` names the **sample axes**, pooled into one problem; any other
    leading axis is a **batch axis** with one independent problem per entry. With
    :math:`n` valid samples and the centred views
    :math:`\bar A \in \mathbb{R}^{n\times d_a}`, :math:`\bar B \in \mathbb{R}^{n\times d_b}`:

    .. math::
        \Sigma_{ab} = \tfrac{1}{n-1}\bar A^\top \bar B,\quad
        \Sigma_{aa} = \tfrac{1}{n-1}\bar A^\top \bar A + r_1 I,\quad
        \Sigma_{bb} = \tfrac{1}{n-1}\bar B^\top \bar B + r_2 I,

        T = \Sigma_{aa}^{-1/2}\,\Sigma_{ab}\,\Sigma_{bb}^{-1/2},\qquad
        \mathcal{L} = -\sum_{i=1}^{k} \sigma_i(T),

    the sum of the ``top_k`` largest singular values of :math:`T` (all
    :math:`\min(d_a, d_b)` -- the nuclear norm -- when ``top_k=None``), as in Andrew
    et al. (2013). Each :math:`\sigma_i` is a canonical correlation, so
    :math:`0 \le -\mathcal{L} \le k` (strictly below :math:`k` with a positive ridge).
    The total correlation is invariant under invertible affine maps of either view, up
    to the ridge.

    Conventions:

    * **Moments**: sample (``1/(n-1)``) covariances over the valid samples, as Andrew
      et al.; means are taken over the valid samples of each problem.
    * **Reduction**: one value per problem, pooled over the sample axes; nothing is
      averaged over batch axes (take ``jnp.mean`` yourself). ``[samples, dims]`` gives a
      scalar; ``[batch, time, dims]`` gives a scalar with the default ``axis=None``
      (every frame of the batch is a sample) and ``[batch]`` with ``axis=1`` (one
      problem per sequence). ``jax.vmap(functools.partial(dcca_loss, top_k=k))`` over a
      batch axis gives the same as ``axis`` (tested).
    * **Mask**: ``where`` (boolean, broadcastable to ``view.shape[:-1]``; a trailing
      size-1 axis such as ``mask[..., None]`` is accepted) drops padded samples from the
      means and covariances with static shapes; they may hold NaN and get a zero
      gradient. Masking is equivalent to slicing the valid samples out.
    * **Rank deficiency**: the centred samples span at most :math:`n-1` dimensions. If
      :math:`n - 1 \le \max(d_a, d_b)`, a view can match any other view perfectly, the
      unregularised canonical correlations are all 1 whatever the data, and the ridge
      terms ``r1``, ``r2`` (which keep :math:`\Sigma` invertible) decide the value.
      Deep CCA on a batch of 32 frames with a 128-dim latent is such a case. The
      function then emits a :class:`RankDeficientWarning` once per shape (at trace time,
      from the static number of sample slots per problem; a mask can lower the valid
      count further without a warning).
    * **Degenerate inputs**: a constant view, a dead unit (constant column), identical
      views, repeated singular values, fully masked problems or a single valid sample
      all give a finite value (0 where nothing correlates) and finite gradients.

    ``top_k`` under ``jax.jit``: it may be a Python int (validated, e.g. in
    ``jax.jit(lambda a, b: dcca_loss(a, b, top_k=2))`` or
    ``jax.jit(dcca_loss, static_argnames="top_k")``) or a traced integer
    (``jax.jit(dcca_loss)(a, b, top_k=2)`` works without ceremony: the top ``k``
    singular values are selected with a mask, so no shape depends on it and changing it
    does not recompile; a traced value cannot be range-checked and is clipped to
    ``[1, min(dims_a, dims_b)]``). ``r1``, ``r2`` and ``eps`` may be traced; ``axis`` is
    structural and must be static (a closure or ``static_argnames="axis"``).

    Inverse square roots use the symmetric eigendecomposition with eigenvalues floored
    at ``eps``: :math:`\Sigma^{-1/2} = V \operatorname{diag}(\max(w, \epsilon)^{-1/2}) V^\top`.

    **Stable gradients.** Two pieces have custom JVPs so that the gradient is exact and
    finite even with repeated eigen- or singular values (common: with fewer samples
    than dimensions every null direction of :math:`\Sigma_{aa}` has eigenvalue
    :math:`r_1`, and strongly aligned views have many canonical correlations near 1):

    * :math:`\Sigma^{-1/2}` is differentiated with the Daleckii--Krein formula
      (divided differences of :math:`x^{-1/2}`, finite for equal eigenvalues) instead of
      through ``eigh``'s eigenvector derivative, which divides by :math:`w_i - w_j`.
    * :math:`\sum_{i\le k}\sigma_i(T)` is differentiated as
      :math:`\langle U_k V_k^\top, dT\rangle` from an SVD of :math:`T` (the
      generic SVD JVP divides by :math:`\sigma_i^2 - \sigma_j^2`). :math:`U_k V_k^\top`
      is unique under rotations within blocks of equal singular values, so the gradient
      is well defined whenever :math:`\sigma_k > \sigma_{k+1}` (always for
      ``top_k=None`` with full-rank :math:`T`); at a tie across the cut-off it is a valid
      subgradient. In particular, with ``top_k=None`` and a rank-deficient :math:`T` (a
      dead unit, a constant view, fewer samples than dims) the smallest singular values
      are 0, where :math:`\sigma` has a kink like :math:`|x|`: the gradient is then a
      finite subgradient (it may revive the dead unit); use ``top_k`` at most the rank
      for a loss that is smooth there. We use the SVD of :math:`T` rather than ``eigh`` of
      :math:`T^\top T` because the latter needs :math:`\sqrt{\lambda}`, whose
      derivative is infinite at :math:`\lambda = 0`, squares the condition number,
      and again has a degenerate-eigenvalue JVP.

    **Differences from the widely copied PyTorch DeepCCA** (``Michaelvll/DeepCCA``,
    ``objectives.py``): its default top-k path takes eigenvalues of
    :math:`T^\top T + r_1 I` (clamped at ``eps``) and sums their square roots, i.e.
    :math:`\sum_i \sqrt{\sigma_i^2 + r_1}`, which inflates every term by the ridge;
    here the singular values of :math:`T` are summed directly. Its
    ``use_all_singular_values=True`` path computes
    :math:`\operatorname{tr}\sqrt{\cdot}` element-wise (a sum of column norms, not
    the nuclear norm); ``top_k=None`` here is the true nuclear norm. It drops
    eigenpairs below ``eps`` where we floor them (identical when
    :math:`r > \epsilon`), and it requires :math:`d_a = d_b`. Defaults r1 = r2 = 1e-3,
    eps = 1e-9 are the PyTorch ones.

    Args:
      view_a: first view, ``[..., dims_a]`` (e.g. ``[samples, dims_a]`` or
        ``[batch, time, dims_a]``).
      view_b: second view, ``[..., dims_b]``, with the same leading shape as ``view_a``.
      top_k: number of canonical correlations summed; ``None`` for all
        (``min(dims_a, dims_b)``). Keyword-only; see above for ``jax.jit``.
      axis: the sample axis or axes (never the last axis); ``None`` (default): every
        axis but the last. Negative values count from the end of the view's shape.
      where: optional boolean mask of valid samples, broadcastable to
        ``view_a.shape[:-1]`` (or to ``view_a.shape[:-1] + (1,)``).
      r1: ridge added to the auto-covariance of ``view_a``.
      r2: ridge added to the auto-covariance of ``view_b``.
      eps: eigenvalue floor of the inverse square roots.

    Returns:
      Minus the total correlation, one value per problem: the shape of the batch axes
      (a scalar when every leading axis is a sample axis).

    Raises:
      ValueError: for views with fewer than 2 dimensions or different leading shapes, an
        ``axis`` that includes the feature axis, a mask that does not broadcast, fewer
        than two sample slots per problem, or an out-of-range ``top_k``.

    Warns:
      RankDeficientWarning: once per shape, when samples - 1 <= max(dims_a, dims_b).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from ddat_jax.losses import dcca_loss
      >>> ka, kb = jax.random.split(jax.random.key(0))
      >>> a = jax.random.normal(ka, (4, 50, 6))   # [batch, time, dims_a]
      >>> b = a[..., :3] + 0.1 * jax.random.normal(kb, (4, 50, 3))   # 3 shared dims
      >>> loss_fn = jax.jit(dcca_loss, static_argnames="axis")
      >>> print(f"{float(-loss_fn(a, b)):.3f}")   # pooled: 200 samples, up to 3
      2.980
      >>> loss_fn(a, b, axis=1, top_k=2).shape   # one problem per sequence
      (4,)
      >>> valid = jnp.arange(50) < jnp.array([[50], [40], [30], [20]])   # [batch, time]
      >>> value_and_grad = jax.jit(jax.value_and_grad(dcca_loss))
      >>> loss, grads = value_and_grad(a, b, top_k=2, where=valid)   # top_k may be traced
      >>> bool(jnp.all(jnp.isfinite(grads))), bool(jnp.all(grads[1, 40:] == 0))
      (True, True)

    References:
      Andrew, Arora, Bilmes & Livescu, *Deep canonical correlation analysis*, ICML 2013.
      Rajan, Brutti & Cavallaro, *Robust latent representations via cross-modal
      translation and alignment* (SEW), ICASSP 2021.
      Daleckii & Krein, *Integration and differentiation of functions of Hermitian
      operators*, 1965 (derivative of matrix functions).
    """
    a = jnp.asarray(view_a)
    b = jnp.asarray(view_b)
    if a.ndim < 2 or b.ndim < 2 or a.shape[:-1] != b.shape[:-1]:
        raise ValueError(
            "dcca_loss expects views [..., samples, dims] with the same leading shape (the "
            f"last axis is the feature axis); got shapes {a.shape} and {b.shape}"
        )
    ndim = a.ndim
    lead = a.shape[:-1]
    samples = tuple(range(ndim - 1)) if axis is None else _normalise_axis(axis, ndim)
    if ndim - 1 in samples:
        raise ValueError(
            f"dcca_loss: axis={axis!r} includes the last (feature) axis of views with "
            f"shape {a.shape}; axis names the sample axes"
        )
    batch = tuple(i for i in range(ndim - 1) if i not in samples)
    batch_shape = tuple(lead[i] for i in batch)
    m = 1
    for i in samples:
        m *= lead[i]
    if m < 2:
        raise ValueError(
            f"dcca_loss needs at least 2 samples per problem; got {m} (shapes {a.shape} "
            f"and {b.shape}, sample axes {samples})"
        )
    da, db = a.shape[-1], b.shape[-1]
    k = _check_top_k(top_k, min(da, db))
    w = None
    if where is not None:
        w = jnp.asarray(where, dtype=bool)
        if w.ndim == ndim and w.shape[-1] == 1:
            w = w[..., 0]
        try:
            ok = jnp.broadcast_shapes(w.shape, lead) == lead
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"dcca_loss: where must be broadcastable to the views' leading shape "
                f"{lead}; got where {jnp.shape(where)}"
            )
    _warn_rank(m, da, db)
    return _dcca_core(a, b, w, k, r1, r2, eps, perm=batch + samples, batch_shape=batch_shape)
