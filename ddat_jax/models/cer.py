"""CER-MTL: Conv1D over a per-frame "feature image", then one GRU per task (Köprü & Erzin).

The feature image of frame ``l`` is ``N`` feature vectors sampled with stride ``t``:

* causal (default): frames ``l − (N−1)·t, …, l − t, l``;
* centred (option, the paper's Eq. 1): frames ``l − (N/2 − 1)·t, …, l, …, l + (N/2)·t``.

Network (per frame): Conv1D(``filters`` = 25, kernel 3, VALID, ReLU) along the ``N`` window
steps with the ``P`` features as channels → max-pool 2 → for every task its own GRU(5) over
the pooled steps, last state → Dense(2, tanh) → Dense(1, linear). The tasks share the
convolution (MTL); one task is the single-task (STL) network.

**Windows are gathered inside the model**, never stored: :class:`FeatureImageCER` takes
sequences ``[B, L, P]`` whose first ``left`` frames (and last ``right`` frames, centred
only) are context, and gathers the ``[B, L − left − right, N, P]`` windows of the current
minibatch from them with static indices (:func:`window_offsets`). Data prepared this way
(:func:`ddat_jax.methods.cer_mtl.data.chunk_recording`) costs ``(left + C + right) / C``
times the corpus (``C`` target frames per chunk), not ``N`` times as a materialised
``[frames, N, P]`` array would. Edges repeat the first (last) frame of the recording: the
chunker pads the context that way.

Outputs are ``{"emotion": [B, L, M]}`` with zeros on the context frames (they carry no
target; the data's mask is False there).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddat_jax.models.multitask import get_activation

Array = jax.Array


def window_offsets(window: int, stride: int, causal: bool = True) -> np.ndarray:
    """Frame offsets ``[N]`` of a feature image relative to its frame ``l``.

    Causal: ``-(N-1)·t, …, -t, 0``; centred: ``-(N/2-1)·t, …, 0, …, (N/2)·t`` (Eq. 1).
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    j = np.arange(window)
    first = -(window - 1) if causal else -(window // 2 - 1)
    return ((j + first) * stride).astype(np.int32)


def context_frames(window: int, stride: int, causal: bool = True) -> tuple[int, int]:
    """``(left, right)``: context frames a chunk needs before and after its targets."""
    off = window_offsets(window, stride, causal)
    return int(max(0, -off.min())), int(max(0, off.max()))


def gather_windows(x: Array, window: int, stride: int, causal: bool = True) -> Array:
    """The feature images of the target frames of ``x``: ``[B, L, P] -> [B, C, N, P]``.

    ``C = L − left − right`` (:func:`context_frames`); the target frames are
    ``left … left + C − 1`` and every window lies inside ``x``.
    """
    left, right = context_frames(window, stride, causal)
    c = x.shape[1] - left - right
    if c < 1:
        raise ValueError(
            f"sequences of {x.shape[1]} frames leave no target frame after {left} + {right} "
            f"context frames (window={window}, stride={stride})"
        )
    idx = left + np.arange(c)[:, None] + window_offsets(window, stride, causal)[None, :]
    return x[:, jnp.asarray(idx)]


class CERNet(nn.Module):
    """The per-frame network on feature images ``[..., N, P] -> [..., tasks]``.

    Attributes:
      tasks: outputs M (one GRU branch each; 1 = STL).
      filters, kernel, pool: Conv1D filters (25), kernel (3), max-pool size (2).
      gru: GRU units per task (5); dense: units of the non-linear layer (2).
      activation: after the convolution (ReLU; the paper names none).
      dense_activation: of the Dense(2) layer (tanh: "to add further non-linearity").
    """

    tasks: int = 3
    filters: int = 25
    kernel: int = 3
    pool: int = 2
    gru: int = 5
    dense: int = 2
    activation: str = "relu"
    dense_activation: str = "tanh"

    @nn.compact
    def __call__(self, images: Array) -> Array:
        lead = images.shape[:-2]
        n, p = images.shape[-2:]
        if (n - self.kernel + 1) // self.pool < 1:
            raise ValueError(f"window {n} is too short for kernel {self.kernel}, pool {self.pool}")
        h = images.reshape(-1, n, p)
        h = nn.Conv(self.filters, (self.kernel,), padding="VALID", name="conv")(h)
        h = get_activation(self.activation)(h)
        h = nn.max_pool(h, (self.pool,), strides=(self.pool,), padding="VALID")
        outs = []
        for m in range(self.tasks):
            cell = nn.GRUCell(self.gru, name=f"gru_{m}")
            last = nn.RNN(cell, name=f"rnn_{m}")(h)[:, -1]
            z = get_activation(self.dense_activation)(nn.Dense(self.dense, name=f"dense_{m}")(last))
            outs.append(nn.Dense(1, name=f"out_{m}")(z))
        return jnp.concatenate(outs, axis=-1).reshape(*lead, self.tasks)


class FeatureImageCER(nn.Module):
    """CER-MTL on context-padded sequences: windows gathered in the step (module docstring).

    Attributes:
      tasks: outputs M.
      window: N feature vectors per image (20, 40, 60 in the paper).
      stride: t frames between them (10 at 60 fps in the paper).
      causal: causal window ending at the frame (default) or centred (Eq. 1).
      filters, kernel, pool, gru, dense: :class:`CERNet`'s sizes.
    """

    tasks: int = 3
    window: int = 20
    stride: int = 10
    causal: bool = True
    filters: int = 25
    kernel: int = 3
    pool: int = 2
    gru: int = 5
    dense: int = 2

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None) -> dict[str, Array]:
        """``x [B, L, P]`` -> ``{"emotion": [B, L, M]}`` (zeros on the context frames)."""
        del mask  # per-frame model: the context frames are simply not predicted
        images = gather_windows(x, self.window, self.stride, self.causal)
        net = CERNet(
            tasks=self.tasks,
            filters=self.filters,
            kernel=self.kernel,
            pool=self.pool,
            gru=self.gru,
            dense=self.dense,
            name="net",
        )
        y = net(images)
        left, right = context_frames(self.window, self.stride, self.causal)
        return {"emotion": jnp.pad(y, ((0, 0), (left, right), (0, 0)))}


def num_params(params) -> int:
    """Number of scalars in a parameter tree."""
    return int(sum(np.size(a) for a in jax.tree.leaves(params)))
