"""One experiment from its config: corpus → plan → training → predictions → tables → report.

``run(config, workdir)`` is the same for every method: the method (``config.method``, a key
of :data:`ddat_jax.methods.METHODS`) only contributes its settings, its plan (the systems
= table rows), the comparisons its tables make, and any extra tables or figures of its
paper. Everything else — training the systems in dependency order (independent ones side
by side on the devices), post-processing, the CCC tables before/after post-processing,
prediction files, the run's report — happens here.

Workdir layout::

    config.json               the resolved config
    data_summary.txt          the corpus as loaded
    train/<system>/<arch>/    metrics.jsonl + checkpoints per training (resumable; orbax
                              checkpoints/, or checkpoints_local/ in a several-process job)
    stage1/ ...               method artefacts (DDAT's difficulty signals)
    predictions/              one CSV per system × partition × recording + manifest
    results/                  tables (CSV + Markdown), members.csv, postprocess_params.json
    figures/                  PNG
    report.md                 the run's short report
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from ddat_jax import atomic, metrics, postprocess
from ddat_jax import train as train_lib
from ddat_jax.data import prepare, preprocess
from ddat_jax.evaluation import io as eval_io
from ddat_jax.evaluation import report as eval_report
from ddat_jax.evaluation import tables
from ddat_jax.experiment import console, distributed, schedule, training, workdirs
from ddat_jax.experiment.settings import ExperimentSettings, experiment_settings
from ddat_jax.experiment.systems import Context, System, Trained
from ddat_jax.predictions import Predictions, SystemPredictions, write_predictions


def _method(name: str):
    from ddat_jax.methods import METHODS

    if name not in METHODS:
        raise ValueError(f"unknown config.method {name!r}; valid: {sorted(METHODS)}")
    return METHODS[name]


def system_devices(parallel: int) -> list[Any]:
    """The devices systems are spread over: every local device (one system each), or the
    first ``parallel`` of them; ``parallel=1`` runs the systems one after another."""
    devices = jax.local_devices()
    return devices[: parallel or len(devices)]


def run_system(ctx: Context, system: System, upstream: Mapping[str, Trained], device) -> Trained:
    """Trains one system on ``device`` (a worker of the scheduler) and runs its ``after``."""
    print(f"[{system.label}] start", flush=True)
    job = system.job(ctx, upstream)
    key = train_lib.system_key(ctx.seed, system.name)
    workdir = ctx.workdir / "train" / system.name
    if system.train is None:
        trained = training.train_job(
            system.name, system.label, job, key=key, workdir=workdir, device=device
        )
    else:
        trained = system.train(
            ctx, job, upstream, key=key, workdir=workdir, device=device, label=system.label
        )
    trained = dataclasses.replace(trained, name=system.name, label=system.label)
    if system.after is not None:
        system.after(ctx, trained)
    return trained


def _progress(settings: ExperimentSettings, t0: float):
    def on_done(system: System, trained: Trained, done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        eta = elapsed / done * (total - done)
        print(
            f"[{system.label}] done: dev score {trained.dev_score:.4f} ({trained.arch}), "
            f"{trained.seconds:.0f} s | run {done}/{total} systems, {elapsed:.0f} s elapsed, "
            f"ETA {eta:.0f} s",
            flush=True,
        )

    return on_done


def predictions_of(ctx: Context, method, all_trained, trained: Trained) -> SystemPredictions:
    """The system's reported predictions (raw) for every partition, with the gold."""
    parts = {}
    for part, recs in ctx.corpus.partitions.items():
        if part == "train":  # the tables report held-out partitions only
            continue
        pred, extras = method.prediction(
            ctx, all_trained, trained.name, trained.outputs[part], part
        )
        gold = [r.gold for r in recs] if all(r.has_labels for r in recs) else None
        parts[part] = {"names": [r.name for r in recs], "pred": pred, "gold": gold}
        if extras:
            parts[part]["extras"] = extras
    info = {"dev_score": trained.dev_score, "arch": str(trained.arch), "seconds": trained.seconds}
    return SystemPredictions.from_arrays(trained.label, method.dims(ctx), parts, info)


def postprocess_all(preds: Predictions, settings: ExperimentSettings) -> tuple[Predictions, dict]:
    """Fits the post-processing chain on dev per system and applies it to every partition."""
    pp = settings.postprocess
    if not pp["enabled"]:
        return preds, {}
    fitted, new = {}, {}
    for label, s in preds.systems.items():
        params = postprocess.fit_postprocess(
            s.series("dev", "pred"),
            s.series("dev", "gold"),
            frame_period=preds.frame_period,
            grids=pp["grids"],
            per_recording=bool(pp["per_recording"]),
        )
        fitted[label] = params.to_dict()
        new[label] = {
            p: postprocess.apply_postprocess(s.series(p, "pred"), params) for p in s.partitions
        }
    return preds.with_postprocessed(new), fitted


