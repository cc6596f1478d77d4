"""Recurrent and feed-forward models (Flax linen)."""

from ddat_jax.models.builders import MODELS, build_model
from ddat_jax.models.multitask import DNN, ConvFrontEnd, MultiTaskRNN
from ddat_jax.models.rnn import (
    GATE_LAYOUTS,
    RNN,
    gru_recurrence,
    lstm_recurrence,
    resolve_gate_layout,
    reverse_padded,
    rnn_apply,
    rnn_param_shapes,
)
from ddat_jax.models.torch_import import expected_rnn_shapes, import_torch_rnn

__all__ = [
    "DNN",
    "GATE_LAYOUTS",
    "MODELS",
    "RNN",
    "ConvFrontEnd",
    "MultiTaskRNN",
    "build_model",
    "expected_rnn_shapes",
    "gru_recurrence",
    "import_torch_rnn",
    "lstm_recurrence",
    "resolve_gate_layout",
    "reverse_padded",
    "rnn_apply",
    "rnn_param_shapes",
]
