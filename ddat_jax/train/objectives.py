"""Training objectives: losses by name, weighted terms, and a dev score for selection.

An :class:`Objective` is chosen before tracing (it is a frozen, hashable dataclass), so a
whole training stays one pure, ``vmap``-able function of ``(hparams, key)``. It is

* a tuple of :class:`Term` s, each ``weight · LOSSES[loss](output, target, mask)``,
  where the target is a data target (``"targets/<name>"``) or another model output
  (``"outputs/<name>"``, e.g. a Deep-CCA alignment of two latents);
* a :class:`Score` (higher is better) computed on the whole dev partition after each
  evaluated epoch, which picks the best parameters and drives early stopping.

Term weights come from ``hparams["loss_weights"][term.weight_key]`` (1.0 when the key
is absent), so they can be swept by ``vmap`` like the learning rate.

Shapes: outputs and targets are ``[N, T, ...]`` (sequences, frames, trailing dims); the
mask is ``[N, T]`` bool. All reductions pool the valid frames of the whole batch (for
a correlation: one CCC over the concatenation of the frames, the AVEC 2016 way).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ddat_jax import losses

TARGETS, OUTPUTS = "targets/", "outputs/"


def _frame_mask(mask: jax.Array, ndim: int) -> jax.Array:
    """``[N, T]`` -> ``[N, T, 1, ...]`` with ``ndim`` axes (broadcasts over trailing dims)."""
    return jnp.reshape(mask, mask.shape + (1,) * (ndim - mask.ndim))


def mse_loss(pred, target, mask, **options) -> jax.Array:
    """Mean squared error over the valid frames and every trailing dim."""
    return losses.mse(pred, target, axis=None, where=_frame_mask(mask, pred.ndim), **options)


def ccc_term(pred, target, mask, **options) -> jax.Array:
    """``1 − CCC`` over all valid frames (axes 0 and 1), averaged over trailing dims."""
    where = _frame_mask(mask, pred.ndim)
    return jnp.mean(losses.ccc_loss(pred, target, axis=(0, 1), where=where, **options))


def pcc_term(pred, target, mask, **options) -> jax.Array:
    """``1 − PCC`` over all valid frames (axes 0 and 1), averaged over trailing dims."""
    where = _frame_mask(mask, pred.ndim)
    return jnp.mean(losses.pcc_loss(pred, target, axis=(0, 1), where=where, **options))


def xent_loss(logits, target, mask, **options) -> jax.Array:
    """Mean softmax cross-entropy over valid frames.

    ``logits [N, T, ..., C]`` against integer classes ``[N, T, ...]`` or one-hot /
    probabilities ``[N, T, ..., C]``.
    """
    if options:
        raise ValueError(f"xent takes no options; got {sorted(options)}")
    if target.ndim == logits.ndim:
        ce = optax.softmax_cross_entropy(logits, target.astype(logits.dtype))
    else:
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, target.astype(jnp.int32))
    where = jnp.broadcast_to(_frame_mask(mask, ce.ndim), ce.shape)
    count = jnp.maximum(jnp.sum(where), 1).astype(ce.dtype)
    return jnp.sum(jnp.where(where, ce, 0.0)) / count


def dcca_term(view_a, view_b, mask, **options) -> jax.Array:
    """``−Σ top_k`` canonical correlations of two ``[N, T, D]`` views over valid frames.

    Options ``top_k``, ``r1``, ``r2`` (see :func:`ddat_jax.losses.dcca_loss`); the
    frames are pooled as samples and the mask drops padded frames from the covariances.
    """
    if "where" not in inspect.signature(losses.dcca_loss).parameters:
        raise NotImplementedError(
            "the dcca term needs ddat_jax.losses.dcca_loss(..., where=...) (issue 13)"
        )
    return losses.dcca_loss(view_a, view_b, axis=(0, 1), where=mask, **options)


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "mse": mse_loss,
    "ccc": ccc_term,
    "pcc": pcc_term,
    "xent": xent_loss,
    "dcca": dcca_term,
}
# Losses whose target has the output's exact shape (xent and dcca have their own rules).
_SAME_SHAPE = ("mse", "ccc", "pcc")


# ------------------------------------------------------------------------- scores


def _dims(x: jax.Array, dims: tuple[int, ...]) -> jax.Array:
    return x if not dims else x[..., jnp.asarray(dims)]


def ccc_score(pred, target, mask, dims) -> jax.Array:
    """CCC over all valid frames of output dim ``dims[0]`` (AVEC 2016)."""
    d = dims[0] if dims else 0
    return losses.ccc(pred[..., d], target[..., d], axis=(0, 1), where=mask)


def mean_ccc_score(pred, target, mask, dims) -> jax.Array:
    """Mean over ``dims`` (``()``: all) of the per-dim CCC over all valid frames."""
    p, t = _dims(pred, dims), _dims(target, dims)
    return jnp.mean(losses.ccc(p, t, axis=(0, 1), where=_frame_mask(mask, p.ndim)))


def neg_mse_score(pred, target, mask, dims) -> jax.Array:
    """``−MSE`` over the valid frames of ``dims`` (``()``: all)."""
    p, t = _dims(pred, dims), _dims(target, dims)
    return -losses.mse(p, t, axis=None, where=_frame_mask(mask, p.ndim))


def macro_f1_score(logits, target, mask, dims) -> jax.Array:
    """Macro-F1 of ``argmax(logits)`` against integer (or one-hot) classes.

    Averaged over the classes present in the targets or the predictions of the valid
    frames (scikit-learn's default); ``dims`` is ignored.
    """
    del dims
    num = logits.shape[-1]
    pred = jnp.argmax(logits, axis=-1)
    if target.ndim == logits.ndim:
        target = jnp.argmax(target, axis=-1)
    valid = _frame_mask(mask, pred.ndim)
    p = jax.nn.one_hot(pred, num) * valid[..., None]
    t = jax.nn.one_hot(target.astype(jnp.int32), num) * valid[..., None]
    axes = tuple(range(p.ndim - 1))
    tp = jnp.sum(p * t, axis=axes)
    denom = jnp.sum(p, axis=axes) + jnp.sum(t, axis=axes)  # 2 TP + FP + FN
    present = denom > 0
    f1 = jnp.where(present, 2 * tp / jnp.where(present, denom, 1.0), 0.0)
    return jnp.sum(f1) / jnp.maximum(jnp.sum(present), 1)


SCORES: dict[str, Callable[..., jax.Array]] = {
    "ccc": ccc_score,
    "mean_ccc": mean_ccc_score,
    "macro_f1": macro_f1_score,
    "neg_mse": neg_mse_score,
}


def _check_name(kind: str, name: str, valid: Mapping[str, Any]) -> None:
    if name not in valid:
        raise ValueError(f"Unknown {kind} {name!r}; valid: {sorted(valid)}")


def _check_ref(ref: str, what: str) -> None:
    if not (ref.startswith(TARGETS) or ref.startswith(OUTPUTS)) or ref.count("/") != 1:
        raise ValueError(f"{what} must be 'targets/<name>' or 'outputs/<name>'; got {ref!r}")


def _resolve(ref: str, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> Any:
    kind, name = ref.split("/")
    return (outputs if kind == "outputs" else batch["targets"])[name]


# ----------------------------------------------------------------------- dataclasses


@dataclasses.dataclass(frozen=True)
class Term:
    """One weighted loss term: ``weight · LOSSES[loss](outputs[output], target, mask)``.

    Attributes:
      loss: a key of :data:`LOSSES`.
      output: the model output it scores.
      target: ``"targets/<name>"`` (a data target) or ``"outputs/<name>"`` (another
        model output, e.g. a DCCA term between two latents).
      weight: key of the weight in ``hparams["loss_weights"]``; default the term's name.
      name: the term's name (history, metrics); default ``output``.
      options: keyword options of the loss as ``((key, value), ...)``, e.g.
        ``(("top_k", 4),)`` for ``dcca``.
    """

    loss: str
    output: str
    target: str
    weight: str | None = None
    name: str | None = None
    options: tuple = ()

    def __post_init__(self):
        _check_name("loss", self.loss, LOSSES)
        _check_ref(self.target, f"term {self.key!r}: target")
        object.__setattr__(
            self, "options", tuple((str(k), v) for k, v in dict(self.options).items())
        )

    @property
    def key(self) -> str:
        """The term's name."""
        return self.name or self.output

    @property
    def weight_key(self) -> str:
        """Its key in ``hparams["loss_weights"]``."""
        return self.weight or self.key

    def value(self, outputs, batch) -> jax.Array:
        """The unweighted loss of this term on one batch."""
        target = _resolve(self.target, outputs, batch)
        return LOSSES[self.loss](outputs[self.output], target, batch["mask"], **dict(self.options))


@dataclasses.dataclass(frozen=True)
class Score:
    """The dev score that selects the best parameters (higher is better).

    Attributes:
      kind: a key of :data:`SCORES`: ``"ccc"`` (CCC of dim ``dims[0]`` over all valid
        frames), ``"mean_ccc"`` (mean CCC over ``dims``), ``"macro_f1"`` (argmax of
        logits vs integer classes), ``"neg_mse"``.
      output: the scored model output.
      target: ``"targets/<name>"``.
      dims: trailing-dim indices scored (``()``: all).
    """

    kind: str = "ccc"
    output: str = "emotion"
    target: str = "targets/emotion"
    dims: tuple[int, ...] = (0,)

    def __post_init__(self):
        _check_name("score", self.kind, SCORES)
        if not self.target.startswith(TARGETS):
            raise ValueError(f"a score's target must be 'targets/<name>'; got {self.target!r}")
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))

    @property
    def target_name(self) -> str:
        return self.target[len(TARGETS) :]

    def value(self, outputs, batch) -> jax.Array:
        """The score of ``outputs`` against ``batch`` (a whole partition)."""
        target = batch["targets"][self.target_name]
        return SCORES[self.kind](outputs[self.output], target, batch["mask"], self.dims)


