"""SEW — the stronger modality enhances the weaker one (Rajan, Brutti & Cavallaro, 2021).

For a pair (stronger ``S``, weaker ``W``) SEW trains an inter-modal translator (encoder
``W_E`` on ``W``, decoder ``S_D1`` to ``S``'s features), an intra-modal autoencoder on
``S`` (``S_E``, ``S_D2``), a Deep-CCA alignment of the two latents and a regressor ``R``
on ``W_E``'s latent, with the loss

    α·MSE(M_s, Ŝ_sw) + β·MSE(M_s, Ŝ_s) − γ·corr_K(m_sw, m_ss) + MSE(y, ŷ),

``corr_K`` the sum of the top-K canonical correlations (:func:`ddat_jax.losses.dcca_loss`
with ridges r1, r2). Only ``W_E`` and ``R`` predict: the deployed system reads the weak
modality alone. The plan (:mod:`.plan`) holds the unimodal regressors of the paper's
Table 1 and, per pair, SEW and the ablations −S_D2, −CCA, −S_D1, −(CCA & S_D1) of
Table 2; :mod:`.tables` writes Tables 1–3 with the paper's values beside ours.
"""

from __future__ import annotations

from ddat_jax.methods import Method, require_labels
from ddat_jax.methods.sew import plan, settings, tables


def check_corpus(corpus) -> None:
    """Train and dev need a gold standard; the features must name their modalities."""
    require_labels(corpus, ("train", "dev"), "training and model selection")
    if not corpus.modality_slices:
        raise ValueError("SEW needs Corpus.modality_slices (load the modalities with '+')")


def _row_order() -> tuple[str, ...]:
    names = [plan.uni_name(m) for m in settings.MODALITIES]
    for pairs in settings.PAPER_PAIRS.values():
        names += [plan.pair_name(v, p) for p in pairs for v in settings.VARIANTS]
    return tuple(names)


METHOD = Method(
    name="sew",
    settings=settings.settings_from_config,
    plan=plan.plan,
    prediction=tables.prediction,
    comparisons=lambda labels: {},
    tables=tables.paper_tables,
    check_corpus=check_corpus,
    row_order=_row_order(),
    n_resamples=lambda ctx: ctx.settings.significance_resamples,
)
