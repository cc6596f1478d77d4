"""From raw audio to a corpus every method reads: openSMILE feature streams + rating traces.

``python -m ddat_jax.features --wav-dir DIR --ratings-dir DIR --out ROOT --style STYLE`` turns
a folder of recordings and rater traces into a corpus for
:func:`ddat_jax.data.corpus.load_corpus`; see :mod:`ddat_jax.features.build` for the inputs
and outputs, :mod:`ddat_jax.features.extract` for the three styles (``avec2016``: eGeMAPS
functionals over 4 s / 6 s windows at 40 ms; ``sewa``: ComParE LLD mean and coefficient of
variation over 6 s at 100 ms; ``mfcc``: MFCC + energy + Δ + ΔΔ per frame) and
:mod:`ddat_jax.features.audio` for the audio policy (sample rate, channels, bad files).

Needs the optional extra: ``pip install 'ddat_jax[audio]'`` (opensmile, soundfile). This
package imports without it; extraction raises an :class:`ImportError` that says so.
"""

from ddat_jax.features.audio import Audio, AudioError, read_audio
from ddat_jax.features.build import MANIFEST, extract_corpus, extract_recording
from ddat_jax.features.extract import STYLES, Style, mean_cv

__all__ = [
    "MANIFEST",
    "STYLES",
    "Audio",
    "AudioError",
    "Style",
    "extract_corpus",
    "extract_recording",
    "mean_cv",
    "read_audio",
]
