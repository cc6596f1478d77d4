"""The training engine: ``make_train(config, data, model) -> train(hparams, key)``.

purejaxrl-style. Everything shape-related (partition sizes, number of
minibatches, heads, loss kinds, epochs) is resolved in Python before tracing;
``train`` is a pure function of continuous hyper-parameters and a PRNG key,
so a grid of trainings is ``jax.jit(jax.vmap(train))(hparams_grid, keys)``.

One training::

    state = init(hparams, key)                 # params, optimizer, best-so-far
    for epoch in range(epochs):                # lax.scan
        perm = shuffle(fold_in(k_shuffle, epoch), N), padded to nb*B with a masked dummy
        for b in range(nb):                    # lax.scan
            x + noise_std * N(0, 1)  ->  loss = Σ_h w_h L_h + l2 Σ ‖W‖²  ->  optimizer step
            (skipped by select once the member has stopped or gone non-finite)
        dev CCC of the primary head  ->  best params by select  ->  early stopping

Members whose loss or parameters became NaN/Inf keep their last finite
parameters and optimizer state (checked after every step) and are reported in
``nonfinite_epoch``; members that early-stopped keep the parameters of their
stopping epoch. The scan still runs to ``epochs`` because shapes are static.

PRNG streams: ``key`` is split by ``fold_in`` into named streams
(``init``, ``shuffle``, ``noise``); the shuffle of epoch ``e`` uses
``fold_in(k_shuffle, e)`` and the noise of step ``b`` of epoch ``e`` uses
``split(fold_in(k_noise, e), num_batches)[b]``, so a run resumed at an epoch boundary
repeats its randomness exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddat_jax import losses
from ddat_jax.train.config import train_section, validate_train_config

PyTree = Any

# Named PRNG streams, folded into the member's key.
_STREAM_INIT, _STREAM_SHUFFLE, _STREAM_NOISE = 0, 1, 2
# The head whose target is the clean (noise-free) input when the data has none.
RECONSTRUCTION = "reconstruction"


# ----------------------------------------------------------------------------- data


def make_partition(
    x: Any, mask: Any = None, targets: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Builds one partition of the engine's data format.

    Args:
        x: features ``[N, T, F]``.
        mask: valid frames ``[N, T]`` (bool); ``None`` means all valid.
        targets: ``{head: [N, T, size] or [N, T]}``; a 2-D target gets a
            trailing axis of size 1.

    Returns:
        ``{"x": f32 [N, T, F], "mask": bool [N, T], "targets": {head: f32
        [N, T, size]}}`` as NumPy arrays.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be [N, T, F], got shape {x.shape}")
    mask = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match x {x.shape[:2]}")
    out_targets = {}
    for name, value in dict(targets or {}).items():
        value = np.asarray(value, np.float32)
        if value.ndim == 2:
            value = value[..., None]
        if value.ndim != 3 or value.shape[:2] != x.shape[:2]:
            raise ValueError(f"target {name!r} has shape {value.shape}; expected [N, T, size]")
        out_targets[str(name)] = value
    return {"x": x, "mask": mask, "targets": out_targets}


def prepare_data(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validates a data dict and converts every partition with :func:`make_partition`.

    Args:
        data: ``{"train": {...}, "dev": {...}, "test": {...} (optional)}``,
            each partition ``{"x", "mask" (optional), "targets"}``.

    Returns:
        The same layout with float32/bool NumPy arrays.
    """
    for part in ("train", "dev"):
        if part not in data:
            raise ValueError(f"data needs a {part!r} partition; got {sorted(data)}")
    out = {
        name: make_partition(p["x"], p.get("mask"), p.get("targets")) for name, p in data.items()
    }
    if out["train"]["x"].shape[2] != out["dev"]["x"].shape[2]:
        raise ValueError("train and dev have different feature dimensions")
    return out


