"""The DDAT paper in one command: every cell (3 feature sets × 2 dimensions) as one DDAT
experiment, then the paper's Tables I–IV and Figures 2–4 across the cells.

``python -m ddat_jax.main --config=configs/ddat_paper.py`` reaches :func:`run_paper`
through the method ``ddat_paper`` (its :attr:`Method.run` replaces the single-experiment
pipeline). Layout of the paper workdir::

    config.json                     the paper config
    cells/<feature set>-<dimension>/ one complete DDAT run each (its own config.json,
                                     tables, predictions, figures, report) and
                                     cell_complete.json (written last: config + checksums)
    results/                        paper_table{1,2,3,4}[_vs_paper|_permutation_p].{csv,md},
                                     avec_official_scoring.{csv,md}, fusion_weights.json
    figures/                        fig2_ccc_per_stream.png, fig3_best_fusion_<dim>.png,
                                     fig4_fusion_contributions.png
    report.md

Resumable per cell: a re-run skips every cell whose ``cell_complete.json`` records the same
cell config and whose recorded files still have their checksums; any other cell is run
(again) by :func:`ddat_jax.experiment.run`, which itself resumes finished trainings and
refuses a workdir holding another config.

Several processes (:mod:`ddat_jax.experiment.distributed`): cells are dealt round-robin
in the order above; each process runs its cells (each a one-process DDAT run); the
coordinator waits for the others' cells (their ``cell_complete.json``, checked) and alone
writes ``results/``, ``figures/`` and ``report.md``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import ml_collections
import pandas as pd

from ddat_jax.experiment import distributed, workdirs
from ddat_jax.methods.ddat import paper_values, settings
from ddat_jax.predictions import MANIFEST, Predictions, read_predictions

PAPER_GRID = tuple((n, u) for n in (1, 3, 5, 7, 9) for u in (40, 80, 120))
ARCH_CHOICES = ("auto", "paper", "config")
MARKER = "cell_complete.json"
CELL_FILES = (
    "results/table1_before_postprocessing.csv",
    "results/table2_after_postprocessing.csv",
    f"predictions/{MANIFEST}",
    "report.md",
)


@dataclasses.dataclass(frozen=True)
class PaperSettings:
    """The paper driver's settings (``config.paper``) and the cells' DDAT settings."""

    feature_sets: tuple[str, ...]
    dimensions: tuple[str, ...]
    arch: str
    cell: settings.DDATSettings


def paper_settings(config) -> PaperSettings:
    """Validates ``config.paper`` and the DDAT sections every cell uses."""
    p = config.paper
    fs, dims = tuple(p.feature_sets), tuple(p.dimensions)
    bad = [f for f in fs if f not in paper_values.FEATURE_SETS]
    if not fs or bad:
        raise ValueError(
            f"config.paper.feature_sets={fs!r}: expected a non-empty subset of "
            f"{list(paper_values.FEATURE_SETS)}"
        )
    if not dims or any(d not in paper_values.DIMENSIONS for d in dims):
        raise ValueError(
            f"config.paper.dimensions={dims!r}: expected a non-empty subset of "
            f"{list(paper_values.DIMENSIONS)}"
        )
    if p.arch not in ARCH_CHOICES:
        raise ValueError(f"config.paper.arch={p.arch!r} is not valid; valid: {list(ARCH_CHOICES)}")
    return PaperSettings(fs, dims, str(p.arch), settings.settings_from_config(config))


def resolve_arch(choice: str, configured) -> tuple:
    """``paper``: the paper's grid {1,3,5,7,9} × {40,80,120}; ``config``: model.arch;
    ``auto``: the grid on an accelerator, model.arch on CPU (decided at run time)."""
    if choice == "paper":
        return PAPER_GRID
    if choice == "auto":
        import jax

        if jax.default_backend() != "cpu":
            return PAPER_GRID
    return tuple(tuple(int(v) for v in a) for a in configured)


def cell_config(config, modality: str, dimension: str, arch) -> ml_collections.ConfigDict:
    """The DDAT experiment config of one cell (the paper config without ``paper``)."""
    d = config.to_dict()
    d.pop("paper")
    c = ml_collections.ConfigDict(d)
    c.method = "ddat"
    c.name = f"{config.name}/{modality}-{dimension}"
    c.data.modality = modality
    c.data.dimension = dimension
    c.model.arch = tuple(arch)
    return c


def cell_complete(cfg, cwd: Path) -> bool:
    """Whether ``cwd`` holds a finished run of ``cfg`` whose files are unchanged."""
    return workdirs.completion_verified(cfg, cwd, MARKER)


def run_cell(cfg, cwd: Path, *, overwrite: bool) -> str:
    """Runs one cell unless complete; returns ``"skipped"`` or ``"ran in <s> s"``."""
    from ddat_jax.experiment.run import run

    if not overwrite and cell_complete(cfg, cwd):
        return "skipped (complete, verified)"
    t0 = time.perf_counter()
    (cwd / MARKER).unlink(missing_ok=True)
    run(cfg, cwd, overwrite=overwrite)
    workdirs.write_completion(cfg, cwd, MARKER, CELL_FILES)
    return f"ran in {time.perf_counter() - t0:.0f} s"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One finished cell read back from disk."""

    modality: str
    dimension: str
    tables: dict[str, pd.DataFrame]
    predictions: Predictions


