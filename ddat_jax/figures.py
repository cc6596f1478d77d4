"""Deprecated location: the figures live in :mod:`ddat_jax.evaluation.figures`.

Kept so that the DDAT pipeline keeps working until it moves to the evaluation layer.
"""

from ddat_jax.evaluation.figures import plot_difficulty, plot_predictions

__all__ = ["plot_difficulty", "plot_predictions"]
