"""Implicit fusion (Han et al.): modality-specific recurrent blocks into one shared block.

``SP_main`` and ``SP_aux`` map each modality's features into the same ``K``-dimensional
space; the shared block ``SH`` (a recurrent stack plus a linear head) maps either
representation to a prediction. The two modalities pass through ``SH`` *separately*
(never concatenated), so the main modality's prediction never depends on the auxiliary
modality's features:

    p_main = SH(SP_main(f_main)),   p_aux = SH(SP_aux(f_aux))

Training minimises ``L(p_main, y) + α · L(p_aux, y)``; at dev/test time only
:meth:`ImplicitFusionRNN.predict_main` (or :func:`predict_main`) is used, which takes the
main modality alone.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddat_jax.models.multitask import torch_dense
from ddat_jax.models.rnn import RNN

Array = jax.Array
VIEWS = ("main", "aux")


class ImplicitFusionRNN(nn.Module):
    """``SP_main``, ``SP_aux`` (GRU/LSTM stacks) and the shared ``SH`` (stack + linear head).

    Inputs are two views ``{"main": [N, T, M], "aux": [N, T, M']}``; outputs are
    ``{"main": [N, T, outputs], "aux": [N, T, outputs]}`` (zero on padded frames).

    Attributes:
      cell: "gru" or "lstm".
      hidden_size: units of every recurrent layer (the shared space has this size, K).
      specific_layers: layers of each modality-specific block.
      shared_layers: recurrent layers of the shared block (before its linear head).
      outputs: size of the head (1 for a regression, C class logits for a classifier).
      init_scale: None → torch's defaults; a float ``a`` → every weight uniform(-a, a).
      backward: "custom" (cuDNN-style VJP) or "autodiff".
      unroll: ``lax.scan`` unroll factor.
    """

    cell: str = "gru"
    hidden_size: int = 100
    specific_layers: int = 2
    shared_layers: int = 2
    outputs: int = 1
    init_scale: float | None = None
    backward: str = "custom"
    unroll: int = 1

    def setup(self):
        for name in ("hidden_size", "specific_layers", "outputs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"ImplicitFusionRNN.{name} must be >= 1; got {getattr(self, name)}"
                )
        if int(self.shared_layers) < 0:
            raise ValueError(
                f"ImplicitFusionRNN.shared_layers must be >= 0; got {self.shared_layers}"
            )
        rnn = lambda layers, name: RNN(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=layers,
            init_scale=self.init_scale,
            backward=self.backward,
            unroll=self.unroll,
            name=name,
        )
        self.sp_main = rnn(self.specific_layers, "sp_main")
        self.sp_aux = rnn(self.specific_layers, "sp_aux")
        self.sh_rnn = rnn(self.shared_layers, "sh_rnn") if self.shared_layers else None
        self.sh_head = torch_dense(
            self.outputs, fan_in=self.hidden_size, init_scale=self.init_scale, name="sh_head"
        )

    def shared(self, r: Array, mask: Array | None) -> Array:
        """``SH``: ``[N, T, K]`` → ``[N, T, outputs]`` (zero on padded frames)."""
        h = self.sh_rnn(r, mask) if self.sh_rnn is not None else r
        y = self.sh_head(h)
        if mask is not None:
            y = jnp.where(jnp.asarray(mask, bool)[..., None], y, 0.0)
        return y

    def predict_main(self, main: Array, mask: Array | None = None) -> dict[str, Array]:
        """The dev/test predictor: ``{"main": SH(SP_main(main))}`` from ``[N, T, M]`` alone."""
        return {"main": self.shared(self.sp_main(main, mask), mask)}

    def __call__(self, inputs, mask: Array | None = None) -> dict[str, Array]:
        """``{"main": SH(SP_main(f_main)), "aux": SH(SP_aux(f_aux))}`` (training outputs).

        Args:
          inputs: ``{"main": [N, T, M], "aux": [N, T, M']}``.
          mask: optional ``[N, T]`` bool, True on real frames.
        """
        if not isinstance(inputs, dict) and not hasattr(inputs, "keys"):
            raise ValueError(
                "ImplicitFusionRNN takes two views {'main': [N, T, M], 'aux': [N, T, M']}; "
                f"got {type(inputs).__name__}"
            )
        missing = [v for v in VIEWS if v not in inputs]
        if missing:
            raise ValueError(
                f"ImplicitFusionRNN: inputs lack the view(s) {missing}; got {list(inputs)}"
            )
        out = self.predict_main(inputs["main"], mask)
        out["aux"] = self.shared(self.sp_aux(inputs["aux"], mask), mask)
        return out


def predict_main(model: ImplicitFusionRNN, params, main, mask=None, batch_size: int = 0) -> dict:
    """Applies the main-modality predictor to a partition, ``batch_size`` sequences at a time.

    Jittable (``batch_size`` static); only ``main`` is an argument, so the auxiliary
    modality cannot be read.

    Args:
      model: the module; params: its parameters.
      main: ``[N, T, M]`` main-modality features.
      mask: ``[N, T]`` bool (None: all valid).
      batch_size: sequences per forward pass; ``<= 0``: all at once.

    Returns:
      ``{"main": [N, T, outputs]}``.
    """
    main = jnp.asarray(main)
    n = main.shape[0]
    mask = jnp.ones(main.shape[:2], bool) if mask is None else jnp.asarray(mask, bool)
    apply = lambda x, m: model.apply(
        {"params": params}, x, m, method=ImplicitFusionRNN.predict_main
    )
    if batch_size <= 0 or batch_size >= n:
        return apply(main, mask)
    num = math.ceil(n / batch_size)
    pad = num * batch_size - n

    def split(a):
        a = jnp.pad(a, ((0, pad),) + ((0, 0),) * (a.ndim - 1))
        return a.reshape(num, batch_size, *a.shape[1:])

    out = jax.lax.map(lambda a: apply(*a), (split(main), split(mask)))
    return jax.tree.map(lambda o: o.reshape(num * batch_size, *o.shape[2:])[:n], out)
