"""The implicit-fusion method's settings: a frozen view of ``config.model`` and
``config.implicit``.

:func:`settings_from_config` is the only reader of those config sections; everything
below it takes the frozen :class:`ImplicitSettings`.
"""

from __future__ import annotations

import dataclasses

LOSS_NAMES = ("mse", "ccc", "xent")
TASKS = ("regression", "classification")
PAPER_ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))


@dataclasses.dataclass(frozen=True)
class ImplicitSettings:
    """Everything the implicit-fusion plan needs.

    Attributes:
      directions: main modalities, one system pair (baseline, implicit fusion) each; the
        auxiliary modality is the corpus's other one.
      alphas: the auxiliary weights α trained as members of one program (α = 0 is the
        mono-modal baseline).
      task: ``"regression"`` (one output, CCC on dev) or ``"classification"`` (class
        logits, macro-F1 on dev).
      loss: loss of both terms (``mse``/``ccc`` for a regression, ``xent`` for classes).
      num_classes: logits of a classifier (ignored for a regression).
      cell, hidden_size, specific_layers, shared_layers, init_scale: the model
        (:class:`ddat_jax.models.fusion.ImplicitFusionRNN`).
      ddat_workdirs: DDAT runs whose MTL/DDAT rows Table 2 shows beside ours.
      data_source: ``((field, value), ...)`` of ``config.data`` (root, preset,
        corpus_seed) that a DDAT run must share to be shown.
      significance_resamples: permutation-test resamples of the significance columns.
    """

    directions: tuple[str, ...]
    alphas: tuple[float, ...] = PAPER_ALPHAS
    task: str = "regression"
    loss: str = "mse"
    num_classes: int = 7
    cell: str = "gru"
    hidden_size: int = 100
    specific_layers: int = 2
    shared_layers: int = 2
    init_scale: float = 0.0
    ddat_workdirs: tuple[str, ...] = ()
    significance_resamples: int = 9999
    data_source: tuple = ()


def _choice(value, valid, field: str) -> str:
    if value not in valid:
        raise ValueError(f"config.{field}={value!r} is not valid; valid values: {list(valid)}")
    return str(value)


def parse_alphas(alphas) -> tuple[float, ...]:
    """``config.implicit.alphas`` → sorted unique floats in [0, ∞), α = 0 included."""
    try:
        out = tuple(sorted({round(float(a), 10) for a in alphas}))
    except (TypeError, ValueError):
        out = ()
    if not out or out[0] < 0:
        raise ValueError(
            f"config.implicit.alphas={alphas!r}: expected a tuple of weights >= 0, e.g. "
            "(0.0, 0.1, ..., 1.0)"
        )
    if out[0] != 0.0:
        raise ValueError(
            f"config.implicit.alphas={alphas!r} must contain 0.0 (the mono-modal baseline)"
        )
    return out


def settings_from_config(config) -> ImplicitSettings:
    """Builds :class:`ImplicitSettings` from ``config.model`` and ``config.implicit``."""
    m, s = config.model, config.implicit
    task = _choice(s.task, TASKS, "implicit.task")
    _choice(m.cell, ("gru", "lstm"), "model.cell")
    valid_losses = ("xent",) if task == "classification" else ("mse", "ccc")
    loss = _choice(s.loss, valid_losses, "implicit.loss")
    directions = tuple(str(d) for d in s.directions)
    if not directions or len(set(directions)) != len(directions):
        raise ValueError(
            f"config.implicit.directions={s.directions!r}: expected distinct main modalities, "
            "e.g. ('audio', 'video_geometric')"
        )
    sizes = {k: int(getattr(m, k)) for k in ("hidden_size", "specific_layers", "shared_layers")}
    if sizes["hidden_size"] < 1 or sizes["specific_layers"] < 1 or sizes["shared_layers"] < 0:
        raise ValueError(
            f"config.model: hidden_size and specific_layers must be >= 1 and shared_layers "
            f">= 0; got {sizes}"
        )
    return ImplicitSettings(
        directions=directions,
        alphas=parse_alphas(s.alphas),
        task=task,
        loss=loss,
        num_classes=int(s.num_classes),
        cell=str(m.cell),
        init_scale=float(m.init_scale),
        ddat_workdirs=tuple(str(w) for w in s.ddat_workdirs),
        significance_resamples=int(s.significance_resamples),
        data_source=tuple((k, config.data[k]) for k in ("root", "preset", "corpus_seed")),
        **sizes,
    )
