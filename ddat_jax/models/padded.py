"""Padded multi-task RNN: many architectures as one parameter shape, for vmapped grids.

The DDAT architecture grid ({1, 3, 5, 7, 9} layers × {40, 80, 120} units) has 15
parameter shapes, so it cannot be one ``jax.vmap``. :class:`PaddedMultiTaskRNN` gives
every member the shape of the largest one (``max_layers`` × ``max_hidden``) and reads
the member's real shape from a parameter ``arch = [layers, units]`` (float32, never
trained: it enters the network through ``stop_gradient``, so its gradient is exactly 0
and Adam/SGD leave it unchanged; it is 1-D, so the engine's L2 skips it).

Width: every weight and bias is multiplied by the member's unit mask
``u = [i < units for i in range(max_hidden)]`` before use (rows of the gate blocks and,
for recurrent weights and the inputs of layers ≥ 1 and of the heads, the columns). With
``h0 = 0`` an inactive unit then has ``r = z = 1/2`` and ``n = 0``, so it stays at
exactly 0 (LSTM: ``g = 0``, ``c = 0``, ``h = 0``), and by the chain rule through the
mask product its raw weights receive exactly zero gradient; initialised at 0 (see
:func:`embed_params`), L2 and the optimizer never move them.

Depth: layer ``l`` with ``l >= layers`` passes its input through
(``h = where(l < layers, layer(h), h)``) and its weights are masked to zero too, so
they get zero gradient. Pass-through needs the input size of layers ≥ 1 to equal the
hidden size, which holds because all layers have ``max_hidden`` units; layer 0 always
runs because ``layers >= 1``.

So a padded member computes the same loss, the same gradients (zero-padded) and, after
training with the engine, the same parameters as the unpadded
:class:`~ddat_jax.models.MultiTaskRNN` whose parameters were embedded with
:func:`embed_params` — up to float summation order. ``tests/test_padded.py`` checks it.

Only unidirectional trunks are supported (the DDAT grid's); the cost of a padded member
is that of the largest shape, see ``ddat_jax.train.grid.padding.group_shapes``.

The grid finds padding through :data:`PADDERS` (``{model class: padder}``), so it does
not depend on this model: a padder ``(model, shapes) -> Padding`` returns the padded
module and the functions that embed a member's parameters and extract them back.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from ddat_jax.models.multitask import MultiTaskRNN
from ddat_jax.models.rnn import num_gates, param_names, rnn_direction, torch_uniform

Array = jax.Array
PyTree = object

ARCH = "arch"


def unit_mask(units: Array, max_hidden: int) -> Array:
    """``[max_hidden]`` float32, 1 for the first ``units`` units, 0 beyond."""
    return (jnp.arange(max_hidden) < units).astype(jnp.float32)


class PaddedMultiTaskRNN(nn.Module):
    """A :class:`~ddat_jax.models.MultiTaskRNN` padded to ``max_layers`` × ``max_hidden``.

    Parameters are those of ``MultiTaskRNN(num_layers=max_layers,
    hidden_size=max_hidden)`` (``rnn/weight_ih_l0``…, ``head_<name>/kernel``…) plus
    ``arch`` ``[2]`` = ``(layers, units)`` of the member. A fresh ``init`` sets
    ``arch = (max_layers, max_hidden)``; build members with :func:`embed_params`.

    Attributes:
      cell: "gru" or "lstm".
      max_layers: depth of the padded stack.
      max_hidden: units per layer of the padded stack.
      heads: ``{name: output size}``.
      backward: "custom" (cuDNN-style VJP) or "autodiff".
      init_scale: as in ``MultiTaskRNN`` (used only by a fresh ``init``).
      unroll: ``lax.scan`` unroll factor.
    """

    cell: str = "gru"
    max_layers: int = 9
    max_hidden: int = 120
    heads: Mapping[str, int] = FrozenDict({"emotion": 1})
    backward: str = "custom"
    init_scale: float | None = None
    unroll: int = 1

    def __post_init__(self):
        object.__setattr__(self, "heads", FrozenDict(self.heads))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None) -> dict[str, Array]:
        """Maps ``[batch, time, features]`` to ``{name: [batch, time, size]}``.

        Args:
          x: inputs ``[batch, time, features]``.
          mask: optional ``[batch, time]`` bool, True on real frames (padding at the end);
            all outputs are zero on padded frames.
        """
        hmax, lmax = self.max_hidden, self.max_layers
        arch = self.param(ARCH, lambda *_: jnp.array([lmax, hmax], jnp.float32), (2,), jnp.float32)
        arch = jax.lax.stop_gradient(arch)
        layers, units = arch[0], arch[1]
        u = unit_mask(units, hmax)
        trunk = _PaddedStack(
            cell=self.cell,
            max_layers=lmax,
            max_hidden=hmax,
            backward=self.backward,
            init_scale=self.init_scale,
            unroll=self.unroll,
            name="rnn",
        )(x, mask, u, layers)
        out = {}
        for name, size in self.heads.items():
            scale = self.init_scale if self.init_scale is not None else 1 / math.sqrt(hmax)
            init = torch_uniform(scale)
            dense = _MaskedDense(size, init=init, name="head_" + name)
            y = dense(trunk, u)
            if mask is not None:
                y = jnp.where(jnp.asarray(mask, bool)[..., None], y, 0.0)
            out[name] = y
        return out


class _MaskedDense(nn.Module):
    features: int
    init: object

    @nn.compact
    def __call__(self, x, in_mask):
        kernel = self.param("kernel", self.init, (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", self.init, (self.features,), jnp.float32)
        return x @ (kernel * in_mask[:, None]) + bias


class _PaddedStack(nn.Module):
    cell: str
    max_layers: int
    max_hidden: int
    backward: str
    init_scale: float | None
    unroll: int

    @nn.compact
    def __call__(self, x, mask, u, layers):
        g = num_gates(self.cell)
        hmax = self.max_hidden
        scale = self.init_scale if self.init_scale is not None else 1 / math.sqrt(hmax)
        init = torch_uniform(scale)
        h = jnp.swapaxes(x, 0, 1)
        if mask is None:
            m = jnp.ones(h.shape[:2] + (1,), h.dtype)
        else:
            m = jnp.swapaxes(jnp.asarray(mask, bool), 0, 1)[..., None].astype(h.dtype)
        in_size = x.shape[-1]
        for layer in range(self.max_layers):
            names = param_names(layer, False)
            shapes = ((g * hmax, in_size), (g * hmax, hmax), (g * hmax,), (g * hmax,))
            raw = [self.param(n, init, s, jnp.float32) for n, s in zip(names, shapes, strict=True)]
            active = jnp.asarray(layer, jnp.float32) < layers
            rows = jnp.tile(u, g) * active.astype(jnp.float32)  # [G * H]
            cols_in = u if layer > 0 else jnp.ones((in_size,), jnp.float32)
            masked = {
                names[0]: raw[0] * rows[:, None] * cols_in[None, :],
                names[1]: raw[1] * rows[:, None] * u[None, :],
                names[2]: raw[2] * rows,
                names[3]: raw[3] * rows,
            }
            out = rnn_direction(
                masked,
                h,
                m,
                cell=self.cell,
                layer=layer,
                reverse=False,
                backward=self.backward,
                unroll=self.unroll,
            )
            h = out if layer == 0 else jnp.where(active, out, h)
            in_size = hmax
        return jnp.swapaxes(h, 0, 1)


def embed_params(params: PyTree, *, max_layers: int, max_hidden: int, cell: str = "gru") -> dict:
    """Embeds an unpadded ``MultiTaskRNN``'s parameters into the padded layout.

    Args:
      params: ``{"rnn": {weight_ih_l0: [G*H, F], ...}, "head_<name>": {"kernel": [H, size],
        "bias": [size]}}`` of a unidirectional ``MultiTaskRNN`` with ``L`` layers × ``H``.
      max_layers: padded depth (``>= L``).
      max_hidden: padded width (``>= H``).
      cell: "gru" or "lstm" (gate count).

    Returns:
      Parameters of ``PaddedMultiTaskRNN(max_layers, max_hidden)``: each gate block of
      ``H`` rows placed at the top of a block of ``max_hidden`` rows, zeros elsewhere;
      layers ``L … max_layers - 1`` all zero; ``arch = [L, H]``.
    """
    g = num_gates(cell)
    rnn = {k: np.asarray(v, np.float32) for k, v in dict(params["rnn"]).items()}
    hidden = rnn["weight_hh_l0"].shape[1]
    layers = sum(1 for k in rnn if k.startswith("weight_ih_l") and not k.endswith("_reverse"))
    if any(k.endswith("_reverse") for k in rnn):
        raise ValueError("embed_params supports unidirectional trunks only")
    if layers > max_layers or hidden > max_hidden:
        raise ValueError(
            f"model of {layers} layers x {hidden} units does not fit in {max_layers} x {max_hidden}"
        )
    in_size = rnn["weight_ih_l0"].shape[1]
    out_rnn = {}
    for layer in range(max_layers):
        names = param_names(layer, False)
        cols = in_size if layer == 0 else max_hidden
        w_ih = np.zeros((g * max_hidden, cols), np.float32)
        w_hh = np.zeros((g * max_hidden, max_hidden), np.float32)
        b_ih = np.zeros((g * max_hidden,), np.float32)
        b_hh = np.zeros((g * max_hidden,), np.float32)
        if layer < layers:
            for k in range(g):
                dst = slice(k * max_hidden, k * max_hidden + hidden)
                src = slice(k * hidden, (k + 1) * hidden)
                src_cols = in_size if layer == 0 else hidden
                w_ih[dst, :src_cols] = rnn[names[0]][src]
                w_hh[dst, :hidden] = rnn[names[1]][src]
                b_ih[dst] = rnn[names[2]][src]
                b_hh[dst] = rnn[names[3]][src]
        out_rnn.update(dict(zip(names, (w_ih, w_hh, b_ih, b_hh), strict=True)))
    out = {"rnn": out_rnn, ARCH: np.array([layers, hidden], np.float32)}
    for name, head in params.items():
        if name == "rnn":
            continue
        kernel = np.zeros((max_hidden, head["kernel"].shape[1]), np.float32)
        kernel[:hidden] = np.asarray(head["kernel"])
        out[name] = {"kernel": kernel, "bias": np.asarray(head["bias"], np.float32)}
    return jax.tree.map(jnp.asarray, out)


def extract_params(padded: PyTree, *, cell: str = "gru") -> dict:
    """Inverse of :func:`embed_params`: the unpadded parameters of one member.

    Args:
      padded: parameters of a :class:`PaddedMultiTaskRNN` (no member axis).
      cell: "gru" or "lstm".

    Returns:
      ``MultiTaskRNN(num_layers=L, hidden_size=H)`` parameters, ``(L, H) = arch``.
    """
    g = num_gates(cell)
    layers, hidden = (int(round(float(v))) for v in np.asarray(padded[ARCH]))
    rnn = {k: np.asarray(v) for k, v in dict(padded["rnn"]).items()}
    hmax = rnn["weight_hh_l0"].shape[1]
    rows = np.concatenate([np.arange(k * hmax, k * hmax + hidden) for k in range(g)])
    out_rnn = {}
    for layer in range(layers):
        names = param_names(layer, False)
        cols = slice(None) if layer == 0 else slice(0, hidden)
        out_rnn[names[0]] = rnn[names[0]][rows][:, cols]
        out_rnn[names[1]] = rnn[names[1]][rows][:, :hidden]
        out_rnn[names[2]] = rnn[names[2]][rows]
        out_rnn[names[3]] = rnn[names[3]][rows]
    out = {"rnn": out_rnn}
    for name, head in padded.items():
        if name in ("rnn", ARCH):
            continue
        out[name] = {
            "kernel": np.asarray(head["kernel"])[:hidden],
            "bias": np.asarray(head["bias"]),
        }
    return jax.tree.map(jnp.asarray, out)


class Padding(NamedTuple):
    """How to run several architectures of one model class as one parameter shape.

    Attributes:
      model: the padded module (holds every shape of the group).
      embed: ``params -> padded params`` of one member (an unpadded model's parameters).
      extract: ``padded params -> params`` of one member (inverse of ``embed``).
    """

    model: Any
    embed: Callable[[PyTree], PyTree]
    extract: Callable[[PyTree], PyTree]


def pad_multitask_rnn(model: MultiTaskRNN, shapes: Sequence[tuple[int, int]]) -> Padding:
    """The :class:`PaddedMultiTaskRNN` padding of a unidirectional ``MultiTaskRNN``.

    Args:
      model: the model whose cell, heads, backward, init and unroll are copied.
      shapes: the group's ``(layers, units)``.
    """
    if model.bidirectional:
        raise ValueError("architecture padding needs a unidirectional MultiTaskRNN")
    layers = max(int(s[0]) for s in shapes)
    hidden = max(int(s[1]) for s in shapes)
    padded = PaddedMultiTaskRNN(
        cell=model.cell,
        max_layers=layers,
        max_hidden=hidden,
        heads=dict(model.heads),
        backward=model.backward,
        init_scale=model.init_scale,
        unroll=model.unroll,
    )
    embed = functools.partial(embed_params, max_layers=layers, max_hidden=hidden, cell=model.cell)
    return Padding(padded, embed, functools.partial(extract_params, cell=model.cell))


PADDERS: dict[type, Callable[[Any, Sequence[tuple[int, int]]], Padding]] = {
    MultiTaskRNN: pad_multitask_rnn,
}


def padding_for(model: Any, shapes: Sequence[tuple[int, int]]) -> Padding:
    """The :class:`Padding` of ``model`` for ``shapes``; ``ValueError`` if unsupported."""
    padder = PADDERS.get(type(model))
    if padder is None:
        raise ValueError(
            f"no architecture padding for {type(model).__name__}; supported: "
            f"{sorted(c.__name__ for c in PADDERS)} (add one to ddat_jax.models.padded.PADDERS)"
        )
    return padder(model, shapes)


__all__ = [
    "ARCH",
    "PADDERS",
    "PaddedMultiTaskRNN",
    "Padding",
    "embed_params",
    "extract_params",
    "pad_multitask_rnn",
    "padding_for",
    "unit_mask",
]
