"""Runs one experiment from its config: ``run(config, workdir) -> results``.

The method named by ``config.method`` decides what happens after the data are prepared.
"""

from __future__ import annotations

import time
from pathlib import Path

from absl import logging

from ddat_jax.data import prepare


def write_config(config, workdir: Path) -> None:
    """Writes ``workdir/config.json`` (the resolved config, for the record)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / "config.json.tmp"
    tmp.write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
    tmp.replace(workdir / "config.json")


def run(config, workdir: str | Path) -> dict:
    """Runs the experiment described by ``config`` and returns its results.

    Args:
      config: a ConfigDict from one of the ``configs/*.py`` files.
      workdir: output folder (config.json, metrics.jsonl, checkpoints, results, figures).

    Returns:
      A dict with at least ``"corpus_summary"``; the method's results are added under
      their own keys.
    """
    workdir = Path(workdir)
    write_config(config, workdir)
    t0 = time.perf_counter()
    corpus = prepare.prepare_corpus(config.data, seed=config.seed)
    summary = corpus.summary()
    print(summary, flush=True)
    logging.info("data ready in %.1f s", time.perf_counter() - t0)
    results = {"corpus_summary": summary}
    (workdir / "data_summary.txt").write_text(summary + "\n")
    return results
