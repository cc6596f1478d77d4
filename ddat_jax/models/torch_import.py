"""Import ``torch.nn.GRU`` / ``torch.nn.LSTM`` state dicts into :class:`ddat_jax.models.RNN`.

Torch is not needed: the state dict is given as NumPy arrays (e.g.
``{k: v.numpy() for k, v in module.state_dict().items()}``).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from ddat_jax.models.rnn import num_gates, rnn_param_shapes

# Kept under this name for callers that build or check torch state dicts.
expected_rnn_shapes = rnn_param_shapes


def import_torch_rnn(
    state_dict: Mapping[str, np.ndarray],
    *,
    cell: str,
    num_layers: int,
    bidirectional: bool,
    dtype=jnp.float32,
) -> dict[str, jnp.ndarray]:
    """Turns a torch ``nn.GRU``/``nn.LSTM`` state dict into ``params`` for ``RNN``.

    Usage: ``RNN(cell, hidden_size, num_layers, bidirectional).apply({"params": p}, x)``
    with ``p = import_torch_rnn(sd, cell=..., num_layers=..., bidirectional=...)``
    equals ``torch_rnn(x)[0]`` for a ``batch_first=True`` torch module.

    Args:
      state_dict: names like ``weight_ih_l0``, ``weight_hh_l0_reverse``, ``bias_ih_l0``
        mapped to arrays (NumPy or anything ``np.asarray`` accepts). Modules built with
        ``bias=False`` or ``proj_size > 0`` are not supported.
      cell: "gru" or "lstm".
      num_layers: stacked layers.
      bidirectional: whether the module is bidirectional.
      dtype: dtype of the returned arrays.

    Returns:
      The parameter dict (same names as torch, same layouts).

    Raises:
      ValueError: on a missing or unexpected key or a wrong shape, naming the key.
    """
    names = set(state_dict)
    if "weight_ih_l0" not in names:
        raise ValueError("missing key 'weight_ih_l0' in the torch state dict")
    if "weight_hh_l0" not in names:
        raise ValueError("missing key 'weight_hh_l0' in the torch state dict")
    gates = num_gates(cell)
    w_hh0 = np.shape(state_dict["weight_hh_l0"])
    if len(w_hh0) != 2 or w_hh0[0] % gates or w_hh0[0] // gates != w_hh0[1]:
        raise ValueError(
            f"key 'weight_hh_l0' has shape {w_hh0}, expected ({gates} * hidden, hidden) "
            f"for cell {cell!r}"
        )
    hidden_size = w_hh0[1]
    w_ih0 = np.shape(state_dict["weight_ih_l0"])
    if len(w_ih0) != 2:
        raise ValueError(f"key 'weight_ih_l0' has shape {w_ih0}, expected 2 dimensions")
    expected = rnn_param_shapes(
        cell=cell,
        input_size=w_ih0[1],
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
    )
    missing = [k for k in expected if k not in names]
    if missing:
        raise ValueError(f"missing key(s) in the torch state dict: {missing}")
    unexpected = sorted(names - set(expected))
    if unexpected:
        raise ValueError(
            f"unexpected key(s) in the torch state dict: {unexpected} "
            f"(expected {list(expected)} for cell={cell!r}, num_layers={num_layers}, "
            f"bidirectional={bidirectional})"
        )
    params = {}
    for name, shape in expected.items():
        value = np.asarray(state_dict[name])
        if value.shape != shape:
            raise ValueError(f"key {name!r} has shape {value.shape}, expected {shape}")
        params[name] = jnp.asarray(value, dtype)
    return params
