"""The soft-prediction method's settings: a frozen view of ``config.model`` and
``config.soft`` (plus the data section, to load the other emotion dimensions).

:func:`settings_from_config` is the only reader of those config sections.
"""

from __future__ import annotations

import dataclasses
import json

from ddat_jax.data import targets

TARGETS = ("E", "sigma")  # emotional state (EWE gold), perception uncertainty (scaled PU)
HEAD = {"E": "emotion", "sigma": "sigma"}
PAPER_DIMENSIONS = ("arousal", "valence")


@dataclasses.dataclass(frozen=True)
class SoftSettings:
    """Everything the soft-prediction plan and tables need.

    Attributes:
      dimensions: emotion dimensions, one network pair per dimension and modality;
        ``config.data.dimension`` is one of them (its corpus is the run's).
      modalities: the feature sets of ``config.data.modality`` (``"audio+video"``):
        one model per modality, SLR late fusion over them when there are several.
      arch: ``(layers, units)`` of the BLSTM (paper: 2 × 240).
      cell, bidirectional, init_scale: the recurrent trunk (LSTM, True, uniform ±0.1).
      w_grid: the values of ``w_E`` (``w_σ = total − w_E``), trained as one program.
      total: ``w_E + w_σ`` (the paper's 2).
      pu_scaling: ``"minmax"`` (train min/max, default), ``"zscore"`` or ``"none"``.
      postprocess, pp_grids, pp_per_recording: the post-processing chain fitted on dev.
      figure_recording: index of the test recording of Fig. 4.
      significance_resamples: permutation-test resamples.
      data_json: ``config.data`` as JSON (to load the other dimensions the same way).
    """

    dimensions: tuple[str, ...]
    modalities: tuple[str, ...]
    arch: tuple[int, int] = (2, 240)
    cell: str = "lstm"
    bidirectional: bool = True
    init_scale: float = 0.1
    w_grid: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(21))
    total: float = 2.0
    pu_scaling: str = "minmax"
    postprocess: bool = True
    pp_grids: str = "ddat"
    pp_per_recording: bool = True
    figure_recording: int = 0
    significance_resamples: int = 9999
    data_json: str = "{}"

    @property
    def data(self) -> dict:
        return json.loads(self.data_json)

    @property
    def delay_auto(self) -> bool:
        d = self.data.get("delay_s")
        return isinstance(d, str) and d.strip().lower() == "auto"


def _grid(values, total: float) -> tuple[float, ...]:
    try:
        grid = tuple(round(float(v), 10) for v in values)
    except (TypeError, ValueError):
        grid = ()
    if not grid or any(not 0.0 <= v <= total for v in grid) or len(set(grid)) != len(grid):
        raise ValueError(
            f"config.soft.w_grid={values!r}: expected distinct values of w_E in "
            f"[0, {total:g}] (e.g. 0, 0.1, ..., 2)"
        )
    if 0.0 not in grid or total not in grid:
        raise ValueError(
            f"config.soft.w_grid={values!r} must hold 0 and {total:g}: its ends are the "
            "single-task networks (w_E = total: E only; w_E = 0: sigma only)"
        )
    return tuple(sorted(grid))


def settings_from_config(config) -> SoftSettings:
    """Builds :class:`SoftSettings` from ``config`` (validated before any data is read)."""
    s, m, d = config.soft, config.model, config.data
    dims = tuple(str(x) for x in s.dimensions)
    if not dims or str(d.dimension) not in dims or len(set(dims)) != len(dims):
        raise ValueError(
            f"config.soft.dimensions={dims!r} must list distinct dimensions including "
            f"config.data.dimension={d.dimension!r}"
        )
    mods = tuple(x for x in str(d.modality).split("+") if x)
    if str(s.pu_scaling) not in targets.PU_SCALINGS:
        raise ValueError(
            f"config.soft.pu_scaling={s.pu_scaling!r}; valid: {list(targets.PU_SCALINGS)}"
        )
    if str(m.cell) not in ("lstm", "gru"):
        raise ValueError(f"config.model.cell={m.cell!r}; valid: ['lstm', 'gru']")
    arch = tuple(int(a) for a in m.arch)
    if len(arch) != 2 or min(arch) < 1:
        raise ValueError(f"config.model.arch={m.arch!r}: expected (layers, units), e.g. (2, 240)")
    total = float(s.total)
    if total <= 0:
        raise ValueError(f"config.soft.total must be > 0, got {total}")
    pp = config.postprocess
    return SoftSettings(
        dimensions=dims,
        modalities=mods,
        arch=arch,
        cell=str(m.cell),
        bidirectional=bool(m.bidirectional),
        init_scale=float(m.init_scale),
        w_grid=_grid(s.w_grid, total),
        total=total,
        pu_scaling=str(s.pu_scaling),
        postprocess=bool(pp.enabled),
        pp_grids=str(pp.grids),
        pp_per_recording=bool(pp.per_recording),
        figure_recording=int(s.figure_recording),
        significance_resamples=int(s.significance_resamples),
        data_json=json.dumps(d.to_dict(), sort_keys=True),
    )
