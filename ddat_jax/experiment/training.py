"""The standard training of one system: architectures × seeds, best on dev, predictions.

Members are every ``(architecture, seed)`` pair of a :class:`~ddat_jax.experiment.systems.Job`.
The seeds of one architecture share one program (the engine's multi-member driver runs
them with the backend's strategy); member ``s`` of a system uses
``member_keys(system_key, seeds)[s]`` for every architecture (common random numbers), so a
system's randomness is a function of its name and seed alone, whatever else the run trains.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jax
import numpy as np
import pandas as pd

from ddat_jax import atomic
from ddat_jax import train as train_lib
from ddat_jax.experiment.systems import Job, Trained


def arch_tag(arch) -> str:
    """Folder name of an architecture: ``"2x64"``, or ``"default"`` for ``None``."""
    return "default" if arch is None else "x".join(str(int(a)) for a in arch)


def weight_settings(job: Job) -> list[dict[str, float]]:
    """Every loss-weight setting of the job: the Cartesian product of ``job.sweep``
    (``{weight: values}``) over ``job.loss_weights``, with tied weights
    (``job.tied = {weight: (source, total)}`` → ``weight = total − source``) derived."""
    names = list(job.sweep)
    out = []
    for values in itertools.product(*(tuple(job.sweep[n]) for n in names)):
        w = {
            **{k: float(v) for k, v in job.loss_weights.items()},
            **dict(zip(names, values, strict=True)),
        }
        for name, (source, total) in job.tied.items():
            w[name] = round(float(total) - w[source], 10)
        out.append(w)
    return out


def member_hparams(job: Job, settings: list[dict[str, float]], seeds: int) -> dict[str, Any]:
    """The engine's hparams pytree with a leading member axis (settings × seeds, seeds
    innermost)."""
    hp = job.settings.hparams
    k = len(settings) * seeds
    full = lambda v: np.full((k,), float(v), np.float32)
    weights = {
        name: np.repeat(np.array([w[name] for w in settings], np.float32), seeds)
        for name in settings[0]
    }
    return {
        "learning_rate": full(hp["learning_rate"]),
        "noise_std": full(hp["noise_std"]),
        "l2": full(hp["l2"]),
        "loss_weights": weights,
    }


def unpad(outputs: Mapping[str, Any], lengths: np.ndarray) -> dict[str, list[np.ndarray]]:
    """``{name: [N, T, ...]}`` → ``{name: [T_i, ...] per recording}`` (padding cut off)."""
    host = jax.device_get(outputs)
    return {k: [np.asarray(v[i, :n]) for i, n in enumerate(lengths)] for k, v in host.items()}


def predict_all(model, params, job: Job, device) -> dict[str, dict[str, list[np.ndarray]]]:
    """Outputs of ``model`` for every partition of the job, per recording."""
    bs = int(job.settings.train["eval_batch_size"])
    fn = jax.jit(lambda p, x, m: train_lib.predict(model, p, x, m, bs))
    out = {}
    with jax.default_device(device):
        for part, d in job.data.items():
            out[part] = unpad(fn(params, d["inputs"], d["mask"]), job.lengths[part])
    return out


def _take(tree, i: int):
    return jax.tree.map(lambda a: np.asarray(a)[i], tree)


def select_member(members: pd.DataFrame, select: str) -> int:
    """Row index of the kept member: ``best_member``, or ``mean_over_seeds`` (the best
    architecture × loss-weight setting by its mean dev score over seeds, then its best
    seed). Non-finite scores never win."""
    score = members["best_dev_score"].where(np.isfinite(members["best_dev_score"]), -np.inf)
    if select == "best_member":
        return int(np.argmax(score.to_numpy()))
    if select != "mean_over_seeds":
        raise ValueError(f"unknown selection {select!r}; valid: ['best_member', 'mean_over_seeds']")
    group = members["arch"] + "/" + members["setting"].astype(str)
    means = score.groupby(group, sort=False).mean()
    best = means.index[int(np.argmax(means.to_numpy()))]
    rows = np.flatnonzero((group == best).to_numpy())
    return int(rows[int(np.argmax(score.to_numpy()[rows]))])


def _fingerprint(tree) -> str:
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}:{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def job_hash(name: str, job: Job) -> str:
    """Hash of everything that shapes a system's trainings: data, models, objective,
    loss weights, settings and warm start."""
    parts = {
        "name": name,
        "data": _fingerprint({p: job.data[p] for p in ("train", "dev")}),
        "models": [repr(job.model_fn(a)) for a in job.archs],
        "objective": repr(job.objective),
        "loss_weights": {k: float(v) for k, v in sorted(job.loss_weights.items())},
        "settings": repr(job.settings),
        "sweep": {k: list(map(float, v)) for k, v in sorted(job.sweep.items())},
        "tied": {k: [v[0], float(v[1])] for k, v in sorted(job.tied.items())},
        "spec": {k: str(v) for k, v in sorted(job.spec_overrides.items())},
        "init": None if job.init_params is None else _fingerprint(job.init_params),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def check_job_hash(name: str, job: Job, workdir: Path) -> None:
    """Records ``workdir/job.json``; refuses a workdir whose trainings had another job.

    Raises:
      ValueError: the folder holds trainings of a different data set, model, objective
        or settings (their checkpoints must not be resumed).
    """
    path = workdir / "job.json"
    h = job_hash(name, job)
    if path.exists():
        old = json.loads(path.read_text()).get("job_hash")
        if old != h:
            raise ValueError(
                f"{workdir} holds trainings of system {name!r} with other data, model, "
                f"objective or settings (job hash {old}, this run {h}); use a fresh "
                "--workdir or --overwrite"
            )
        return
    atomic.write_text(path, json.dumps({"system": name, "job_hash": h}, indent=1) + "\n")


def train_job(
    name: str,
    label: str,
    job: Job,
    *,
    key: jax.Array,
    workdir: Path,
    device: Any,
    progress=None,
) -> Trained:
    """Trains every member of ``job``, keeps the best on dev and predicts every partition.

    Args:
      name: system key; label: its row label (prefix of progress lines).
      job: the training problem.
      key: the system's PRNG key (``ddat_jax.train.system_key(seed, name)``).
      workdir: the system's folder (``<arch>/`` per architecture: metrics, checkpoints).
      device: the device every program of this system runs on.
      progress: ``line -> None`` for progress lines (default: print).

    Returns:
      The :class:`Trained` system.
    """
    t0 = time.perf_counter()
    check_job_hash(name, job, workdir)
    members, params_of, models = _train_members(job, key, workdir, device, label, progress)
    kept = select_member(members, job.settings.select)
    members["selected"] = np.arange(len(members)) == kept
    arch, params = params_of[kept]
    model = models[arch_tag(arch)]
    same = (members["arch"] == arch_tag(arch)) & (members["setting"] == members["setting"][kept])
    seed_outputs = ()
    if int(job.settings.seeds) > 1:
        seed_outputs = tuple(
            predict_all(model, params_of[i][1], job, device) for i in np.flatnonzero(same)
        )
    member_outputs = ()
    if job.predict_members:
        member_outputs = tuple(
            predict_all(models[arch_tag(a)], p, job, device) for a, p in params_of
        )
    return Trained(
        name=name,
        label=label,
        model=model,
        params=params,
        arch=arch,
        dev_score=float(members["best_dev_score"].iloc[kept]),
        outputs=predict_all(model, params, job, device),
        seconds=time.perf_counter() - t0,
        members=members,
        seed_outputs=seed_outputs,
        member_outputs=member_outputs,
    )


def _train_members(job: Job, key, workdir, device, label, progress):
    """Every architecture's members (settings × seeds) as one program each.

    Returns:
      ``(members table, [(arch, best params)] in table order, {arch tag: model})``.
    """
    seeds = int(job.settings.seeds)
    settings = weight_settings(job)
    # Member m = (setting m // seeds, seed m % seeds): every setting shares the seeds
    # (common random numbers), whatever the architecture.
    seed_keys = np.asarray(jax.random.key_data(train_lib.member_keys(key, seeds)))
    keys = jax.random.wrap_key_data(np.tile(seed_keys, (len(settings), 1)))
    hparams = member_hparams(job, settings, seeds)
    train_data = {p: job.data[p] for p in ("train", "dev")}
    swept = set(job.sweep) | set(job.tied)
    rows, params_of, models = [], [], {}
    for arch in job.archs:
        model = models[arch_tag(arch)] = job.model_fn(arch)
        result = _fit_arch(
            job, model, arch, hparams, keys, train_data, workdir, device, label, progress
        )
        for m in range(len(settings) * seeds):
            row = {"arch": arch_tag(arch), "setting": m // seeds, "seed": m % seeds}
            row.update({f"w/{k}": v for k, v in settings[m // seeds].items() if k in swept})
            row.update(
                best_dev_score=float(np.asarray(result.best_score)[m]),
                best_epoch=int(np.asarray(result.best_epoch)[m]),
                stopped_epoch=int(np.asarray(result.stopped_epoch)[m]),
            )
            rows.append(row)
            params_of.append((arch, _take(result.best_params, m)))
    return pd.DataFrame(rows), params_of, models


def _fit_arch(job, model, arch, hparams, keys, train_data, workdir, device, label, progress):
    """One architecture's members as one program (the engine's multi-member driver)."""
    train = SimpleNamespace(**job.settings.train)
    spec = train_lib.train_spec_from_config(train, model, job.objective, **job.spec_overrides)
    return train_lib.fit(
        spec,
        train_data,
        hparams,
        keys,
        workdir=workdir / arch_tag(arch),
        options=train_lib.run_options_from_config(
            train,
            strategy=job.settings.strategy,
            chunk_size=job.settings.chunk_size,
            devices=(device,),
            label=label if arch is None else f"{label} {arch_tag(arch)}",
        ),
        init_params=job.init_params,
        progress=progress,
    )
