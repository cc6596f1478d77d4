"""Soft prediction (Han et al.): emotional state E and its perception uncertainty σ.

Per emotion dimension and modality a BLSTM (2 × 240, Gaussian input noise, uniform init)
with an E head (EWE gold standard) and a σ head (std over raters, scaled with train
statistics) is trained on ``w_E·MSE_E + w_σ·MSE_σ``, ``w_E + w_σ = 2``, the whole
``w_E`` grid as one compiled program, once with E and once with σ as the dev score
(:mod:`.plan`). :mod:`.evaluate` builds the paper's Tables 1 (CCC) and 2 (RMSE) — single-
vs multi-task, audio, video and their SLR late fusion, post-processing fitted on dev —
with the paper's values beside ours, the effects with recording-level tests, and the dev
CCC over the grid; :mod:`.figures` draws the w_E curves and the paper's Fig. 4.
"""

from __future__ import annotations

from ddat_jax.methods import Method
from ddat_jax.methods.soft_prediction import evaluate, figures, plan, settings

METHOD = Method(
    name="soft_prediction",
    settings=settings.settings_from_config,
    plan=plan.plan,
    prediction=evaluate.prediction,
    comparisons=lambda labels: {},
    tables=evaluate.paper_tables,
    figures=figures.paper_figures,
    check_corpus=plan.check_corpus,
    n_resamples=lambda ctx: ctx.settings.significance_resamples,
)
