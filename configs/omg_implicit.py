"""Implicit fusion on OMG-Emotion-like data: 7-class utterance classification (Table 1, Fig. 2).

Each video is a sequence of its utterances (one feature vector per utterance); the GRU runs
over a video's utterances and predicts each utterance's class. Both directions in one run
(audio main + video aux, video main + audio aux); per direction the α grid {0, 0.1, …, 1}
is one compiled program, α is chosen on dev (macro-F1), α = 0 is the mono-modal baseline.
GRU 100 units, 1 specific + 1 shared layer, Adam 1e-3, cross-entropy on class logits. Test
labels are withheld (as OMG): everything is reported on dev, as the paper does. The
generic CCC tables of the run are computed on class indices and are not meaningful here;
read ``results/table1_implicit_fusion.md`` and ``figures/alpha_curves.png`` (Fig. 2).

Commands (embedded corpus, preset ``omg``: 4096-dim video features):
    python -m ddat_jax.main --config=configs/omg_implicit.py
    python -m ddat_jax.main --config=configs/omg_implicit.py:quick   # 2-core CPU
    python -m ddat_jax.main --config=configs/omg_implicit.py:smoke   # seconds
A real OMG-Emotion copy converted to the CSV layout (README, "OMG-Emotion"):
    python -m ddat_jax.main --config=configs/omg_implicit.py --config.data.root=/path/to/omg_csv
"""

import ml_collections

from ddat_jax.config import base_config, data_config, parse_arg, variant_of


def get_config(arg=None):
    defaults = dict(preset="omg", seed=0, smoke=False, quick=False)
    a = parse_arg(arg, **defaults)
    data = data_config(modality="audio+video", dimension="emotion", preset=a.preset)
    data.layout = "csv"
    data.delay_s = 0.0  # utterance-level labels: no annotation delay
    c = base_config(
        "omg_implicit",
        "implicit_fusion",
        seed=a.seed,
        smoke=a.smoke,
        data=data,
        variant=variant_of(a, **defaults),
    )
    c.postprocess.enabled = False  # the RECOLA chain is for continuous traces
    c.train.batch_size = 16  # videos per minibatch (≈ 150 utterances; the paper: 128)
    c.train.patience = 15
    c.model = ml_collections.ConfigDict()
    c.model.cell = "gru"
    c.model.hidden_size = 100
    c.model.specific_layers = 1
    c.model.shared_layers = 1
    c.model.init_scale = 0.0

    c.implicit = ml_collections.ConfigDict()
    c.implicit.task = "classification"
    c.implicit.directions = ("audio", "video")
    c.implicit.alphas = tuple(round(0.1 * i, 1) for i in range(11))
    c.implicit.loss = "xent"
    c.implicit.num_classes = 7
    c.implicit.ddat_workdirs = ()
    c.implicit.significance_resamples = 2000

    if a.quick:
        c.train.epochs = 30
        c.train.patience = 0
        c.train.checkpoint_every = 30
    if a.smoke:
        c.data.preset = "omg_small"
        c.model.hidden_size = 8
        c.implicit.alphas = (0.0, 0.5, 1.0)
        c.train.epochs = 2
        c.train.patience = 0
        c.train.checkpoint_every = 2
        c.implicit.significance_resamples = 199
    return c
