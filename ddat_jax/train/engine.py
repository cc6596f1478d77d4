"""The training engine: small pure functions bound to a frozen :class:`TrainSpec`.

purejaxrl-style. Everything static (model, objective, epochs, batch size, optimizer,
shapes) is resolved before tracing; a training is a pure function of continuous
hyper-parameters, a PRNG key and the data arrays, so a grid of trainings is one
``vmap`` and two trainings with equal shapes share one compiled program::

    state = init_state(spec, hparams, key, arrays)         # params, optimizer, best
    for epoch in range(epochs):                            # run_epochs: lax.scan
        perm = shuffle(fold_in(k_shuffle, epoch))          # real sequences first
        for b in range(num_batches):                       # run_epoch: lax.scan
            inputs + noise_std·N(0, 1) at valid frames -> objective.loss + l2·Σ‖W‖²
            -> optimizer step (train_step); skipped for a batch of padding only
        evaluate: objective.dev_score on dev -> best params -> early stopping

Members whose loss or parameters became NaN/Inf keep their last finite parameters and
optimizer state (checked after every step) and are reported in ``nonfinite_epoch``;
members that early-stopped keep the state of their stopping epoch. The scan still runs
to ``epochs`` (shapes are static); a stopped member's epoch is a no-op.

PRNG streams: ``key`` is split by ``fold_in`` into ``init`` (0), ``shuffle`` (1) and
``noise`` (2); the shuffle of epoch ``e`` uses ``fold_in(k_shuffle, e)`` and the noise of
step ``b`` uses ``split(fold_in(k_noise, e), num_batches)[b]``, so a run resumed at an
epoch boundary repeats its randomness exactly. Both streams are counter based, so
padding the train partition to a larger capacity (:attr:`TrainSpec.train_size`) leaves
the order of the real sequences and the noise of every real minibatch unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from ddat_jax.train.data import device_arrays, example_inputs, prepare_data
from ddat_jax.train.objectives import Objective

PyTree = Any

STREAM_INIT, STREAM_SHUFFLE, STREAM_NOISE = 0, 1, 2
OPTIMIZERS = ("adam", "sgd")


# ------------------------------------------------------------------------- types


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Everything static about a training (hashable: a ``jit`` static argument).

    Attributes:
      model: a linen module; ``apply({"params": p}, inputs, mask=mask)`` returns
        ``{output: [N, T, ...]}``.
      objective: the loss terms and the dev score.
      epochs: maximum number of epochs.
      batch_size: sequences per minibatch.
      patience: early stopping after this many epochs without a better dev score
        (``epoch - best_epoch >= patience``); ``<= 0`` disables it.
      optimizer: ``"adam"`` or ``"sgd"``.
      momentum: momentum of ``"sgd"``.
      nesterov: Nesterov momentum for ``"sgd"``.
      eval_every: dev evaluation every this many epochs (and at the last one).
      eval_batch_size: sequences per forward pass on dev; 0: all at once.
      train_size: pad the train partition to at least this many sequences (fully
        masked, never sampled) so trainings on fewer sequences share the program.
    """

    model: Any
    objective: Objective
    epochs: int
    batch_size: int
    patience: int = 0
    optimizer: str = "adam"
    momentum: float = 0.9
    nesterov: bool = False
    eval_every: int = 1
    eval_batch_size: int = 0
    train_size: int | None = None

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; valid: {list(OPTIMIZERS)}")
        for name in ("epochs", "batch_size", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not isinstance(self.objective, Objective):
            raise ValueError(f"objective must be an Objective; got {type(self.objective).__name__}")


def train_spec_from_config(train: Any, model: Any, objective: Objective, **overrides) -> TrainSpec:
    """Builds a :class:`TrainSpec` from a ``config.train`` section (the only config reader).

    ``overrides`` replace fields (e.g. ``epochs=12``, ``train_size=40``).
    """
    fields = {
        "epochs": int(train.epochs),
        "batch_size": int(train.batch_size),
        "patience": int(train.patience),
        "optimizer": str(train.optimizer),
        "momentum": float(train.momentum),
        "nesterov": bool(train.nesterov),
        "eval_every": int(train.eval_every),
        "eval_batch_size": int(train.eval_batch_size),
    }
    fields.update(overrides)
    return TrainSpec(model=model, objective=objective, **fields)


class History(struct.PyTreeNode):
    """Per-epoch values ``[E]`` (NaN / False in epochs without training or evaluation).

    ``train_loss`` is the epoch's mean weighted loss (L2 included), ``terms`` the mean
    unweighted value of each term, ``dev_score`` the dev score, ``best_score`` the best so
    far, ``active`` whether the member trained in that epoch.
    """

    train_loss: jax.Array
    terms: dict
    dev_score: jax.Array
    best_score: jax.Array
    active: jax.Array


class TrainState(struct.PyTreeNode):
    """The whole state of one training (a pytree; checkpointed between chunks)."""

    params: PyTree
    opt_state: PyTree
    best_params: PyTree
    best_score: jax.Array
    best_epoch: jax.Array
    stopped_epoch: jax.Array
    nonfinite_epoch: jax.Array
    history: History


class TrainResult(struct.PyTreeNode):
    """What a training returns.

    ``best_params``: parameters of the best dev score (the initial ones if no evaluation
    was finite); ``best_score`` (``-inf`` if none); ``best_epoch`` (−1 if none);
    ``final_params`` (frozen since ``stopped_epoch``); ``stopped_epoch`` (early stop or
    non-finite, −1 if it ran to the end); ``nonfinite_epoch`` (−1 if none); ``history``.
    """

    best_params: PyTree
    best_score: jax.Array
    best_epoch: jax.Array
    final_params: PyTree
    stopped_epoch: jax.Array
    nonfinite_epoch: jax.Array
    history: History


# ------------------------------------------------------------------------ pieces


def make_optimizer(spec: TrainSpec, learning_rate: Any) -> optax.GradientTransformation:
    """The optimizer with the learning rate injected (``optax.inject_hyperparams``)."""
    if spec.optimizer == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    return optax.inject_hyperparams(optax.sgd, static_args=("momentum", "nesterov"))(
        learning_rate=learning_rate, momentum=float(spec.momentum), nesterov=bool(spec.nesterov)
    )


def l2_penalty(params: PyTree) -> jax.Array:
    """``Σ w²`` over weight matrices (leaves with ``ndim >= 2``), biases excluded."""
    leaves = [jnp.sum(jnp.square(p)) for p in jax.tree.leaves(params) if p.ndim >= 2]
    return sum(leaves, jnp.zeros((), jnp.float32))


def _all_finite(tree: PyTree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def init_params(model: Any, key: jax.Array, inputs: PyTree) -> PyTree:
    """``model``'s initial parameters (stream ``init`` of ``key``), from input shapes."""
    k = jax.random.fold_in(key, STREAM_INIT)
    return model.init(k, example_inputs(inputs), mask=None)["params"]


def init_state(
    spec: TrainSpec, hparams: PyTree, key: jax.Array, arrays: PyTree, params: PyTree = None
) -> TrainState:
    """The state before epoch 0; ``params`` (warm start) replaces the initialisation."""
    if params is None:
        params = init_params(spec.model, key, arrays["train"]["inputs"])
    else:
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
    nan = jnp.full((spec.epochs,), jnp.nan, jnp.float32)
    history = History(
        train_loss=nan,
        terms={name: nan for name in spec.objective.term_names},
        dev_score=nan,
        best_score=nan,
        active=jnp.zeros((spec.epochs,), bool),
    )
    minus_one = jnp.array(-1, jnp.int32)
    return TrainState(
        params=params,
        opt_state=make_optimizer(spec, hparams["learning_rate"]).init(params),
        best_params=params,
        best_score=jnp.array(-jnp.inf, jnp.float32),
        best_epoch=minus_one,
        stopped_epoch=minus_one,
        nonfinite_epoch=minus_one,
        history=history,
    )


def add_noise(inputs: PyTree, mask: jax.Array, key: jax.Array, std: jax.Array) -> PyTree:
    """``x + std·N(0, 1)`` at the valid frames of every floating input leaf."""
    leaves, treedef = jax.tree.flatten(inputs)
    single = len(leaves) == 1
    out = []
    for i, x in enumerate(leaves):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            out.append(x)
            continue
        k = key if single else jax.random.fold_in(key, i)
        valid = jnp.reshape(mask, mask.shape + (1,) * (x.ndim - 2))
        out.append(jnp.where(valid, x + std * jax.random.normal(k, x.shape, x.dtype), x))
    return jax.tree.unflatten(treedef, out)


def loss_fn(spec: TrainSpec, params, batch, key, hparams) -> tuple[jax.Array, dict]:
    """``objective.loss`` on the noisy minibatch, plus ``l2 · Σ‖W‖²``."""
    inputs = add_noise(batch["inputs"], batch["mask"], key, hparams["noise_std"])
    outputs = spec.model.apply({"params": params}, inputs, mask=batch["mask"])
    total, terms = spec.objective.loss(outputs, batch, hparams)
    return total + hparams["l2"] * l2_penalty(params), terms


def train_step(spec: TrainSpec, carry, batch, key, hparams):
    """One optimizer step; a non-finite step leaves ``(params, opt_state)`` unchanged.

    Args:
      carry: ``(params, opt_state, ok)``; ``ok`` is False once a step went non-finite
        (the member then keeps its last finite state for good).
      batch: ``{"inputs", "mask", "targets"}`` of one minibatch.

    Returns:
      ``((params, opt_state, ok), (loss, {term: value}))``.
    """
    params, opt_state, ok = carry
    grad_fn = jax.value_and_grad(loss_fn, argnums=1, has_aux=True)
    (loss, terms), grads = grad_fn(spec, params, batch, key, hparams)
    updates, new_opt = make_optimizer(spec, 0.0).update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = ok & jnp.isfinite(loss) & _all_finite(new_params) & _all_finite(new_opt)
    params = _select(keep, new_params, params)
    opt_state = _select(keep, new_opt, opt_state)
    return (params, opt_state, keep), (loss, terms)


def epoch_batches(spec: TrainSpec, key, epoch, train) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The minibatches of one epoch: ``(indices [nb, B], noise keys [nb], real [nb])``.

    The real sequences (``train["count"]``) come first in a uniform shuffle, padding rows
    after them; ``real[b]`` is False for a minibatch of padding only.
    """
    rows = train["mask"].shape[0]
    nb = rows // spec.batch_size
    k_shuffle = jax.random.fold_in(jax.random.fold_in(key, STREAM_SHUFFLE), epoch)
    bits = jax.random.bits(k_shuffle, (rows,))
    is_real = jnp.arange(rows) < train["count"]
    # argsort of random bits: a uniform shuffle that compiles to less code than
    # jax.random.permutation; padding rows sort last (the sort is stable).
    top = jnp.array(jnp.iinfo(bits.dtype).max, bits.dtype)
    perm = jnp.argsort(jnp.where(is_real, bits, top)).astype(jnp.int32)
    k_noise = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, STREAM_NOISE), epoch), nb)
    real = jnp.arange(nb) * spec.batch_size < train["count"]
    return perm.reshape(nb, spec.batch_size), k_noise, real


def evaluate(spec: TrainSpec, params: PyTree, part: Mapping[str, Any]) -> jax.Array:
    """The objective's dev score of ``params`` on a whole partition."""
    out = predict(spec.model, params, part["inputs"], part["mask"], spec.eval_batch_size)
    return spec.objective.dev_score(out, part)


def run_epoch(spec: TrainSpec, state: TrainState, epoch, hparams, key, arrays) -> TrainState:
    """One epoch of a member that has not stopped: steps, evaluation, best, stopping."""
    tr = arrays["train"]
    perm, k_noise, real = epoch_batches(spec, key, epoch, tr)
    zero_terms = {n: jnp.zeros((), jnp.float32) for n in spec.objective.term_names}

    def step(carry, xs):
        k_step, idx, is_real = xs
        batch = {
            "inputs": jax.tree.map(lambda a: a[idx], tr["inputs"]),
            "mask": tr["mask"][idx],
            "targets": {k: v[idx] for k, v in tr["targets"].items()},
        }
        skip = lambda c, *_: (c, (jnp.zeros((), jnp.float32), zero_terms))
        return jax.lax.cond(
            is_real, lambda c: train_step(spec, c, batch, k_step, hparams), skip, carry
        )

    carry = (state.params, state.opt_state, jnp.array(True))
    (params, opt_state, ok), (losses, terms) = jax.lax.scan(step, carry, (k_noise, perm, real))
    n_real = jnp.maximum(jnp.sum(real), 1).astype(jnp.float32)
    mean = lambda v: jnp.sum(jnp.where(real, v, 0.0)) / n_real
    is_eval = ((epoch + 1) % spec.eval_every == 0) | (epoch == spec.epochs - 1)
    score = jax.lax.cond(
        is_eval,
        lambda p: evaluate(spec, p, arrays["dev"]).astype(jnp.float32),
        lambda p: jnp.array(jnp.nan, jnp.float32),
        params,
    )
    return _after_epoch(
        spec,
        state,
        epoch,
        params,
        opt_state,
        ok,
        is_eval,
        score,
        mean(losses),
        {n: mean(v) for n, v in terms.items()},
    )


def _after_epoch(spec, state, epoch, params, opt_state, ok, is_eval, score, loss, terms):
    """Best parameters, early stopping, NaN isolation and the history of one epoch."""
    went_nonfinite = ~ok | (is_eval & ~jnp.isfinite(score))
    improved = ~went_nonfinite & is_eval & (score > state.best_score)
    best_epoch = jnp.where(improved, epoch, state.best_epoch).astype(jnp.int32)
    best_score = jnp.where(improved, score, state.best_score)
    stop = ~went_nonfinite & is_eval & (spec.patience > 0) & (epoch - best_epoch >= spec.patience)
    h = state.history
    history = History(
        train_loss=h.train_loss.at[epoch].set(loss),
        terms={n: h.terms[n].at[epoch].set(terms[n]) for n in h.terms},
        dev_score=h.dev_score.at[epoch].set(score),
        best_score=h.best_score.at[epoch].set(best_score),
        active=h.active.at[epoch].set(True),
    )
    return TrainState(
        params=params,
        opt_state=opt_state,
        best_params=_select(improved, params, state.best_params),
        best_score=best_score,
        best_epoch=best_epoch,
        stopped_epoch=jnp.where(stop | went_nonfinite, epoch, state.stopped_epoch).astype(
            jnp.int32
        ),
        nonfinite_epoch=jnp.where(went_nonfinite, epoch, state.nonfinite_epoch).astype(jnp.int32),
        history=history,
    )


def is_active(state: TrainState) -> jax.Array:
    """True while the member has neither stopped early nor gone non-finite."""
    return (state.stopped_epoch < 0) & (state.nonfinite_epoch < 0)


def run_epochs(spec, state, hparams, key, first_epoch, arrays, *, length: int) -> TrainState:
    """Epochs ``first_epoch … first_epoch + length − 1`` (``length`` static).

    A stopped member's state is left as it is (under ``vmap`` the ``cond`` becomes a
    ``select``, which is what freezes that member).
    """

    def body(s, epoch):
        s = jax.lax.cond(
            is_active(s),
            lambda s: run_epoch(spec, s, epoch, hparams, key, arrays),
            lambda s: s,
            s,
        )
        return s, None

    epochs = jnp.asarray(first_epoch, jnp.int32) + jnp.arange(length, dtype=jnp.int32)
    return jax.lax.scan(body, state, epochs)[0]


def summarize(state: TrainState) -> TrainResult:
    """The :class:`TrainResult` of a state."""
    return TrainResult(
        best_params=state.best_params,
        best_score=state.best_score,
        best_epoch=state.best_epoch,
        final_params=state.params,
        stopped_epoch=state.stopped_epoch,
        nonfinite_epoch=state.nonfinite_epoch,
        history=state.history,
    )


def train_on(spec: TrainSpec, arrays, hparams, key, init_params=None) -> TrainResult:
    """A whole training on ``arrays`` (from :func:`spec_arrays`): pure, jit/vmap-able."""
    state = init_state(spec, hparams, key, arrays, init_params)
    return summarize(run_epochs(spec, state, hparams, key, 0, arrays, length=spec.epochs))


# ------------------------------------------------------------------------ checks


def output_shapes(model: Any, inputs: PyTree) -> dict[str, jax.ShapeDtypeStruct]:
    """``model``'s outputs for a one-sequence batch (abstract; nothing runs)."""
    ex = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype), inputs)
    mask = jax.ShapeDtypeStruct((1, jax.tree.leaves(inputs)[0].shape[1]), jnp.bool_)
    params = jax.eval_shape(lambda k: init_params(model, k, ex), jax.random.key(0))
    out = jax.eval_shape(lambda p, x, m: model.apply({"params": p}, x, mask=m), params, ex, mask)
    if not isinstance(out, Mapping):
        raise ValueError("the model must return a dict {output: [batch, time, ...]}")
    return dict(out)


