"""Recurrent and feed-forward models (Flax linen)."""

from ddat_jax.models.rnn import RNN, reverse_padded, rnn_apply

__all__ = ["RNN", "reverse_padded", "rnn_apply"]
