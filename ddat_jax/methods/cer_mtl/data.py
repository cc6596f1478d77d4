"""Context-padded chunks of recordings: the engine's data for the feature-image network.

Every recording ``x [T, P]`` is cut into ``K = ceil(T / C)`` chunks of ``C`` target frames;
chunk ``k`` holds frames ``k·C − left … (k+1)·C − 1 + right`` (``left``/``right`` from
:func:`ddat_jax.models.cer.context_frames`), with frames before the start repeating the
first frame and frames after the end repeating the last one (the edge rule). Its mask is
True on the ``C`` target frames that exist (the last chunk may have fewer), False on the
context. The network (:class:`ddat_jax.models.cer.FeatureImageCER`) gathers each target
frame's window from its chunk inside the jitted step, so the data costs
``(left + C + right) / C`` times the corpus instead of ``N`` times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def num_chunks(frames: int, chunk: int) -> int:
    """``ceil(frames / chunk)``."""
    return -(-int(frames) // int(chunk))


def chunk_array(x: np.ndarray, chunk: int, left: int, right: int) -> np.ndarray:
    """``[T, ...] -> [K, left + chunk + right, ...]`` with edge frames repeated."""
    t = x.shape[0]
    k = num_chunks(t, chunk)
    pad = [(left, k * chunk - t + right)] + [(0, 0)] * (x.ndim - 1)
    padded = np.pad(x, pad, mode="edge")
    length = left + chunk + right
    return np.stack([padded[i * chunk : i * chunk + length] for i in range(k)])


def chunk_mask(frames: int, chunk: int, left: int, right: int) -> np.ndarray:
    """``[K, left + chunk + right]`` bool: True on the target frames that exist."""
    k = num_chunks(frames, chunk)
    mask = np.zeros((k, left + chunk + right), bool)
    for i in range(k):
        mask[i, left : left + min(chunk, frames - i * chunk)] = True
    return mask


def chunk_partition(
    features: Sequence[np.ndarray],
    targets: Sequence[np.ndarray] | None,
    *,
    chunk: int,
    left: int,
    right: int,
) -> dict:
    """The engine partition of a list of recordings.

    Args:
      features: per recording ``[T_i, P]``.
      targets: per recording ``[T_i, M]`` (None: a partition without labels).

    Returns:
      ``{"inputs": [K, L, P] float32, "mask": [K, L] bool, "targets": {"emotion":
      [K, L, M]}}`` (no targets without labels), ``K = Σ_i ceil(T_i / chunk)``.
    """
    inputs = np.concatenate(
        [chunk_array(np.asarray(x, np.float32), chunk, left, right) for x in features]
    )
    mask = np.concatenate([chunk_mask(len(x), chunk, left, right) for x in features])
    out = {"inputs": inputs, "mask": mask, "targets": {}}
    if targets is not None:
        y = [chunk_array(np.asarray(t, np.float32), chunk, left, right) for t in targets]
        out["targets"]["emotion"] = np.concatenate(y)
    return out


def unchunk(pieces: Sequence[np.ndarray], lengths: Sequence[int], chunk: int, left: int):
    """Per-chunk outputs ``[L, M]`` (recording order) back to per-recording ``[T_i, M]``."""
    out, i = [], 0
    for t in lengths:
        k = num_chunks(t, chunk)
        body = [np.asarray(p)[left : left + chunk] for p in pieces[i : i + k]]
        out.append(np.concatenate(body)[:t])
        i += k
    if i != len(pieces):
        raise ValueError(f"{len(pieces)} chunks given, the recordings need {i}")
    return out