def load_cell(modality: str, dimension: str, cwd: Path) -> Cell:
    """A cell's tables (every ``results/*.csv``) and predictions (with extras)."""
    tables = {p.stem: pd.read_csv(p, index_col=0) for p in sorted((cwd / "results").glob("*.csv"))}
    return Cell(modality, dimension, tables, read_predictions(cwd / "predictions"))


def run_paper(config, workdir, *, overwrite: bool = False) -> dict:
    """Runs every cell (resumable), then writes the paper's tables, figures and report.

    Returns:
      ``{"tables": {name: DataFrame}, "cells": {(modality, dimension): Cell},
      "seconds": float, "cell_status": {cell: str}}``.
    """
    from ddat_jax.methods.ddat import paper_outputs

    t0 = time.perf_counter()
    cluster = distributed.current()
    s = paper_settings(config)
    workdir = Path(workdir)
    if cluster.is_coordinator:
        workdirs.prepare(config, workdir, overwrite=overwrite)
    arch = resolve_arch(s.arch, config.model.arch)
    print(f"DDAT paper: {len(s.feature_sets) * len(s.dimensions)} cells, archs {arch}", flush=True)
    order = [(fs, dim) for fs in s.feature_sets for dim in s.dimensions]
    dealt = distributed.round_robin(len(order), cluster.num_processes)
    owner = dict(zip(order, dealt, strict=True))
    scope = str(workdir)
    cells, status = {}, {}
    for fs, dim in order:
        if owner[(fs, dim)] != cluster.process_id:
            continue
        cwd = workdir / "cells" / f"{fs}-{dim}"
        cfg = cell_config(config, fs, dim, arch)
        with distributed.local():  # a cell is a one-process run
            status[f"{fs}-{dim}"] = distributed.reporting(
                cluster, f"cell {fs}-{dim}", run_cell, cfg, cwd, overwrite=overwrite
            )
        print(f"[cell {fs}-{dim}] {status[f'{fs}-{dim}']}", flush=True)
        cluster.publish(scope, f"{fs}-{dim}", status[f"{fs}-{dim}"])
        if cluster.is_coordinator:
            cells[(fs, dim)] = load_cell(fs, dim, cwd)
    if not cluster.is_coordinator:
        cluster.wait(scope, {"finished": 0}, "the coordinator's paper tables")
        seconds = time.perf_counter() - t0
        return {"tables": {}, "cells": {}, "seconds": seconds, "cell_status": status}
    foreign = {f"{fs}-{dim}": p for (fs, dim), p in owner.items() if p != cluster.process_id}
    ran = cluster.wait(scope, foreign, "the other processes' cells")
    for fs, dim in order:
        name = f"{fs}-{dim}"
        if name in foreign:
            cwd = workdir / "cells" / name
            if not cell_complete(cell_config(config, fs, dim, arch), cwd):
                raise distributed.DistributedError(
                    f"cell {name} of process {foreign[name]} is not complete in {cwd}"
                )
            status[name] = f"{ran[name]} on process {foreign[name]}"
            print(f"[cell {name}] {status[name]}", flush=True)
            cells[(fs, dim)] = load_cell(fs, dim, cwd)
    cells = {c: cells[c] for c in order}
    status = {f"{fs}-{dim}": status[f"{fs}-{dim}"] for fs, dim in order}
    found = paper_outputs.write_all(cells, workdir, status, seconds=time.perf_counter() - t0)
    cluster.publish(scope, "finished")
    seconds = time.perf_counter() - t0
    print(f"DDAT paper done in {seconds:.0f} s; results in {workdir}", flush=True)
    return {"tables": found, "cells": cells, "seconds": seconds, "cell_status": status}
