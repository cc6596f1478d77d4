"""DDAT with the reconstruction-error (RE) auxiliary task on RECOLA (METHODS.md §1).

Command (embedded corpus):
    python -m ddat_jax.main --config=configs/recola_re.py
Other modality / dimension, and the smoke variant (small corpus, tiny training, < 1 min):
    python -m ddat_jax.main --config=configs/recola_re.py:modality=video_geometric,dimension=valence
    python -m ddat_jax.main --config=configs/recola_re.py:smoke
Real AVEC 2016 copy:
    python -m ddat_jax.main --config=configs/recola_re.py --config.data.root=/path/to/AVEC2016
"""

from ddat_jax.config import ddat_config


def get_config(arg=None):
    return ddat_config(arg, aux="re", name="recola_re")
