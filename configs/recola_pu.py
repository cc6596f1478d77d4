"""DDAT with the perception-uncertainty (PU) auxiliary task on RECOLA (METHODS.md §1).

Command (embedded corpus):
    python -m ddat_jax.main --config=configs/recola_pu.py
Other modality / dimension, and the smoke variant (small corpus, tiny training, < 1 min):
    python -m ddat_jax.main --config=configs/recola_pu.py:modality=video_geometric,dimension=valence
    python -m ddat_jax.main --config=configs/recola_pu.py:smoke
Real AVEC 2016 copy:
    python -m ddat_jax.main --config=configs/recola_pu.py --config.data.root=/path/to/AVEC2016
"""

from ddat_jax.config import ddat_config


def get_config(arg=None):
    return ddat_config(arg, aux="pu", name="recola_pu")
