"""Implicit fusion by joint audio-visual training on RECOLA (regression; paper's Table 2).

Both directions in one run: audio main + video_geometric auxiliary, and video_geometric
main + audio auxiliary; per direction the α grid {0, 0.1, …, 1} is one compiled program,
α is chosen on dev, α = 0 is the mono-modal baseline. GRU 100 units, 2 specific + 2 shared
layers, Adam 1e-3 (the paper's RECOLA sizes); labels shifted back by 2.4 s and the DDAT
post-processing chain fitted on dev. One run scores one dimension.

Commands (embedded corpus):
    python -m ddat_jax.main --config=configs/recola_implicit.py                  # arousal
    python -m ddat_jax.main --config=configs/recola_implicit.py:dimension=valence
    python -m ddat_jax.main --config=configs/recola_implicit.py:quick            # 2-core CPU
    python -m ddat_jax.main --config=configs/recola_implicit.py:smoke            # seconds
With MTL/DDAT rows from DDAT runs of the same corpus and dimension:
    ... --config.implicit.ddat_workdirs="('runs/recola_re', 'runs/recola_re-...')"
Both dimensions in the paper's layout (after the two runs):
    python -m ddat_jax.methods.implicit_fusion.table2 RUN_AROUSAL RUN_VALENCE
Real AVEC 2016 copy: add --config.data.root=/path/to/AVEC2016.

Variants: ``smoke`` (preset small, GRU 8, 1 + 1 layers, α ∈ {0, 0.5, 1}, 2 epochs) and
``quick`` (full embedded corpus, GRU 32, 1 + 1 layers, the full α grid, 8 epochs; the
sizes a 2-core CPU trains in minutes, not the paper's).
"""

import ml_collections

from ddat_jax.config import base_config, data_config, parse_arg, variant_of


def get_config(arg=None):
    defaults = dict(dimension="arousal", preset="recola", seed=0, smoke=False, quick=False)
    a = parse_arg(arg, **defaults)
    data = data_config(modality="audio+video_geometric", dimension=a.dimension, preset=a.preset)
    c = base_config(
        "recola_implicit",
        "implicit_fusion",
        seed=a.seed,
        smoke=a.smoke,
        data=data,
        variant=variant_of(a, **defaults),
    )
    c.model = ml_collections.ConfigDict()
    c.model.cell = "gru"  # "gru" | "lstm"
    c.model.hidden_size = 100  # units of every layer (the shared space K)
    c.model.specific_layers = 2  # layers of SP_A and SP_V
    c.model.shared_layers = 2  # recurrent layers of SH (before its linear head)
    c.model.init_scale = 0.0  # 0 = torch's default init; a > 0 = uniform(-a, a)

    c.implicit = ml_collections.ConfigDict()
    c.implicit.task = "regression"  # "regression" | "classification"
    c.implicit.directions = ("audio", "video_geometric")  # main modalities (one pair each)
    c.implicit.alphas = tuple(round(0.1 * i, 1) for i in range(11))  # α grid; 0 = baseline
    c.implicit.loss = "mse"  # loss of both terms: "mse" | "ccc"
    c.implicit.num_classes = 7  # classifier logits (classification only)
    c.implicit.ddat_workdirs = ()  # DDAT runs (same corpus, dimension) for Table 2's rows
    c.implicit.significance_resamples = 9999

    if a.quick:
        c.model.hidden_size = 32
        c.model.specific_layers = 1
        c.model.shared_layers = 1
        c.train.epochs = 8
        c.train.patience = 0
        c.train.checkpoint_every = 8
        c.implicit.significance_resamples = 999
    if a.smoke:
        c.data.preset = "small"
        c.model.hidden_size = 8
        c.model.specific_layers = 1
        c.model.shared_layers = 1
        c.implicit.alphas = (0.0, 0.5, 1.0)
        c.train.epochs = 2
        c.train.patience = 0
        c.train.checkpoint_every = 2
        c.implicit.significance_resamples = 199
    return c
