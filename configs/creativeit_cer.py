"""CER-MTL (Köprü & Erzin) on the embedded CreativeIT-like corpus: activation, valence and
dominance from speech (39) and body motion (24) features at 60 fps, leave-one-session-out.

As the paper: early fusion by concatenation, gold standard = mean of the raters, 5
speaker-exclusive sessions, each held out once (the other four train; the held-out session
also serves early stopping, as the paper's protocol implies), mean CCC over the folds;
Adam 5e-5, batches of 256 frames (4 chunks of 64 target frames), at most 100 epochs,
patience 20 on the mean CCC over the three dimensions; N ∈ {20, 40, 60}, t = 10 frames
(N·t = 3.3 s for N = 20). Losses CCC / PCC / MSE, MTL vs one STL network per dimension,
speech / body / multimodal. No label delay shift and no post-processing.

The folds of a system run one after another (the engine's members share one data set);
the corpus is the simulation of :mod:`ddat_jax.data.sim_creativeit` (preset ``creativeit``;
``creativeit_small`` for tests), written in the CSV layout with sessions as partitions.

Commands:
    python -m ddat_jax.main --config=configs/creativeit_cer.py          # 13 systems x 5 folds
    python -m ddat_jax.main --config=configs/creativeit_cer.py:quick    # N = 20 only, fewer epochs
    python -m ddat_jax.main --config=configs/creativeit_cer.py:smoke    # tiny, for tests

Outputs beyond the generic tables (activation only, per held-out session):
``results/cer_table_losses`` (Table I), ``cer_table3_mtl_stl``, ``cer_table4_window``,
``cer_claims`` (recording-level permutation tests over the 40 out-of-fold recordings),
``figures/cer_fig2_predictions.png``.
"""

import ml_collections

from ddat_jax.config import base_config, data_config, parse_arg, variant_of

SESSIONS = tuple(f"session{i}" for i in range(1, 6))


def get_config(arg=None):
    defaults = dict(seed=0, smoke=False, quick=False, preset="creativeit")
    a = parse_arg(arg, **defaults)
    data = data_config(
        modality="speech+body", dimension="activation+valence+dominance", preset=a.preset
    )
    data.layout = "csv"
    data.gold = "mean"
    data.delay_s = 0.0
    data.partitions = SESSIONS
    c = base_config(
        "creativeit_cer",
        "cer_mtl",
        seed=a.seed,
        smoke=a.smoke,
        data=data,
        variant=variant_of(a, **defaults),
    )
    c.train.epochs = 100
    c.train.batch_size = 4  # chunks of cer.chunk target frames: 4 x 64 = 256 frames
    c.train.patience = 20
    c.train.eval_batch_size = 64
    c.train.log_every = 5
    c.train.checkpoint_every = 10
    c.hparams.learning_rate = 5e-5
    c.hparams.l2 = 0.0
    c.postprocess.enabled = False

    c.cer = ml_collections.ConfigDict()
    c.cer.variants = ("speech+body", "body", "speech")
    c.cer.variant_labels = ("Multimodal", "Motion", "Speech")
    c.cer.losses = ("ccc", "pcc", "mse")  # the first is Tables III-IV's loss
    c.cer.windows = (20, 40, 60)  # N; the first is Tables I-III's
    c.cer.stride = 10  # t in frames (60 fps)
    c.cer.causal = True  # False: centred window (the paper's Eq. 1)
    c.cer.chunk = 64  # target frames per training sequence
    c.cer.train_every = 1  # > 1: every k-th training chunk only (:quick on a CPU)
    c.cer.stl = True  # one STL network per dimension (Table III)
    c.cer.paper = "creativeit"
    c.cer.report = "dev"  # unused with folds
    c.cer.folds = True  # leave-one-session-out
    c.cer.significance_resamples = 9999
    c.cer.figure_frames = 256
    c.cer.rolling = 100

    if a.quick:
        # A 2-core CPU run of about 8 minutes (12 systems x 5 folds; 3 epochs on every 4th
        # chunk took 20.6 min): N = 20 only, 2 epochs on every 8th training chunk (1024
        # frames per step, lr 1e-3); selection and scores use every frame.
        c.cer.windows = (20,)
        c.cer.train_every = 8
        c.train.epochs = 2
        c.train.patience = 0
        c.train.batch_size = 16
        c.hparams.learning_rate = 1e-3
    if a.smoke:
        c.data.preset = "creativeit_small"
        c.cer.variants = ("speech+body",)
        c.cer.variant_labels = ("Multimodal",)
        c.cer.losses = ("ccc", "mse")
        c.cer.windows = (6,)
        c.cer.stride = 2
        c.cer.chunk = 64
        c.cer.stl = False
        c.train.epochs = 1
        c.train.patience = 0
        c.train.log_every = 1
        c.train.checkpoint_every = 1
        c.train.eval_batch_size = 0
        c.hparams.learning_rate = 1e-3
        c.cer.significance_resamples = 99
        c.cer.figure_frames = 64
        c.cer.rolling = 20
    return c
