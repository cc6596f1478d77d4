"""ddat_jax: Dynamic Difficulty Awareness Training and companion methods in JAX/Flax.

Modules by kind (see README): ``data`` (readers, embedded corpus, preprocessing),
``models``, ``losses``, ``metrics``, ``stats``, ``train``.
"""

__version__ = "0.1.0"
