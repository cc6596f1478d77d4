"""Baselines of the DDAT paper on RECOLA: single-task GRU (STL) and curriculum learning.

Command (embedded corpus):
    python -m ddat_jax.main --config=configs/recola_baseline.py
    python -m ddat_jax.main --config=configs/recola_baseline.py:smoke
"""

from ddat_jax.config import ddat_config


def get_config(arg=None):
    return ddat_config(arg, aux="none", name="recola_baseline")
