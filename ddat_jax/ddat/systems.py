"""Training one system of the DDAT tables: model building, architecture choice, prediction.

A *system* is one row of the paper's tables (STL, MTL-RE, DDAT-PU, CL-GRU, ...). Every
system is trained by the engine's driver (:func:`ddat_jax.train.fit`) with the per-head
objective of ``config.train`` (:func:`ddat_jax.train.objective_from_config`); when the
config lists several architectures, each is trained and the one with the best dev CCC is
kept (the paper's architecture grid, METHODS.md §1). Every architecture starts from the
system's member key ``member_keys(key, 1)[0]``, on the sequential and the grid path.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from ddat_jax import models
from ddat_jax.train import (
    fit,
    hparams_from_config,
    member_keys,
    objective_from_config,
    predict,
    run_options_from_config,
    train_spec_from_config,
)
from ddat_jax.train.grid import default_grid_config, run_grid

RECONSTRUCTION = "reconstruction"


@dataclasses.dataclass
class TrainedSystem:
    """A trained system and its per-recording outputs.

    Attributes:
      name: system key, e.g. ``"mtl_re"``.
      model: the linen module.
      params: best-dev-CCC parameters.
      arch: ``(num_layers, hidden_size)`` of the kept architecture (``None`` for a DNN).
      dev_ccc: best dev CCC seen during training (engine's in-loop evaluation).
      outputs: partition → head → list of per-recording ``[T, size]`` arrays.
      seconds: wall time of the training(s).
    """

    name: str
    model: Any
    params: Any
    arch: tuple[int, int] | None
    dev_ccc: float
    outputs: dict[str, dict[str, list[np.ndarray]]]
    seconds: float


def engine_data(
    batches: Mapping[str, dict],
    targets: Mapping[str, Mapping[str, np.ndarray]],
    heads: Mapping[str, int] = (),
):
    """Builds the engine's data dict from padded batches and per-partition targets.

    Args:
      batches: partition → ``to_batch`` dict (``x``, ``mask``).
      targets: partition → head → ``[N, T]`` or ``[N, T, size]``.
      heads: the model's heads; a ``reconstruction`` head without a target gets the
        clean input ``x`` as its target.

    Returns:
      ``{partition: {"inputs", "mask", "targets"}}``.
    """
    out = {}
    for p, b in batches.items():
        t = dict(targets.get(p, {}))
        if RECONSTRUCTION in heads and RECONSTRUCTION not in t:
            t[RECONSTRUCTION] = b["x"]
        out[p] = {"inputs": b["x"], "mask": b["mask"], "targets": t}
    return out


def _unpad(out: Mapping[str, jax.Array], lengths: np.ndarray) -> dict[str, list[np.ndarray]]:
    host = jax.device_get(out)
    return {h: [np.asarray(v[i, :n]) for i, n in enumerate(lengths)] for h, v in host.items()}


def predict_partitions(model, params, batches: Mapping[str, dict], *, batch_size: int = 0):
    """Runs ``model`` on every partition; returns partition → head → per-recording arrays."""
    fn = jax.jit(lambda p, x, m: predict(model, p, x, m, batch_size))
    return {
        part: _unpad(fn(params, b["x"], b["mask"]), b["lengths"]) for part, b in batches.items()
    }


def build_rnn(config, arch: tuple[int, int], heads: Mapping[str, int]):
    """The recurrent model of a system: ``MultiTaskRNN`` with the given heads."""
    layers, hidden = arch
    return models.build_model(
        "mtl_rnn",
        cell=config.model.cell,
        hidden_size=int(hidden),
        num_layers=int(layers),
        bidirectional=bool(config.model.bidirectional),
        heads=dict(heads),
        init_scale=float(config.model.init_scale) or None,
    )


def train_system(
    name: str,
    config,
    batches: Mapping[str, dict],
    targets: Mapping[str, Mapping[str, np.ndarray]],
    *,
    heads: Mapping[str, int],
    workdir: Path,
    key: jax.Array,
    loss_weights: Mapping[str, float] | None = None,
    model_fn=None,
    archs=None,
    init_params=None,
    spec_overrides: Mapping[str, Any] | None = None,
) -> TrainedSystem:
    """Trains one system over the configured architectures and keeps the best on dev.

    Args:
      name: system key (also the progress label).
      config: the experiment config (``model``, ``train``, ``hparams`` sections).
      batches: partition → ``to_batch`` dict; ``train`` and ``dev`` are required.
      targets: partition → head → target array (``reconstruction`` may be omitted).
      heads: head name → output size.
      workdir: folder for this system (``<arch>/`` sub-folders hold each training's
        checkpoints and ``metrics.jsonl``).
      key: the system's PRNG key (:func:`ddat_jax.train.system_key`).
      loss_weights: head → weight (``config.hparams.loss_weights`` otherwise).
      model_fn: ``arch -> model``; default :func:`build_rnn` with ``heads``.
      archs: architectures to try; default ``config.model.arch``.
      init_params: warm-start parameters (curriculum stages); ``None`` initialises.
      spec_overrides: :class:`~ddat_jax.train.TrainSpec` fields replacing
        ``config.train``'s (e.g. ``epochs``, ``train_size``).

    Returns:
      A :class:`TrainedSystem` with the outputs of every partition in ``batches``.
    """
    t0 = time.perf_counter()
    data = engine_data({p: batches[p] for p in ("train", "dev")}, targets, heads)
    archs = [
        None if a is None else tuple(a) for a in (archs if archs is not None else config.model.arch)
    ]
    model_fn = model_fn or (lambda arch: build_rnn(config, arch, heads))
    objective = objective_from_config(config.train, sorted(heads))
    hp_overrides = {} if loss_weights is None else {"loss_weights": dict(loss_weights)}
    hparams = hparams_from_config(config, objective.weight_keys, **hp_overrides)
    overrides = dict(spec_overrides or {})
    if len(archs) > 1 and None not in archs and config.model.arch_search == "grid":
        return _train_arch_grid(
            name, config, batches, data, archs, hparams, workdir, model_fn, key, objective, t0
        )
    keys = member_keys(key, 1)
    options = run_options_from_config(config.train, label=name)
    best = None
    for i, arch in enumerate(archs):
        model = model_fn(arch)
        tag = "x".join(str(a) for a in arch) if arch is not None else "dnn"
        logging.info("[%s] training architecture %s (%d/%d)", name, tag, i + 1, len(archs))
        print(f"[{name}] architecture {tag} ({i + 1}/{len(archs)})", flush=True)
        spec = train_spec_from_config(config.train, model, objective, **overrides)
        result = fit(
            spec,
            data,
            hparams,
            keys,
            workdir=workdir / tag,
            options=options,
            init_params=init_params,
        )
        ccc = float(result.best_score[0])
        if best is None or ccc > best[0]:
            params = jax.tree.map(lambda a: a[0], result.best_params)
            best = (ccc, arch, model, params)
    ccc, arch, model, params = best
    outputs = predict_partitions(
        model, params, batches, batch_size=int(config.train.eval_batch_size)
    )
    seconds = time.perf_counter() - t0
    print(f"[{name}] best dev CCC {ccc:.4f} (architecture {arch}), {seconds:.0f} s", flush=True)
    return TrainedSystem(name, model, params, arch, ccc, outputs, seconds)


def _train_arch_grid(
    name, config, batches, data, archs, hparams, workdir, model_fn, key, objective, t0
):
    """The architecture grid as one compiled program per shape group (``run_grid``)."""
    grid_config = ml_collections.ConfigDict(
        {
            "train": config.train.to_dict(),
            "hparams": config.hparams.to_dict(),
            "grid": default_grid_config().to_dict(),
        }
    )
    grid_config.grid.arch = tuple(archs)
    grid_config.hparams.loss_weights = {k: float(v) for k, v in hparams["loss_weights"].items()}
    print(f"[{name}] architecture grid {list(archs)} as one program", flush=True)
    table = run_grid(
        grid_config,
        data,
        workdir=workdir,
        build_model_fn=lambda num_layers, hidden_size: model_fn((num_layers, hidden_size)),
        key=key,
        objective=objective,
        label=name,
    )
    best = table.attrs["best"]
    arch = (int(best["layers"]), int(best["units"]))
    model = model_fn(arch)
    params = table.attrs["best_params"]
    outputs = predict_partitions(
        model, params, batches, batch_size=int(config.train.eval_batch_size)
    )
    seconds = time.perf_counter() - t0
    ccc = float(best["best_dev_score"])
    print(f"[{name}] best dev CCC {ccc:.4f} (architecture {arch}), {seconds:.0f} s", flush=True)
    return TrainedSystem(name, model, params, arch, ccc, outputs, seconds)
