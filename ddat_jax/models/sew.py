"""SEW — *Stronger Enhancing Weaker* (Rajan, Brutti & Cavallaro, ICASSP 2021), per frame.

Four modules on two views of the same frames, the weaker modality ``M_w`` and the
stronger one ``M_s``::

    m_sw = W_E(M_w)        inter-modal translator encoder (kept for testing)
    Ŝ_sw = S_D1(m_sw)      its decoder to the stronger modality's features
    m_ss = S_E(M_s)        intra-modal autoencoder on the stronger modality
    Ŝ_s  = S_D2(m_ss)
    ŷ    = R(m_sw)         regressor: 4 GRU layers × 120 on a sequence of length 1 + linear

Encoders are linear layers with ``tanh`` between layers (none after the last: the latent
is linear); a decoder mirrors its modality's hidden layers and ends with the modality's
feature count (the paper: video-geometric encoder [512, 256, 128], decoder
[256, 512, 632]; audio [108, 128] / [108, 88]; appearance one linear layer of 168).

**Test-time predictor.** ``ŷ`` depends on ``M_w`` only: called with
``{"weak": x}`` the model runs ``W_E`` and ``R`` alone (the deployed system, which never
needs the stronger modality); called with ``{"weak": x, "strong": s}`` it also returns the
training outputs ``latent_w``, ``latent_s``, ``strong_from_weak`` (``Ŝ_sw``) and
``strong_from_strong`` (``Ŝ_s``) for the SEW loss. ``latent=0`` is the unimodal
baseline of the paper's Table 1: ``R`` directly on the features.

**Per frame.** Every frame is independent (the paper's GRUs run on sequences of length
1): inputs ``[N, T, F]`` give outputs ``[N, T, ...]`` frame by frame, with no recurrence
over ``T``. With ``h0 = 0`` a torch GRU layer is ``r = σ(W_ir x + b_ir + b_hr)``,
``z = σ(W_iz x + b_iz + b_hz)``, ``n = tanh(W_in x + b_in + r ⊙ b_hn)``,
``h = (1 − z) ⊙ n``: the recurrent weights ``W_h*`` multiply the zero state and never
contribute, so they are not created (torch's ``b_hh`` is kept; names and shapes follow
torch's ``weight_ih_l{k}`` ``[3H, in]``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, gates
``r, z, n``, init ``uniform(±1/√H)`` as torch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

# torch.nn.Linear's weight init: uniform(±1/sqrt(fan_in)).
_torch_linear = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _uniform(scale: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class FrameGRU(nn.Module):
    """``layers`` torch-GRU layers of ``units`` on sequences of length 1, then linear.

    ``[..., F] -> [..., outputs]``; each leading position is an independent frame.
    """

    layers: int = 4
    units: int = 120
    outputs: int = 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h, units = x, self.units
        init = _uniform(1.0 / math.sqrt(units))
        for k in range(self.layers):
            w = self.param(f"weight_ih_l{k}", init, (3 * units, h.shape[-1]))
            b_ih = self.param(f"bias_ih_l{k}", init, (3 * units,))
            b_hh = self.param(f"bias_hh_l{k}", init, (3 * units,))
            gi = h @ w.T + b_ih
            r = jax.nn.sigmoid(gi[..., :units] + b_hh[:units])
            z = jax.nn.sigmoid(gi[..., units : 2 * units] + b_hh[units : 2 * units])
            n = jnp.tanh(gi[..., 2 * units :] + r * b_hh[2 * units :])
            h = (1.0 - z) * n
        return nn.Dense(self.outputs, kernel_init=_torch_linear, name="linear")(h)


class MLP(nn.Module):
    """Linear layers of ``sizes`` with ``tanh`` between them (none after the last).

    ``[..., F] -> [..., sizes[-1]]``.
    """

    sizes: Sequence[int]

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for i, size in enumerate(self.sizes):
            if i:
                x = jnp.tanh(x)
            x = nn.Dense(int(size), kernel_init=_torch_linear, name=f"linear_{i}")(x)
        return x


def _views(inputs) -> tuple[Array, Array | None]:
    if isinstance(inputs, Mapping):
        if "weak" not in inputs:
            raise ValueError(f"SEW inputs need a 'weak' view; got views {sorted(inputs)}")
        return inputs["weak"], inputs.get("strong")
    return inputs, None


class SEW(nn.Module):
    """The SEW network (module docstring); ``latent=0``: the unimodal regressor.

    Attributes:
      weak_hidden: hidden sizes of ``W_E`` before the latent layer (audio ``(108,)``,
        video-geometric ``(512, 256)``, appearance ``()``).
      strong_hidden: the same for ``S_E``; the decoders use them reversed.
      latent: latent size ``d`` (128; 168 with appearance); 0: no encoder (unimodal).
      gru_layers, gru_units: the regressor ``R``.

    Call: ``inputs`` = ``{"weak": [N, T, Fw]}`` (test time) or
    ``{"weak": ..., "strong": [N, T, Fs]}`` (training), or a bare weak array; ``mask`` is
    accepted for the engine's interface and unused (every frame is independent).
    Returns ``{"emotion": [N, T, 1]}`` plus, with a latent, ``latent_w [N, T, d]``, and
    with the strong view ``latent_s [N, T, d]``, ``strong_from_weak [N, T, Fs]``,
    ``strong_from_strong [N, T, Fs]``.
    """

    weak_hidden: Sequence[int] = ()
    strong_hidden: Sequence[int] = ()
    latent: int = 128
    gru_layers: int = 4
    gru_units: int = 120

    @nn.compact
    def __call__(self, inputs, mask: Array | None = None) -> dict[str, Array]:
        del mask
        weak, strong = _views(inputs)
        regressor = FrameGRU(self.gru_layers, self.gru_units, 1, name="R")
        if self.latent == 0:
            return {"emotion": regressor(weak)}
        m_sw = MLP((*self.weak_hidden, self.latent), name="W_E")(weak)
        out = {"emotion": regressor(m_sw), "latent_w": m_sw}
        if strong is None:
            return out
        m_ss = MLP((*self.strong_hidden, self.latent), name="S_E")(strong)
        decoder = (*reversed(tuple(self.strong_hidden)), strong.shape[-1])
        out["latent_s"] = m_ss
        out["strong_from_weak"] = MLP(decoder, name="S_D1")(m_sw)
        out["strong_from_strong"] = MLP(decoder, name="S_D2")(m_ss)
        return out


__all__ = ["MLP", "SEW", "FrameGRU"]
