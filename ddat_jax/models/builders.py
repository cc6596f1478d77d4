"""Model lookup by name: ``MODELS`` and :func:`build_model`.

Models never read the config; a config-driven builder calls
``build_model(config.model.name, **config.model.kwargs)``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from ddat_jax.models.cer import FeatureImageCER
from ddat_jax.models.fusion import ImplicitFusionRNN
from ddat_jax.models.multitask import DNN, ConvFrontEnd, MultiTaskRNN
from ddat_jax.models.rnn import RNN
from ddat_jax.models.sew import SEW

MODELS: dict[str, type[nn.Module]] = {
    "rnn": RNN,
    "mtl_rnn": MultiTaskRNN,
    "dnn": DNN,
    "conv_front_end": ConvFrontEnd,
    "cer": FeatureImageCER,
    "sew": SEW,
    "implicit_fusion_rnn": ImplicitFusionRNN,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiates ``MODELS[name](**kwargs)``.

    Args:
      name: a key of ``MODELS``.
      **kwargs: the model's attributes, e.g. ``hidden_size=120, num_layers=3``.

    Raises:
      ValueError: for an unknown name (listing the valid ones) or unknown attributes.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {sorted(MODELS)}")
    try:
        return MODELS[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for model {name!r}: {e}") from e
