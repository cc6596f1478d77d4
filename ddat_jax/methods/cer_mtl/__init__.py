"""CER-MTL — multi-task conv + GRU regression with correlation losses (Köprü & Erzin).

Each frame's input is a "feature image" (N early-fused feature vectors, stride t; causal
by default) gathered inside the jitted step (:mod:`ddat_jax.models.cer`); Conv1D(25, 3)
→ max-pool 2 → one GRU(5) → Dense(2) → linear per task; all tasks trained jointly with
weights 1/M and a CCC, PCC or MSE loss (one system per loss), against one STL network per
dimension, per modality set and per N. :mod:`.plan` lists the systems; :mod:`.tables`
writes the paper's Tables I–IV beside the published values, tests of its claims and
Fig. 2.

The generic CCC tables of a run hold the systems that predict the corpus's first
dimension, scored on it; the paper tables score every dimension (the corpus is loaded
with several: ``config.data.dimension = "arousal+valence"``).
"""

from __future__ import annotations

from ddat_jax.methods import Method, require_labels
from ddat_jax.methods.cer_mtl import plan, settings, tables


def check_corpus(corpus) -> None:
    """Train and dev (or, for leave-one-partition-out, every partition) need labels."""
    needed = ("train", "dev") if "train" in corpus.partitions else tuple(corpus.partitions)
    require_labels(corpus, needed, "training and model selection")


METHOD = Method(
    name="cer_mtl",
    settings=settings.settings_from_config,
    plan=plan.plan,
    prediction=tables.prediction,
    comparisons=plan.comparisons,
    tables=tables.paper_tables,
    figures=tables.paper_figures,
    check_corpus=check_corpus,
    n_resamples=lambda ctx: ctx.settings.significance_resamples,
)