def partition_from_batch(
    batch: Mapping[str, Any], targets: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Adapter from :func:`ddat_jax.data.preprocess.to_batch` to one engine partition.

    Args:
        batch: a ``to_batch`` dict (``x [N, T, F]``, ``mask [N, T]``, ``y [N, T]``,
            ``pu [N, T]``, ``labelled [N]``, ``has_pu``, ...).
        targets: ``{head: batch key}``; default ``{"emotion": "y"}`` (the gold
            standard). ``"pu"`` is the perception uncertainty; any other key
            names an ``[N, T]`` or ``[N, T, size]`` array of the batch.

    Returns:
        ``{"x", "mask", "targets"}`` (see :func:`make_partition`). When a head
        targets ``"y"``, the frames of recordings without a gold standard are
        masked out; a label missing from every recording (an unlabelled test
        partition) is left out of ``targets``, so the partition can still be
        predicted.
    """
    targets = {"emotion": "y"} if targets is None else dict(targets)
    mask = np.asarray(batch["mask"], bool)
    labelled = np.asarray(batch.get("labelled", np.ones(mask.shape[0], bool)), bool)
    out = {}
    for head, name in targets.items():
        if name == "y":
            if not labelled.any():
                continue
            mask = mask & labelled[:, None]
        elif name == "pu" and not batch.get("has_pu", True):
            continue
        out[head] = batch[name]
    return make_partition(batch["x"], mask, out)


def data_from_batches(
    batches: Mapping[str, Mapping[str, Any]], targets: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """:func:`partition_from_batch` over ``{partition: to_batch dict}``."""
    return {name: partition_from_batch(b, targets) for name, b in batches.items()}


# -------------------------------------------------------------------------- metrics


def frame_ccc(predictions: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """CCC over the concatenation of all valid frames, per output dimension.

    AVEC 2016 style (one CCC over the partition's frames), population
    statistics, :func:`ddat_jax.losses.ccc` reduced over batch and time.

    Args:
        predictions: ``[batch, time, size]``.
        targets: ``[batch, time, size]``.
        mask: ``[batch, time]`` bool, True on valid frames.

    Returns:
        ``[size]`` CCC values. Frames outside ``mask`` are ignored even if
        they hold NaN; with no valid frame or constant equal inputs it is 0.
    """
    return losses.ccc(predictions, targets, axis=(0, 1), where=mask[..., None])


def _head_loss(kind: str, predictions, targets, mask):
    where = mask[..., None]
    if kind == "mse":  # mean over the valid frames and output dims
        return losses.mse(predictions, targets, axis=None, where=where)
    return jnp.mean(losses.ccc_loss(predictions, targets, axis=(0, 1), where=where))


def l2_penalty(params: PyTree) -> jax.Array:
    """``Σ w²`` over weight matrices (leaves with ``ndim >= 2``), biases excluded.

    Selecting by rank rather than by name works for Dense ``kernel`` as well as
    recurrent weight matrices, whatever the models name them.
    """
    leaves = [jnp.sum(jnp.square(p)) for p in jax.tree.leaves(params) if p.ndim >= 2]
    return sum(leaves, jnp.zeros((), jnp.float32))


def _all_finite(tree: PyTree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


# ------------------------------------------------------------------------ predict


def predict(
    model: Any,
    params: PyTree,
    x: jax.Array,
    mask: jax.Array | None = None,
    batch_size: int = 0,
) -> dict[str, jax.Array]:
    """Applies ``model`` to a partition, ``batch_size`` sequences at a time.

    Jittable (``batch_size`` static). Padding sequences added to reach a
    multiple of ``batch_size`` are fully masked and cut from the result.

    Args:
        model: a linen module; ``model.apply({"params": params}, x, mask=mask)``
            returns ``{head: [batch, time, size]}``.
        params: the model's parameters.
        x: ``[N, T, F]`` features.
        mask: ``[N, T]`` bool; ``None`` means all valid.
        batch_size: sequences per forward pass; ``<= 0`` means all at once.

    Returns:
        ``{head: [N, T, size]}``.
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    mask = jnp.ones(x.shape[:2], bool) if mask is None else jnp.asarray(mask, bool)
    apply = lambda xb, mb: model.apply({"params": params}, xb, mask=mb)
    if batch_size <= 0 or batch_size >= n:
        return apply(x, mask)
    num = math.ceil(n / batch_size)
    pad = num * batch_size - n
    xp = jnp.pad(x, ((0, pad), (0, 0), (0, 0))).reshape(num, batch_size, *x.shape[1:])
    mp = jnp.pad(mask, ((0, pad), (0, 0))).reshape(num, batch_size, *x.shape[1:2])
    out = jax.lax.map(lambda a: apply(*a), (xp, mp))
    return jax.tree.map(lambda o: o.reshape(num * batch_size, *o.shape[2:])[:n], out)


# ------------------------------------------------------------------------- engine


def _make_optimizer(train: Any, learning_rate: Any) -> optax.GradientTransformation:
    if train.optimizer == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    return optax.inject_hyperparams(optax.sgd, static_args=("momentum", "nesterov"))(
        learning_rate=learning_rate,
        momentum=float(train.momentum),
        nesterov=bool(train.nesterov),
    )


class TrainFns(NamedTuple):
    """The pieces of one training, shared by ``train`` and the chunked driver.

    Attributes:
        init: ``(hparams, key, init_params=None) -> state``; ``init_params``
            replaces the model's initialisation (warm start).
        run_epochs: ``(state, hparams, key, first_epoch, arrays, *, length)
            -> state``: runs epochs ``first_epoch … first_epoch + length - 1``
            (``length`` static).
        summarize: ``state -> result`` (the pytree ``train`` returns).
        arrays: the device arrays (train padded with one dummy sequence, dev).
        heads: trained head names, sorted.
        head_sizes: ``{head: size}``.
        num_epochs: ``config.train.epochs``.
        num_batches: minibatches per epoch.
    """

    init: Callable[..., PyTree]
    run_epochs: Callable[..., PyTree]
    summarize: Callable[[PyTree], PyTree]
    arrays: PyTree
    heads: tuple[str, ...]
    head_sizes: dict[str, int]
    num_epochs: int
    num_batches: int


def make_train_fns(config: Any, data: Mapping[str, Any], model: Any) -> TrainFns:
    """Resolves everything static and returns the pieces of a training.

    Args:
        config: a config with a ``train`` section (see
            :mod:`ddat_jax.train.config`) or the section itself.
        data: ``{"train": {"x", "mask", "targets"}, "dev": {...}}``, see
            :func:`prepare_data`.
        model: a linen module with ``apply({"params": p}, x, mask=None) ->
            {head: [batch, time, size]}``.

    Returns:
        A :class:`TrainFns`.
    """
    train_cfg = train_section(config)
    validate_train_config(train_cfg)
    data = prepare_data(data)
    tr, dev = data["train"], data["dev"]
    n_train, seq_len, n_feat = tr["x"].shape
    batch_size = int(train_cfg.batch_size)
    num_batches = math.ceil(n_train / batch_size)
    num_epochs = int(train_cfg.epochs)
    patience = int(train_cfg.patience)
    eval_every = int(train_cfg.eval_every)
    eval_batch_size = int(train_cfg.eval_batch_size)
    primary = str(train_cfg.primary)
    head_kinds = dict(train_cfg.head_losses)

    # Heads and their sizes from the model's abstract output.
    x_example = jax.ShapeDtypeStruct((1, seq_len, n_feat), jnp.float32)
    m_example = jax.ShapeDtypeStruct((1, seq_len), jnp.bool_)

    def _init_params(key):
        return model.init(key, jnp.zeros((1, seq_len, n_feat), jnp.float32), mask=None)["params"]

    out_shapes = jax.eval_shape(
        lambda p, xx, mm: model.apply({"params": p}, xx, mask=mm),
        jax.eval_shape(_init_params, jax.random.key(0)),
        x_example,
        m_example,
    )
    if not isinstance(out_shapes, Mapping):
        raise ValueError("the model must return a dict {head: [batch, time, size]}")
    head_sizes = {str(h): int(s.shape[-1]) for h, s in out_shapes.items()}
    heads = tuple(sorted(head_sizes))
    for h in heads:
        has = h in tr["targets"] or (h == RECONSTRUCTION and head_sizes[h] == n_feat)
        if not has:
            raise ValueError(
                f"no training target for head {h!r}; data targets: {sorted(tr['targets'])}"
            )
        if h in tr["targets"] and tr["targets"][h].shape[-1] != head_sizes[h]:
            raise ValueError(
                f"head {h!r} has size {head_sizes[h]} but its target has "
                f"{tr['targets'][h].shape[-1]}"
            )
    unknown = set(head_kinds) - set(heads)
    if unknown:
        raise ValueError(f"config.train.head_losses names unknown heads {sorted(unknown)}")
    if primary not in heads:
        raise ValueError(f"primary head {primary!r} is not a model head; heads: {list(heads)}")
    if primary not in dev["targets"]:
        raise ValueError(f"dev data has no target for the primary head {primary!r}")
    kinds = {h: head_kinds.get(h, str(train_cfg.loss)) for h in heads}

    # One dummy sequence (index n_train, fully masked) pads the last minibatch.
    def _pad1(a, fill=0):
        return np.concatenate([a, np.full((1, *a.shape[1:]), fill, a.dtype)], axis=0)

    arrays = {
        "train": {
            "x": jnp.asarray(_pad1(tr["x"])),
            "mask": jnp.asarray(_pad1(tr["mask"], False)),
            "targets": {
                h: jnp.asarray(_pad1(tr["targets"][h])) for h in heads if h in tr["targets"]
            },
        },
        "dev": {
            "x": jnp.asarray(dev["x"]),
            "mask": jnp.asarray(dev["mask"]),
            "target": jnp.asarray(dev["targets"][primary][..., :1]),
        },
    }
    tx_update = _make_optimizer(train_cfg, 0.0)  # update reads the lr from the state

    def init(hparams, key, init_params=None):
        if init_params is None:
            params = _init_params(jax.random.fold_in(key, _STREAM_INIT))
        else:  # warm start (e.g. curriculum stages); the optimizer starts afresh
            params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), init_params)
        opt_state = _make_optimizer(train_cfg, hparams["learning_rate"]).init(params)
        nan = jnp.full((num_epochs,), jnp.nan, jnp.float32)
        return {
            "params": params,
            "opt_state": opt_state,
            "best_params": params,
            "best_dev_ccc": jnp.array(-jnp.inf, jnp.float32),
            "best_epoch": jnp.array(-1, jnp.int32),
            "stopped_epoch": jnp.array(-1, jnp.int32),
            "nonfinite_epoch": jnp.array(-1, jnp.int32),
            "history": {
                "train_loss": nan,
                "dev_ccc": nan,
                "best_dev_ccc": nan,
                "head_loss": {h: nan for h in heads},
                "active": jnp.zeros((num_epochs,), bool),
            },
        }

    def loss_fn(params, xb, mb, tb, key, hparams):
        noise = hparams["noise_std"] * jax.random.normal(key, xb.shape, xb.dtype)
        x_in = jnp.where(mb[..., None], xb + noise, xb)
        out = model.apply({"params": params}, x_in, mask=mb)
        head_losses = {}
        total = jnp.zeros((), jnp.float32)
        for h in heads:
            target = tb[h] if h in tb else xb  # reconstruction: the clean input
            head_losses[h] = _head_loss(kinds[h], out[h], target, mb)
            weight = hparams["loss_weights"].get(h, 1.0)
            total = total + weight * head_losses[h]
        total = total + hparams["l2"] * l2_penalty(params)
        return total, head_losses

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def dev_ccc(params, arr):
        out = predict(model, params, arr["dev"]["x"], arr["dev"]["mask"], eval_batch_size)
        return frame_ccc(out[primary][..., :1], arr["dev"]["target"], arr["dev"]["mask"])[0]

    def active_epoch(state, epoch, hparams, key, arr):
        """One epoch of a member that has not stopped."""
        # argsort of random bits: a uniform shuffle that compiles to less code than
        # jax.random.permutation (which matters under vmap).
        k_shuffle = jax.random.fold_in(jax.random.fold_in(key, _STREAM_SHUFFLE), epoch)
        perm = jnp.argsort(jax.random.bits(k_shuffle, (n_train,))).astype(jnp.int32)
        # Pad with the dummy (fully masked) sequence instead of dropping a remainder.
        perm = jnp.concatenate(
            [perm, jnp.full((num_batches * batch_size - n_train,), n_train, perm.dtype)]
        ).reshape(num_batches, batch_size)
        # One split per epoch rather than a fold_in per step: less PRNG code to compile.
        k_noise = jax.random.split(
            jax.random.fold_in(jax.random.fold_in(key, _STREAM_NOISE), epoch), num_batches
        )
        tr_arr = arr["train"]

        def step(carry, inputs):
            params, opt_state, ok = carry
            k_step, idx = inputs
            xb = tr_arr["x"][idx]
            mb = tr_arr["mask"][idx]
            tb = {h: t[idx] for h, t in tr_arr["targets"].items()}
            (loss, head_losses), grads = grad_fn(params, xb, mb, tb, k_step, hparams)
            updates, new_opt = tx_update.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            finite = jnp.isfinite(loss) & _all_finite(new_params) & _all_finite(new_opt)
            # Once non-finite, the member keeps its last finite state for good.
            keep = ok & finite
            params = _select(keep, new_params, params)
            opt_state = _select(keep, new_opt, opt_state)
            return (params, opt_state, keep), (loss, head_losses)

        (params, opt_state, ok), (losses, head_losses) = jax.lax.scan(
            step,
            (state["params"], state["opt_state"], jnp.array(True)),
            (k_noise, perm),
        )
        is_eval = ((epoch + 1) % eval_every == 0) | (epoch == num_epochs - 1)
        ccc = jax.lax.cond(
            is_eval,
            lambda p: dev_ccc(p, arr),
            lambda p: jnp.array(jnp.nan, jnp.float32),
            params,
        )
        went_nonfinite = ~ok | (is_eval & ~jnp.isfinite(ccc))
        improved = ~went_nonfinite & is_eval & (ccc > state["best_dev_ccc"])
        best_epoch = jnp.where(improved, epoch, state["best_epoch"])
        best_ccc = jnp.where(improved, ccc, state["best_dev_ccc"])
        stop = ~went_nonfinite & is_eval & (patience > 0) & (epoch - best_epoch >= patience)

        hist = state["history"]
        return {
            "params": params,
            "opt_state": opt_state,
            "best_params": _select(improved, params, state["best_params"]),
            "best_dev_ccc": best_ccc,
            "best_epoch": best_epoch.astype(jnp.int32),
            "stopped_epoch": jnp.where(stop | went_nonfinite, epoch, state["stopped_epoch"]).astype(
                jnp.int32
            ),
            "nonfinite_epoch": jnp.where(went_nonfinite, epoch, state["nonfinite_epoch"]).astype(
                jnp.int32
            ),
            "history": {
                "train_loss": hist["train_loss"].at[epoch].set(jnp.mean(losses)),
                "dev_ccc": hist["dev_ccc"].at[epoch].set(ccc),
                "best_dev_ccc": hist["best_dev_ccc"].at[epoch].set(best_ccc),
                "head_loss": {
                    h: hist["head_loss"][h].at[epoch].set(jnp.mean(head_losses[h])) for h in heads
                },
                "active": hist["active"].at[epoch].set(True),
            },
        }

    def epoch_fn(state, epoch, hparams, key, arr):
        # A stopped member's state is left as it is; its history keeps NaN / False.
        # Under vmap this cond becomes a select, which is what freezes that member.
        active = (state["stopped_epoch"] < 0) & (state["nonfinite_epoch"] < 0)
        return jax.lax.cond(active, active_epoch, lambda s, *_: s, state, epoch, hparams, key, arr)

    def run_epochs(state, hparams, key, first_epoch, arr, *, length):
        def body(s, epoch):
            return epoch_fn(s, epoch, hparams, key, arr), None

        epochs = jnp.asarray(first_epoch, jnp.int32) + jnp.arange(length, dtype=jnp.int32)
        return jax.lax.scan(body, state, epochs)[0]

    def summarize(state):
        return {
            "best_params": state["best_params"],
            "best_dev_ccc": state["best_dev_ccc"],
            "best_epoch": state["best_epoch"],
            "final_params": state["params"],
            "history": state["history"],
            "stopped_epoch": state["stopped_epoch"],
            "nonfinite_epoch": state["nonfinite_epoch"],
        }

    return TrainFns(
        init=init,
        run_epochs=run_epochs,
        summarize=summarize,
        arrays=arrays,
        heads=heads,
        head_sizes=head_sizes,
        num_epochs=num_epochs,
        num_batches=num_batches,
    )


