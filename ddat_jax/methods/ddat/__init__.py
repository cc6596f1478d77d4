"""DDAT — Dynamic Difficulty Awareness Training (Zhang et al.), as one method of the trunk.

Stage 1 trains a multi-task GRU-RNN whose auxiliary task reconstructs the input (RE) or
predicts the raters' perception uncertainty (PU); its difficulty signal is written next to
the features; stage 2 trains on ``[x, d]``. The plan (:mod:`.plan`) also holds the paper's
baselines (STL, curriculum learning with a DNN and a GRU-RNN); :mod:`.tables` adds the
paper's Tables III (difficulty vs improvement) and IV (dynamic tuning and late fusion).
"""

from __future__ import annotations

from ddat_jax.methods import Method, require_labels
from ddat_jax.methods.ddat import paper, plan, settings, tables


def check_corpus(corpus) -> None:
    """Train and dev must carry a gold standard (training and model selection)."""
    require_labels(corpus, ("train", "dev"), "training and model selection")


METHOD = Method(
    name="ddat",
    settings=settings.settings_from_config,
    plan=plan.plan,
    prediction=tables.prediction,
    comparisons=plan.comparisons,
    tables=tables.paper_tables,
    figures=tables.paper_figures,
    check_corpus=check_corpus,
    row_order=settings.ALL_SYSTEMS,
    n_resamples=lambda ctx: ctx.settings.significance_resamples,
)

PAPER_METHOD = Method(
    name="ddat_paper",
    settings=paper.paper_settings,
    plan=lambda ctx: (),
    prediction=tables.prediction,
    comparisons=lambda labels: {},
    run=paper.run_paper,
)
"""The whole DDAT paper (3 feature sets × 2 dimensions): ``configs/ddat_paper.py``."""
