"""Implicit fusion by joint audio-visual training (Han et al.), as one method of the trunk.

Modality-specific recurrent blocks ``SP_A``, ``SP_V`` feed one shared block ``SH``; both
modalities pass through ``SH`` separately and the loss is ``L_main + α·L_aux``. The α grid
({0, 0.1, …, 1} by default) is one compiled program per main modality; α is chosen on dev
and α = 0 is the mono-modal baseline. At dev/test time only the main modality is used
(:func:`ddat_jax.models.fusion.predict_main`). Both directions (audio main + video aux,
video main + audio aux) are planned in one run (:mod:`.plan`); :mod:`.tables` adds the
paper's Table 2 beside the paper's values, the α grid and the α curves.
"""

from __future__ import annotations

from ddat_jax.methods import Method, require_labels
from ddat_jax.methods.implicit_fusion import plan, settings, tables


def check_corpus(corpus) -> None:
    """Two modalities (the views) and labelled train and dev partitions."""
    if len(corpus.modality_slices) != 2:
        raise ValueError(
            "implicit fusion needs a corpus loaded with two modalities, e.g. "
            "config.data.modality='audio+video_geometric'; got "
            f"{list(corpus.modality_slices) or list(corpus.modalities)}"
        )
    require_labels(corpus, ("train", "dev"), "training and the choice of α")


METHOD = Method(
    name="implicit_fusion",
    settings=settings.settings_from_config,
    plan=plan.plan,
    prediction=tables.prediction,
    comparisons=plan.comparisons,
    tables=tables.paper_tables,
    figures=tables.paper_figures,
    check_corpus=check_corpus,
    row_order=plan.row_order(("audio", "video", "video_geometric", "video_appearance")),
    n_resamples=lambda ctx: ctx.settings.significance_resamples,
)
