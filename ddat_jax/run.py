"""Runs one experiment from its config: ``run(config, workdir) -> results``.

The method named by ``config.method`` decides what happens after the data are prepared
(``METHODS``: a plain dict, name → function).
"""

from __future__ import annotations

import time
from pathlib import Path

from absl import logging

from ddat_jax import atomic
from ddat_jax.data import prepare
from ddat_jax.ddat import pipeline

METHODS = {"ddat": pipeline.run_ddat}


def write_config(config, workdir: Path) -> None:
    """Writes ``workdir/config.json`` (the resolved config, for the record)."""
    atomic.write_text(
        workdir / "config.json", config.to_json_best_effort(indent=2, sort_keys=True) + "\n"
    )


def run(config, workdir: str | Path) -> dict:
    """Runs the experiment described by ``config`` and returns its results.

    Args:
      config: a ConfigDict from one of the ``configs/*.py`` files.
      workdir: output folder (config.json, data summary, per-system trainings, stage1/,
        predictions/, results/, figures/).

    Returns:
      The method's results plus ``"corpus_summary"``.
    """
    if config.method not in METHODS:
        raise ValueError(f"unknown config.method {config.method!r}; valid: {sorted(METHODS)}")
    workdir = Path(workdir)
    write_config(config, workdir)
    t0 = time.perf_counter()
    corpus = prepare.prepare_corpus(config.data)
    summary = corpus.summary()
    print(summary, flush=True)
    logging.info("data ready in %.1f s", time.perf_counter() - t0)
    (workdir / "data_summary.txt").write_text(summary + "\n")
    results = METHODS[config.method](config, workdir, corpus)
    results["corpus_summary"] = summary
    return results