def spec_arrays(spec: TrainSpec, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validates ``data`` against the spec's model and objective; returns its arrays.

    Raises ``ValueError`` before tracing: bad data layout, an objective naming an
    unknown output or target, or mismatched shapes.
    """
    data = prepare_data(data)
    outs = output_shapes(spec.model, data["train"]["inputs"])
    spec.objective.validate(outs, data["train"]["targets"], data["dev"]["targets"])
    return device_arrays(
        data,
        batch_size=spec.batch_size,
        train_targets=spec.objective.train_targets,
        score_target=spec.objective.score.target_name,
        capacity=spec.train_size,
    )


def make_train(spec: TrainSpec, data: Mapping[str, Any]) -> Callable[..., TrainResult]:
    """Returns ``train(hparams, key, init_params=None) -> TrainResult``: one pure training.

    ``hparams`` is ``{"learning_rate", "noise_std", "l2", "loss_weights": {key: w}}``
    (see :func:`ddat_jax.train.hparams_from_config`); ``init_params`` warm-starts (the
    optimizer starts afresh). Jit it, vmap it over a grid:
    ``jax.jit(jax.vmap(train))(hparams_grid, keys)``. The data arrays are closed over
    (constants of a jitted ``train``); :func:`train_on` takes them as an argument.
    """
    arrays = jax.tree.map(jnp.asarray, spec_arrays(spec, data))

    def train(hparams: PyTree, key: jax.Array, init_params: PyTree = None) -> TrainResult:
        return train_on(spec, arrays, hparams, key, init_params)

    return train


# ----------------------------------------------------------------------- predict


def predict(
    model: Any, params: PyTree, inputs: PyTree, mask: jax.Array | None = None, batch_size: int = 0
) -> dict[str, jax.Array]:
    """Applies ``model`` to a partition, ``batch_size`` sequences at a time.

    Jittable (``batch_size`` static). Padding sequences added to reach a multiple of
    ``batch_size`` are fully masked and cut from the result.

    Args:
      model: a linen module returning ``{output: [batch, time, ...]}``.
      params: its parameters.
      inputs: ``[N, T, ...]`` or ``{view: [N, T, ...]}``.
      mask: ``[N, T]`` bool; ``None``: all valid.
      batch_size: sequences per forward pass; ``<= 0``: all at once.

    Returns:
      ``{output: [N, T, ...]}``.
    """
    inputs = jax.tree.map(jnp.asarray, inputs)
    first = jax.tree.leaves(inputs)[0]
    n = first.shape[0]
    mask = jnp.ones(first.shape[:2], bool) if mask is None else jnp.asarray(mask, bool)
    apply = lambda x, m: model.apply({"params": params}, x, mask=m)
    if batch_size <= 0 or batch_size >= n:
        return apply(inputs, mask)
    num = math.ceil(n / batch_size)
    pad = num * batch_size - n

    def split(a):
        a = jnp.pad(a, ((0, pad),) + ((0, 0),) * (a.ndim - 1))
        return a.reshape(num, batch_size, *a.shape[1:])

    out = jax.lax.map(lambda a: apply(*a), (jax.tree.map(split, inputs), split(mask)))
    return jax.tree.map(lambda o: o.reshape(num * batch_size, *o.shape[2:])[:n], out)


__all__ = [
    "OPTIMIZERS",
    "History",
    "TrainResult",
    "TrainSpec",
    "TrainState",
    "add_noise",
    "epoch_batches",
    "evaluate",
    "init_params",
    "init_state",
    "is_active",
    "l2_penalty",
    "loss_fn",
    "make_optimizer",
    "make_train",
    "output_shapes",
    "predict",
    "run_epoch",
    "run_epochs",
    "spec_arrays",
    "summarize",
    "train_on",
    "train_spec_from_config",
    "train_step",
]
