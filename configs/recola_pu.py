"""DDAT with the perception-uncertainty (PU) auxiliary task on RECOLA (the DDAT paper, Sec. IV).

Systems: STL, MTL-PU (stage 1), DDAT-PU (stage 2 on the predicted PU), CL-DNN, CL-GRU.

Command (embedded corpus):
    python -m ddat_jax.main --config=configs/recola_pu.py
Other modality / dimension, and the smoke variant (small corpus, tiny model):
    python -m ddat_jax.main --config=configs/recola_pu.py:modality=video_geometric,dimension=valence
    python -m ddat_jax.main --config=configs/recola_pu.py:smoke
Real AVEC 2016 copy (PU needs ratings_individual/):
    python -m ddat_jax.main --config=configs/recola_pu.py --config.data.root=/path/to/AVEC2016

Expected runtime (audio → arousal, GRU 2 × 64): about 4.5 min on a 2-core CPU.

Expected results on the embedded corpus (audio → arousal, seed 0, test CCC after
post-processing; see experiments/results/cpu2core_recola_pu_audio_arousal): STL ≈ 0.73,
MTL-PU ≈ 0.74, DDAT-PU ≈ 0.73, CL-DNN ≈ 0.72, CL-GRU ≈ 0.74.
"""

from ddat_jax.config import ddat_config


def get_config(arg=None):
    return ddat_config(arg, aux="pu", name="recola_pu")
