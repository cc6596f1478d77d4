"""DDAT with the reconstruction-error (RE) auxiliary task on RECOLA (the DDAT paper, Sec. IV).

Systems: STL, MTL-RE (stage 1), DDAT-RE vector and DDAT-RE sum (stage 2), CL-DNN, CL-GRU.

Command (embedded corpus):
    python -m ddat_jax.main --config=configs/recola_re.py
Other modality / dimension, every table row, and the smoke variant (small corpus, tiny model):
    python -m ddat_jax.main --config=configs/recola_re.py:modality=video_geometric,dimension=valence
    python -m ddat_jax.main --config=configs/recola_re.py:aux=both
    python -m ddat_jax.main --config=configs/recola_re.py:smoke
Real AVEC 2016 copy:
    python -m ddat_jax.main --config=configs/recola_re.py --config.data.root=/path/to/AVEC2016

Expected runtime (audio → arousal, GRU 2 × 64): about 6 min on a 2-core CPU, independent
systems side by side on the two cores (plus about 45 s to generate the embedded corpus on first
use). Smoke: about 20 s on a 2-core CPU, mostly compilation.

Expected results on the embedded corpus (audio → arousal, seed 0, test CCC after
post-processing; see experiments/results/cpu2core_recola_re_audio_arousal): STL ≈ 0.73,
MTL-RE ≈ 0.72, DDAT-RE vector ≈ 0.72, DDAT-RE sum ≈ 0.74, CL-DNN ≈ 0.72, CL-GRU ≈ 0.74.
"""

from ddat_jax.config import ddat_config


def get_config(arg=None):
    return ddat_config(arg, aux="re", name="recola_re")