def make_train(
    config: Any, data: Mapping[str, Any], model: Any
) -> Callable[[PyTree, jax.Array], PyTree]:
    """Returns ``train(hparams, key)``, a whole training as one pure function.

    Args:
        config: a config with a ``train`` section (see :mod:`ddat_jax.train.config`).
        data: ``{"train": {"x": [N, T, F], "mask": [N, T], "targets": {head:
            [N, T, size]}}, "dev": {...}}``. A head named ``reconstruction``
            without a target is trained to reproduce the clean input ``x``.
        model: a linen module; ``apply({"params": p}, x, mask=None)`` returns
            ``{head: [batch, time, size]}``.

    Returns:
        ``train(hparams, key, init_params=None) -> result`` where ``hparams``
        is the pytree of :func:`ddat_jax.train.hparams_from_config`, ``key`` a
        PRNG key and ``init_params`` optional parameters to start from instead
        of the model's initialisation (warm start). ``result`` holds:

        * ``best_params``: parameters of the best dev CCC (the initial ones if
          no evaluation was finite);
        * ``best_dev_ccc`` (``-inf`` if none) and ``best_epoch`` (0-based, −1 if
          none);
        * ``final_params``: parameters at the end (frozen since
          ``stopped_epoch`` for a stopped member);
        * ``history``: ``train_loss [E]`` (mean over the epoch's minibatches of
          the weighted loss, L2 included), ``head_loss {head: [E]}`` (unweighted),
          ``dev_ccc [E]``, ``best_dev_ccc [E]`` (best so far), ``active [E]``
          (the member trained in that epoch); values are NaN in epochs
          without training or without evaluation;
        * ``stopped_epoch``: the epoch after which the member stopped changing
          (early stopping or non-finite), −1 if it ran to the end;
        * ``nonfinite_epoch``: the epoch in which its loss or parameters went
          NaN/Inf (it keeps the last finite state), −1 if none.

        The function has a ``heads`` attribute (the trained heads, sorted).
        Jit it, vmap it over a grid: ``jax.jit(jax.vmap(train))(hparams_grid,
        keys)``.
    """
    fns = make_train_fns(config, data, model)
    arrays = fns.arrays

    def train(hparams: PyTree, key: jax.Array, init_params: PyTree | None = None) -> PyTree:
        state = fns.init(hparams, key, init_params)
        state = fns.run_epochs(state, hparams, key, 0, arrays, length=fns.num_epochs)
        return fns.summarize(state)

    train.heads = fns.heads  # type: ignore[attr-defined]
    return train


__all__ = [
    "RECONSTRUCTION",
    "TrainFns",
    "frame_ccc",
    "l2_penalty",
    "data_from_batches",
    "make_partition",
    "make_train",
    "make_train_fns",
    "predict",
    "partition_from_batch",
    "prepare_data",
]
