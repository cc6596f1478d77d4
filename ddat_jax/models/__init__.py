"""Recurrent and feed-forward models (Flax linen)."""