def ccc_tables(preds: Predictions, comparisons, settings: ExperimentSettings, n_resamples: int):
    """Tables I and II: CCC before and after post-processing, with significance columns."""
    out = {}
    agg = "CCC over the concatenation of each partition's recordings (AVEC 2016)"
    for key, which, title in (
        ("table1_before_postprocessing", "pred", "CCC before post-processing"),
        ("table2_after_postprocessing", "pred_pp", "CCC after post-processing"),
    ):
        df = tables.ccc_table(
            preds, which=which, comparisons=comparisons, n_resamples=n_resamples, seed=settings.seed
        )
        out[key] = (df, f"{title}; {agg}.")
    return out


def seeds_table(ctx: Context, method, trained: Mapping[str, Trained], labels) -> Any:
    """Mean ± std over seeds of the kept architecture beside the best-by-dev member."""
    rows = []
    for t in trained.values():
        if t.label not in labels or not t.seed_outputs:
            continue
        row = {"system": t.label, "seeds": len(t.seed_outputs)}
        for part in ("dev", "test"):
            recs = ctx.corpus.partitions.get(part) or []
            if not recs or not all(r.has_labels for r in recs):
                continue
            gold = np.concatenate([r.gold for r in recs])
            scores = []
            for outs in t.seed_outputs:
                pred, _ = method.prediction(ctx, trained, t.name, outs[part], part)
                scores.append(
                    metrics.ccc(np.concatenate([p[:, 0] if p.ndim > 1 else p for p in pred]), gold)
                )
            best, _ = method.prediction(ctx, trained, t.name, t.outputs[part], part)
            row[f"{part} CCC mean"] = float(np.mean(scores))
            row[f"{part} CCC std"] = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
            row[f"{part} CCC best-by-dev"] = metrics.ccc(
                np.concatenate([p[:, 0] if p.ndim > 1 else p for p in best]), gold
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("system") if rows else None


def write_outputs(ctx, method, settings, preds, fitted, trained) -> dict:
    """Tables, predictions, members, figures and the report of a finished run."""
    rd = ctx.workdir / "results"
    labels = preds.labels
    found = ccc_tables(preds, method.comparisons(labels), settings, method.n_resamples(ctx))
    seeds = seeds_table(ctx, method, trained, labels)
    if seeds is not None:
        found["seeds"] = (
            seeds,
            "Mean ± std over seeds (kept architecture), before post-processing.",
        )
    found.update(method.tables(ctx, preds, trained))
    for key, (df, caption) in found.items():
        eval_io.write_table(df, rd, key, caption=caption)
    members = pd.concat(
        [t.members.assign(system=t.label) for t in trained.values()], ignore_index=True
    )
    atomic.write_text(rd / "members.csv", members.to_csv(index=False))
    atomic.write_text(rd / "postprocess_params.json", json.dumps(fitted, indent=1) + "\n")
    write_predictions(preds, ctx.workdir / "predictions")
    figures = method.figures(ctx, preds, trained, ctx.workdir / "figures")
    timing = pd.DataFrame(
        {
            "dev score": [t.dev_score for t in trained.values()],
            "architecture": [str(t.arch) for t in trained.values()],
            "seconds": [round(t.seconds, 1) for t in trained.values()],
        },
        index=pd.Index([t.label for t in trained.values()], name="system"),
    )
    eval_report.write_report(
        ctx.workdir,
        f"{method.name}: {ctx.corpus.dimension}, {'+'.join(ctx.corpus.modalities)}",
        {
            "Data": [f"```\n{ctx.corpus.summary()}\n```"],
            "Results": [(caption, df) for df, caption in found.values()],
            "Systems": [("Trained systems (dev score of the kept member, wall time)", timing)],
            "Figures": list(figures),
        },
    )
    return {k: v[0] for k, v in found.items()}


def validate(config):
    """Resolves and checks the whole config before any data is loaded or file written.

    Returns:
      ``(method, experiment settings, method settings)``.

    Raises:
      ValueError: naming the config field, its value and the valid values.
    """
    method = _method(config.method)
    return method, experiment_settings(config), method.settings(config)


def run_shared(ctx: Context, systems, devices, on_done, cluster) -> dict[str, Trained]:
    """The systems of a several-process job (:mod:`ddat_jax.experiment.distributed`):
    this process trains its components; the coordinator then loads the others' (resume
    of their finished trainings in the shared workdir) and returns every system."""
    owner = distributed.assign(systems, cluster.num_processes)
    me, scope = cluster.process_id, str(ctx.workdir)
    mine = [s for s in systems if owner[s.name] == me]
    print(f"this process trains {', '.join(s.label for s in mine) or 'nothing'}", flush=True)

    def run_one(s: System, up, dev) -> Trained:
        what = f"system {s.name!r} ({s.label})"
        trained = distributed.reporting(cluster, what, run_system, ctx, s, up, dev)
        cluster.publish(scope, s.name, repr(float(trained.seconds)))
        return trained

    trained = schedule.run_schedule(mine, run_one, devices, on_done=on_done) if mine else {}
    if not cluster.is_coordinator:
        return trained
    others = [s for s in systems if owner[s.name] != me]
    if others:
        took = cluster.wait(
            scope, {s.name: owner[s.name] for s in others}, "the other processes' systems"
        )
        print(f"loading {', '.join(s.label for s in others)} (other processes)", flush=True)
        loaded = schedule.run_schedule(
            others, lambda s, up, dev: run_system(ctx, s, up, dev), devices
        )
        # The report's wall time of a system is its training's, not the reload's.
        trained.update(
            {n: dataclasses.replace(t, seconds=float(took[n])) for n, t in loaded.items()}
        )
    return {s.name: trained[s.name] for s in systems}


def run(
    config,
    workdir: str | Path,
    *,
    overwrite: bool = False,
    cluster: distributed.Cluster | None = None,
) -> dict:
    """Runs the experiment described by ``config``; returns its tables and scores.

    Args:
      config: a ConfigDict from one of the ``configs/*.py`` files.
      workdir: output folder (layout in the module docstring); one holding a run with
        another config is refused (:mod:`ddat_jax.experiment.workdirs`) before anything
        is written, unless ``overwrite``.
      cluster: the processes of a ``jax.distributed`` job sharing the run (default:
        :func:`ddat_jax.experiment.distributed.current`; one process unless
        ``ddat_jax.main`` joined a job). With several, each trains its share of the
        systems and only the coordinator writes predictions, tables and report (the
        coordinator prepares the workdir; the others only use it).

    Returns:
      ``{"tables": {name: DataFrame}, "dev_score": {label: float}, "predictions":
      Predictions, "seconds": float, "corpus_summary": str}`` (on a process other than
      the coordinator: no tables, predictions None, its own systems' dev scores).
    """
    t0 = time.perf_counter()
    cluster = distributed.current() if cluster is None else cluster
    method, settings, msettings = validate(config)
    if method.run is not None:  # a method that drives several experiments (ddat_paper)
        return method.run(config, workdir, overwrite=overwrite)
    workdir = Path(workdir)
    if cluster.is_coordinator:
        workdirs.prepare(config, workdir, overwrite=overwrite)
    corpus = prepare.prepare_corpus(config.data)
    summary = corpus.summary()
    print(summary, flush=True)
    if cluster.is_coordinator:
        atomic.write_text(workdir / "data_summary.txt", summary + "\n")
    method.check_corpus(corpus)
    batches = {p: preprocess.to_batch(recs) for p, recs in corpus.partitions.items() if recs}
    ctx = Context(corpus, msettings, settings.train, settings.seed, workdir, batches)
    systems = method.plan(ctx)
    devices = system_devices(settings.parallel)
    print(
        f"{len(systems)} systems on {len(devices)} device(s) ({devices[0].platform}): "
        f"{', '.join(s.label for s in systems)}",
        flush=True,
    )
    if cluster.distributed:
        trained = run_shared(ctx, systems, devices, _progress(settings, t0), cluster)
        if not cluster.is_coordinator:
            cluster.wait(str(workdir), {"finished": 0}, "the coordinator's tables")
            seconds = time.perf_counter() - t0
            print(f"done in {seconds:.0f} s; the coordinator wrote {workdir}", flush=True)
            return {
                "tables": {},
                "dev_score": {t.label: t.dev_score for t in trained.values()},
                "predictions": None,
                "seconds": seconds,
                "corpus_summary": summary,
            }
    else:
        trained = schedule.run_schedule(
            systems,
            lambda s, up, dev: run_system(ctx, s, up, dev),
            devices,
            on_done=_progress(settings, t0),
        )
    # Plan order, not the order in which the systems finished (members.csv, the report's
    # systems table): the same files whatever the schedule and the number of processes.
    trained = {s.name: trained[s.name] for s in systems}
    in_tables = [s.name for s in systems if s.in_tables]
    order = [n for n in method.row_order if n in in_tables] + [
        n for n in in_tables if n not in method.row_order
    ]
    preds = Predictions(
        {trained[n].label: predictions_of(ctx, method, trained, trained[n]) for n in order},
        corpus.frame_period,
    )
    preds, fitted = postprocess_all(preds, settings)
    found = write_outputs(ctx, method, settings, preds, fitted, trained)
    seconds = time.perf_counter() - t0
    print(console.summary(found), flush=True)
    print(f"done in {seconds:.0f} s; results in {workdir}", flush=True)
    cluster.publish(str(workdir), "finished")
    return {
        "tables": found,
        "dev_score": {trained[n].label: trained[n].dev_score for n in order},
        "predictions": preds,
        "seconds": seconds,
        "corpus_summary": summary,
    }