@dataclasses.dataclass(frozen=True)
class Objective:
    """Loss terms plus the dev score; pure, hashable, chosen before tracing."""

    terms: tuple[Term, ...]
    score: Score = Score()

    def __post_init__(self):
        object.__setattr__(self, "terms", tuple(self.terms))
        if not self.terms:
            raise ValueError("an objective needs at least one term")
        names = [t.key for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"term names must be unique; got {names}")

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.terms)

    @property
    def weight_keys(self) -> tuple[str, ...]:
        """The ``hparams["loss_weights"]`` keys the terms read (sorted, unique)."""
        return tuple(sorted({t.weight_key for t in self.terms}))

    @property
    def train_targets(self) -> tuple[str, ...]:
        """Data targets the terms read (sorted)."""
        refs = {t.target[len(TARGETS) :] for t in self.terms if t.target.startswith(TARGETS)}
        return tuple(sorted(refs))

    def loss(self, outputs, batch, hparams) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``(Σ w_i · term_i, {term: unweighted value})``; the engine adds L2."""
        weights = hparams["loss_weights"]
        values = {t.key: t.value(outputs, batch) for t in self.terms}
        total = jnp.zeros((), jnp.float32)
        for t in self.terms:
            total = total + weights.get(t.weight_key, 1.0) * values[t.key]
        return total, values

    def dev_score(self, outputs, batch) -> jax.Array:
        """The selection score on a whole partition (scalar, higher is better)."""
        return self.score.value(outputs, batch)

    def validate(self, output_shapes, train_targets, dev_targets=None) -> None:
        """Checks names and shapes before tracing; raises ``ValueError`` naming the problem.

        Args:
          output_shapes: ``{output: shape-like}`` of the model (any leading batch size).
          train_targets: ``{name: array or ShapeDtypeStruct}`` of the train partition.
          dev_targets: the same for dev (the score's target must be there).
        """
        outs = {k: tuple(v.shape)[2:] for k, v in output_shapes.items()}
        tgts = {k: (tuple(v.shape)[2:], v.dtype) for k, v in train_targets.items()}
        for t in self.terms:
            _validate_term(t, outs, tgts)
        s = self.score
        if s.output not in outs:
            raise ValueError(
                f"score output {s.output!r} is not a model output; outputs: {sorted(outs)}"
            )
        if dev_targets is not None and s.target_name not in dev_targets:
            raise ValueError(
                f"the dev data has no target {s.target_name!r} for the score; "
                f"dev targets: {sorted(dev_targets)}"
            )
        size = outs[s.output][-1] if outs[s.output] else 1
        bad = [d for d in s.dims if not 0 <= d < size]
        if bad and s.kind != "macro_f1":
            raise ValueError(
                f"score dims {bad} out of range for output {s.output!r} of size {size}"
            )


def _validate_term(t: Term, outs, tgts) -> None:
    where = f"term {t.key!r}"
    if t.output not in outs:
        raise ValueError(f"{where}: {t.output!r} is not a model output; outputs: {sorted(outs)}")
    kind, name = t.target.split("/")
    if kind == "outputs":
        if name not in outs:
            raise ValueError(f"{where}: target output {name!r} unknown; outputs: {sorted(outs)}")
        tshape, tdtype = outs[name], jnp.float32
    else:
        if name not in tgts:
            raise ValueError(f"{where}: no data target {name!r}; targets: {sorted(tgts)}")
        tshape, tdtype = tgts[name]
    oshape = outs[t.output]
    if t.loss in _SAME_SHAPE and oshape != tshape:
        raise ValueError(
            f"{where}: output {t.output!r} has per-frame shape {oshape} but target "
            f"{t.target!r} has {tshape}"
        )
    if t.loss == "xent" and tshape not in (oshape, oshape[:-1]):
        raise ValueError(
            f"{where}: xent logits {oshape} need integer classes {oshape[:-1]} or one-hot "
            f"{oshape}; target has {tshape}"
        )
    if t.loss == "xent" and tshape == oshape[:-1] and not jnp.issubdtype(tdtype, jnp.integer):
        raise ValueError(f"{where}: xent class targets must be integers; got {tdtype}")
    if t.loss == "dcca" and (len(oshape) != 1 or len(tshape) != 1):
        raise ValueError(f"{where}: dcca needs two [N, T, D] views; got {oshape} and {tshape}")


def heads_objective(losses_by_head: Mapping[str, str], score: Score | None = None) -> Objective:
    """One term per head against the data target of the same name.

    Args:
      losses_by_head: ``{head: loss name}``, e.g. ``{"emotion": "ccc", "pu": "mse"}``.
      score: the dev score; default CCC of ``emotion`` dim 0.

    Returns:
      An :class:`Objective` whose terms (sorted by head) are named and weighted by head.
    """
    terms = tuple(
        Term(loss=str(kind), output=str(h), target=TARGETS + str(h))
        for h, kind in sorted(losses_by_head.items())
    )
    return Objective(terms=terms, score=score or Score())


__all__ = [
    "LOSSES",
    "SCORES",
    "Objective",
    "Score",
    "Term",
    "heads_objective",
]
