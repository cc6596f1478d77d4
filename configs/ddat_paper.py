"""The whole DDAT paper (Zhang et al., Sec. IV): every system of Tables I/II for the three
feature sets (audio-eGeMAPS, video-appearance, video-geometric) × arousal and valence, then
Tables I–IV (also "paper vs here") and Figures 2–4 across them.

Systems per cell: DNN, CL-DNN, STL (baseline), CL-GRU, MTL-RE, MTL-PU, DDAT-RE vector,
DDAT-RE sum, DDAT-PU. Each cell is one DDAT experiment in ``<workdir>/cells/<fs>-<dim>/``;
a re-run skips every complete, verified cell.

Commands (embedded corpus):
    python -m ddat_jax.main --config=configs/ddat_paper.py            # full protocol
    python -m ddat_jax.main --config=configs/ddat_paper.py:quick      # CPU-sized
    python -m ddat_jax.main --config=configs/ddat_paper.py:smoke      # seconds per cell
    python -m ddat_jax.main --config=configs/ddat_paper.py:arch=paper # force the grid
Real AVEC 2016 copy (PU and curriculum need ratings_individual/):
    python -m ddat_jax.main --config=configs/ddat_paper.py --config.data.root=/path/to/AVEC2016

Arguments: ``quick``, ``smoke``, ``arch=auto|paper|config`` (``auto``: the paper's grid
{1,3,5,7,9} layers × {40,80,120} units, best on dev per system and feature set, on an
accelerator; ``model.arch`` on CPU), ``seed=N``, ``preset=recola|small``.
"""

import ml_collections

from ddat_jax.config import ddat_config, parse_arg, variant_of

DEFAULTS = dict(quick=False, smoke=False, arch="auto", seed=0, preset="recola")


def get_config(arg=None):
    a = parse_arg(arg, **DEFAULTS)
    inner = f"seed={a.seed},preset={a.preset}" + (",smoke" if a.smoke else "")
    c = ddat_config(inner, aux="paper", name="ddat_paper")
    c.method = "ddat_paper"
    c.variant = variant_of(a, **DEFAULTS)
    c.paper = ml_collections.ConfigDict()
    c.paper.feature_sets = ("audio", "video_appearance", "video_geometric")
    c.paper.dimensions = ("arousal", "valence")
    c.paper.arch = a.arch  # "auto" | "paper" | "config" (model.arch)
    if a.quick and not a.smoke:
        # CPU-sized: one small architecture, fewer epochs, a shorter curriculum.
        c.model.arch = ((1, 32),)
        c.train.epochs = 12
        c.train.patience = 4
        c.train.checkpoint_every = 4
        c.train.log_every = 2
        c.ddat.cl_parts = 3
        c.ddat.cl_epochs_per_stage = 3
        c.ddat.cl_dnn_hidden = (256, 256)
        c.ddat.significance_resamples = 999
        if a.arch == "auto":
            c.paper.arch = "config"
    if a.smoke:
        c.paper.arch = "config" if a.arch == "auto" else a.arch
        c.train.epochs = 2
        c.train.checkpoint_every = 2
        c.ddat.cl_parts = 2
        c.ddat.cl_epochs_per_stage = 1
    return c
