"""The DDAT method's settings: a frozen view of ``config.model`` and ``config.ddat``.

:func:`settings_from_config` is the only reader of those config sections; everything
below it takes the frozen :class:`DDATSettings`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

LABELS = {
    "stl": "STL",
    "mtl_re": "MTL-RE",
    "mtl_pu": "MTL-PU",
    "ddat_re_vector": "DDAT-RE vector",
    "ddat_re_sum": "DDAT-RE sum",
    "ddat_pu": "DDAT-PU",
    "dnn": "DNN",
    "cl_dnn": "CL-DNN",
    "cl_gru": "CL-GRU",
}
ALL_SYSTEMS = tuple(LABELS)
SYSTEMS_BY_AUX = {
    "re": ("stl", "mtl_re", "ddat_re_vector", "ddat_re_sum", "cl_dnn", "cl_gru"),
    "pu": ("stl", "mtl_pu", "ddat_pu", "cl_dnn", "cl_gru"),
    "none": ("stl", "cl_dnn", "cl_gru"),
    "both": tuple(n for n in ALL_SYSTEMS if n != "dnn"),
    # Every row of the paper's Tables I/II, the plain DNN (no curriculum) included.
    "paper": ALL_SYSTEMS,
}
# stage-2 system → (stage-1 system, difficulty variant)
STAGE2 = {
    "ddat_re_vector": ("mtl_re", "re_vector"),
    "ddat_re_sum": ("mtl_re", "re_sum"),
    "ddat_pu": ("mtl_pu", "pu"),
}
VARIANTS_OF = {"mtl_re": ("re_vector", "re_sum"), "mtl_pu": ("pu",)}
AUX_HEAD = {"mtl_re": "reconstruction", "mtl_pu": "pu"}
RE_REDUCE = ("squared", "abs", "signed")
PU_SOURCES = ("predicted", "annotated")
LOSS_NAMES = ("mse", "ccc")


@dataclasses.dataclass(frozen=True)
class DDATSettings:
    """Everything the DDAT plan needs (see ``ddat_jax.config.ddat_config`` for meanings)."""

    systems: tuple[str, ...]
    archs: tuple[tuple[int, int], ...]
    cell: str = "gru"
    bidirectional: bool = False
    init_scale: float = 0.0
    loss: str = "mse"
    run_stage1: bool = True
    w_emotion: float = 1.0
    w_aux: float = 1.0
    re_reduce: str = "squared"
    pu_source_train: str = "predicted"
    cl_parts: int = 5
    cl_segment_s: float = 10.0
    cl_epochs_per_stage: int = 12
    cl_dnn_hidden: tuple[int, ...] = (1024, 1024)
    significance_resamples: int = 9999
    stage1_hash: str = ""
    # config.data (read by the AVEC-official scoring to load the unshifted gold standard).
    data: Any = dataclasses.field(default=None, compare=False, hash=False)


def _choice(value, valid, field: str) -> str:
    if value not in valid:
        raise ValueError(f"config.{field}={value!r} is not valid; valid values: {list(valid)}")
    return str(value)


def systems_for(aux: str, systems=()) -> tuple[str, ...]:
    """The systems of ``config.ddat.systems`` or, when empty, the defaults of ``aux``."""
    _choice(aux, SYSTEMS_BY_AUX, "ddat.aux")
    names = tuple(systems) or SYSTEMS_BY_AUX[aux]
    unknown = [n for n in names if n not in LABELS]
    if unknown:
        raise ValueError(
            f"config.ddat.systems names unknown systems {unknown}; valid: {list(ALL_SYSTEMS)}"
        )
    return names


def parse_archs(arch) -> tuple[tuple[int, int], ...]:
    """``config.model.arch`` → ``((layers, units), ...)`` with a sentence for bad input."""
    try:
        out = tuple((int(a[0]), int(a[1])) for a in arch if len(a) == 2)
        ok = len(out) == len(tuple(arch)) and len(out) > 0
    except (TypeError, ValueError, IndexError):
        ok = False
    if not ok or any(a < 1 or b < 1 for a, b in out):
        raise ValueError(
            f"config.model.arch={arch!r}: expected a tuple of (layers, units) pairs of "
            "positive integers, e.g. ((2, 64),) for one architecture (note the trailing "
            "comma) or ((1, 40), (3, 80)) for several"
        )
    return out


def settings_from_config(config) -> DDATSettings:
    """Builds :class:`DDATSettings` from ``config.model`` and ``config.ddat`` (validated)."""
    d, m = config.ddat, config.model
    _choice(m.cell, ("gru", "lstm"), "model.cell")
    _choice(d.re_reduce, RE_REDUCE, "ddat.re_reduce")
    _choice(d.pu_source_train, PU_SOURCES, "ddat.pu_source_train")
    _choice(d.loss, LOSS_NAMES, "ddat.loss")
    if int(d.cl_parts) < 1 or int(d.cl_epochs_per_stage) < 1 or float(d.cl_segment_s) <= 0:
        raise ValueError("config.ddat.cl_parts, cl_epochs_per_stage and cl_segment_s must be > 0")
    from ddat_jax.methods.ddat import artifacts

    # Everything that shapes what stage 1 writes; stage 2 refuses a folder with another.
    knobs = {
        "seed": int(config.seed),
        "seeds": int(config.grid.seeds),
        "w_emotion": float(d.w_emotion),
        "w_aux": float(d.w_aux),
        "re_reduce": str(d.re_reduce),
        "pu_source_train": str(d.pu_source_train),
        "loss": str(d.loss),
    }
    stage1_hash = artifacts.config_hash(
        config.data, config.model, config.train, config.hparams, knobs
    )
    return DDATSettings(
        systems=systems_for(d.aux, d.systems),
        archs=parse_archs(m.arch),
        cell=str(m.cell),
        bidirectional=bool(m.bidirectional),
        init_scale=float(m.init_scale),
        loss=str(d.loss),
        run_stage1=bool(d.run_stage1),
        w_emotion=float(d.w_emotion),
        w_aux=float(d.w_aux),
        re_reduce=str(d.re_reduce),
        pu_source_train=str(d.pu_source_train),
        cl_parts=int(d.cl_parts),
        cl_segment_s=float(d.cl_segment_s),
        cl_epochs_per_stage=int(d.cl_epochs_per_stage),
        cl_dnn_hidden=tuple(int(h) for h in d.cl_dnn_hidden),
        significance_resamples=int(d.significance_resamples),
        stage1_hash=stage1_hash,
        data=config.data,
    )
