"""Multi-task networks: a shared trunk with named linear heads, and a conv front end.

* :class:`MultiTaskRNN` — recurrent trunk (:class:`~ddat_jax.models.RNN`) + one linear
  head per task (emotion, reconstruction of the input, perception uncertainty, extra
  emotion dimensions), e.g. DDAT stage 1 and the soft-prediction BLSTM.
* :class:`DNN` — the same heads on a per-frame feed-forward trunk (the curriculum-learning
  baseline's 2 × 1024 DNN).
* :class:`ConvFrontEnd` — Conv1D + max-pool over each frame's "feature image" (CER-MTL).

Heads are given as ``{name: output_size}``; models return ``{name: [batch, time, size]}``
in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core import FrozenDict

from ddat_jax.models.rnn import RNN, torch_uniform

Array = jax.Array

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda x: x,
}


def get_activation(name: str) -> Callable[[Array], Array]:
    """Activation function by name (``ACTIVATIONS``); ValueError lists valid names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _freeze_heads(heads: Mapping[str, int]) -> FrozenDict:
    # A FrozenDict keeps the caller's order and makes the module hashable (jit static
    # arguments, bound `apply` methods).
    heads = FrozenDict(heads)
    if not heads:
        raise ValueError("heads must name at least one output, e.g. {'emotion': 1}")
    for name, size in heads.items():
        if not isinstance(name, str) or int(size) != size or size < 1:
            raise ValueError(f"head {name!r}: size must be a positive int, got {size!r}")
    return heads


def torch_dense(features: int, *, fan_in: int, init_scale: float | None, name: str) -> nn.Dense:
    """``nn.Dense`` initialised like ``torch.nn.Linear`` (or uniform(-a, a) if given)."""
    scale = init_scale if init_scale is not None else 1 / math.sqrt(fan_in)
    init = torch_uniform(scale)
    return nn.Dense(features, kernel_init=init, bias_init=init, name=name)


def apply_heads(
    trunk: Array,
    heads: Mapping[str, int],
    *,
    init_scale: float | None,
    mask: Array | None,
    prefix: str = "head_",
) -> dict[str, Array]:
    """Linear heads on a shared representation (call inside a compact method).

    Args:
      trunk: ``[batch, time, features]``.
      heads: ``{name: size}``.
      init_scale: see :func:`torch_dense`.
      mask: optional ``[batch, time]`` bool; head outputs are zero on padded frames.
      prefix: parameter-scope prefix of each head (``head_<name>``).

    Returns:
      ``{name: [batch, time, size]}``.
    """
    out = {}
    for name, size in heads.items():
        dense = torch_dense(size, fan_in=trunk.shape[-1], init_scale=init_scale, name=prefix + name)
        y = dense(trunk)
        if mask is not None:
            y = jnp.where(jnp.asarray(mask, bool)[..., None], y, 0.0)
        out[name] = y
    return out


class MultiTaskRNN(nn.Module):
    """Shared GRU/LSTM trunk with named linear heads.

    Attributes:
      cell: "gru" or "lstm".
      hidden_size: units per direction of the trunk.
      num_layers: stacked recurrent layers.
      bidirectional: bidirectional trunk (outputs ``2 * hidden_size`` per frame).
      heads: ``{name: output size}``, e.g. ``{"emotion": 1, "reconstruction": 88}``.
      backward: "custom" (cuDNN-style VJP) or "autodiff".
      init_scale: None → torch's defaults (RNN ±1/sqrt(H), heads ±1/sqrt(fan_in));
        a float ``a`` → every weight and bias uniform(-a, a).
      unroll: ``lax.scan`` unroll factor.
    """

    cell: str = "gru"
    hidden_size: int = 120
    num_layers: int = 1
    bidirectional: bool = False
    heads: Mapping[str, int] = FrozenDict({"emotion": 1})
    backward: str = "custom"
    init_scale: float | None = None
    unroll: int = 1

    def __post_init__(self):
        object.__setattr__(self, "heads", _freeze_heads(self.heads))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None) -> dict[str, Array]:
        """Maps ``[batch, time, features]`` to ``{name: [batch, time, size]}``.

        Args:
          x: inputs ``[batch, time, features]``.
          mask: optional ``[batch, time]`` bool, True on real frames (padding at the end);
            all outputs are zero on padded frames.
        """
        trunk = RNN(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            backward=self.backward,
            init_scale=self.init_scale,
            unroll=self.unroll,
            name="rnn",
        )(x, mask)
        return apply_heads(trunk, self.heads, init_scale=self.init_scale, mask=mask)


class DNN(nn.Module):
    """Per-frame feed-forward network with named linear heads.

    Attributes:
      hidden_sizes: widths of the hidden layers, e.g. ``(1024, 1024)``.
      heads: ``{name: output size}``.
      activation: hidden activation name (see ``ACTIVATIONS``); the curriculum-learning
        paper does not name one, ReLU is our default.
      init_scale: None → torch ``nn.Linear`` init; a float ``a`` → uniform(-a, a).
    """

    hidden_sizes: Sequence[int] = (1024, 1024)
    heads: Mapping[str, int] = FrozenDict({"emotion": 1})
    activation: str = "relu"
    init_scale: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "heads", _freeze_heads(self.heads))
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None) -> dict[str, Array]:
        """Maps ``[batch, time, features]`` (or ``[batch, features]``) to ``{name: [..., size]}``.

        Args:
          x: inputs ``[..., features]``; every frame is processed independently.
          mask: optional ``[batch, time]`` bool; outputs are zero on padded frames.
        """
        act = get_activation(self.activation)
        h = x
        for i, width in enumerate(self.hidden_sizes):
            dense = torch_dense(
                width, fan_in=h.shape[-1], init_scale=self.init_scale, name=f"hidden_{i}"
            )
            h = act(dense(h))
        return apply_heads(h, self.heads, init_scale=self.init_scale, mask=mask)


class ConvFrontEnd(nn.Module):
    """Conv1D + max-pool over each frame's "feature image" (CER-MTL).

    Each frame carries ``window`` feature vectors sampled around it; the convolution runs
    along that window axis with the features as channels, then max-pools and flattens.

    Attributes:
      features: convolution filters (25 in the paper).
      kernel_size: convolution kernel along the window axis (3).
      pool: max-pool size and stride along the window axis (2).
      padding: "VALID" (Keras' Conv1D default, our reading) or "SAME".
      activation: activation after the convolution; the paper does not name one, ReLU is
        our default ("linear" for none).
    """

    features: int = 25
    kernel_size: int = 3
    pool: int = 2
    padding: str = "VALID"
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Maps ``[batch, time, window, channels]`` to ``[batch, time, out_window * features]``.

        ``out_window = (window - kernel_size + 1) // pool`` for "VALID" padding and
        ``window // pool`` for "SAME".
        """
        batch, time, window, channels = x.shape
        h = x.reshape(batch * time, window, channels)
        h = nn.Conv(self.features, (self.kernel_size,), padding=self.padding, name="conv")(h)
        h = get_activation(self.activation)(h)
        h = nn.max_pool(h, (self.pool,), strides=(self.pool,), padding="VALID")
        return h.reshape(batch, time, -1)
