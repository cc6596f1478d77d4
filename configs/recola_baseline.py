"""Baselines of the DDAT paper on RECOLA: single-task GRU (STL) and curriculum learning.

Systems: STL, CL-DNN (2 × 1024 DNN, 5 PU-sorted parts, easy → hard), CL-GRU.

Command (embedded corpus):
    python -m ddat_jax.main --config=configs/recola_baseline.py
    python -m ddat_jax.main --config=configs/recola_baseline.py:smoke

Expected runtime (audio → arousal): about 4 min on a 2-core CPU. Expected results on the
embedded corpus (audio → arousal, seed 0, test CCC after post-processing): STL ≈ 0.73,
CL-DNN ≈ 0.72, CL-GRU ≈ 0.74 (bit-identical to the same systems of the recola_re run).
"""

from ddat_jax.config import ddat_config


def get_config(arg=None):
    return ddat_config(arg, aux="none", name="recola_baseline")
