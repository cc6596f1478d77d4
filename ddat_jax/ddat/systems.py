"""Training one system of the DDAT tables: model building, architecture choice, prediction.

A *system* is one row of the paper's tables (STL, MTL-RE, DDAT-PU, CL-GRU, ...). Every
system is trained by the engine (:func:`ddat_jax.train.run_training`) on the data dict
format of :func:`ddat_jax.train.make_partition`; when the config lists several
architectures, each is trained and the one with the best dev CCC is kept (the paper's
architecture grid, METHODS.md §1).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from absl import logging

from ddat_jax import models
from ddat_jax.train import hparams_from_config, predict, run_training


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


def engine_data(batches: Mapping[str, dict], targets: Mapping[str, Mapping[str, np.ndarray]]):
    """Builds the engine's data dict from padded batches and per-partition targets.

    Args:
      batches: partition → ``to_batch`` dict (``x``, ``mask``).
      targets: partition → head → ``[N, T]`` or ``[N, T, size]``.

    Returns:
      ``{partition: {"x", "mask", "targets"}}``.
    """
    return {
        p: {"x": b["x"], "mask": b["mask"], "targets": dict(targets.get(p, {}))}
        for p, b in batches.items()
    }


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
) -> TrainedSystem:
    """Trains one system over the configured architectures and keeps the best on dev.

    Args:
      name: system key (also the sub-folder of ``workdir``).
      config: the experiment config (``model``, ``train``, ``hparams`` sections).
      batches: partition → ``to_batch`` dict; ``train`` and ``dev`` are required.
      targets: partition → head → target array (``reconstruction`` may be omitted).
      heads: head name → output size.
      workdir: folder for this system (``<arch>/`` sub-folders hold each training's
        checkpoints and ``metrics.jsonl``).
      key: PRNG key of this system.
      loss_weights: head → weight (``config.hparams.loss_weights`` otherwise).
      model_fn: ``arch -> model``; default :func:`build_rnn` with ``heads``.
      archs: architectures to try; default ``config.model.arch``.
      init_params: warm-start parameters (curriculum stages); ``None`` initialises.

    Returns:
      A :class:`TrainedSystem` with the outputs of every partition in ``batches``.
    """
    t0 = time.perf_counter()
    data = engine_data({p: batches[p] for p in ("train", "dev")}, targets)
    archs = [
        None if a is None else tuple(a) for a in (archs if archs is not None else config.model.arch)
    ]
    model_fn = model_fn or (lambda arch: build_rnn(config, arch, heads))
    hp_overrides = {}
    if loss_weights is not None:
        hp_overrides["loss_weights"] = dict(loss_weights)
    hparams = hparams_from_config(config, **hp_overrides)
    if len(archs) > 1 and None not in archs and config.model.arch_search == "grid":
        return _train_arch_grid(
            name, config, batches, data, archs, heads, hparams, workdir, model_fn, t0
        )
    best = None
    for i, arch in enumerate(archs):
        model = model_fn(arch)
        tag = "x".join(str(a) for a in arch) if arch is not None else "dnn"
        logging.info("[%s] training architecture %s (%d/%d)", name, tag, i + 1, len(archs))
        print(f"[{name}] architecture {tag} ({i + 1}/{len(archs)})", flush=True)
        kwargs = {} if init_params is None else {"init_params": init_params}
        result = run_training(
            config,
            data,
            model,
            hparams,
            jax.random.fold_in(key, i),
            workdir=workdir / tag,
            **kwargs,
        )
        ccc = float(jax.device_get(result["best_dev_ccc"]))
        if best is None or ccc > best[0]:
            best = (ccc, arch, model, result["best_params"])
    ccc, arch, model, params = best
    outputs = predict_partitions(
        model, params, batches, batch_size=int(config.train.eval_batch_size)
    )
    seconds = time.perf_counter() - t0
    print(f"[{name}] best dev CCC {ccc:.4f} (architecture {arch}), {seconds:.0f} s", flush=True)
    return TrainedSystem(name, model, params, arch, ccc, outputs, seconds)


def _train_arch_grid(name, config, batches, data, archs, heads, hparams, workdir, model_fn, t0):
    """The architecture grid as one compiled program per shape group (``ddat_jax.grid``)."""
    from ddat_jax import grid as grid_lib

    cfg = copy.deepcopy(config)
    with cfg.unlocked():
        cfg.grid = grid_lib.default_grid_config()
        cfg.grid.arch = tuple(archs)
        cfg.hparams.loss_weights = {k: float(v) for k, v in hparams["loss_weights"].items()}
    print(f"[{name}] architecture grid {list(archs)} as one program", flush=True)
    table = grid_lib.run_grid(
        cfg,
        data,
        workdir=workdir,
        build_model_fn=lambda num_layers, hidden_size: model_fn((num_layers, hidden_size)),
    )
    best = table.attrs["best"]
    arch = (int(best["layers"]), int(best["units"]))
    model = model_fn(arch)
    params = table.attrs["best_params"]
    outputs = predict_partitions(
        model, params, batches, batch_size=int(config.train.eval_batch_size)
    )
    seconds = time.perf_counter() - t0
    ccc = float(best["best_dev_ccc"])
    print(f"[{name}] best dev CCC {ccc:.4f} (architecture {arch}), {seconds:.0f} s", flush=True)
    return TrainedSystem(name, model, params, arch, ccc, outputs, seconds)
