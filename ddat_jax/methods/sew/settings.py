"""SEW's settings: a frozen view of ``config.sew`` (the only reader of that section).

Names used throughout the method:

* modalities ``audio``, ``video_geometric``, ``video_appearance`` (AVEC 2016 feature sets);
* a *pair* ``(weak, strong)``: the weaker modality (the one the deployed system reads)
  and the stronger one (used in training only) — the paper writes ``weak(+strong)``;
* a *variant* of SEW: ``sew`` (full) or an ablation (the paper's Table 2 rows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

MODALITIES = ("audio", "video_geometric", "video_appearance")
SHORT = {"audio": "audio", "video_geometric": "video-geo", "video_appearance": "video-app"}

# The paper's five stronger -> weaker pairs (Sec. 4.2), as (weak, strong) per dimension.
PAPER_PAIRS = {
    "arousal": (("video_geometric", "audio"), ("video_appearance", "audio")),
    "valence": (
        ("audio", "video_geometric"),
        ("video_appearance", "audio"),
        ("video_appearance", "video_geometric"),
    ),
}

# Variant -> (row label, loss terms kept). Terms: translation (α·MSE(M_s, Ŝ_sw), S_D1),
# autoencoder (β·MSE(M_s, Ŝ_s), S_D2), cca (γ·−corr_K). A term that can no longer reach
# W_E or R (the autoencoder once CCA is gone) is dropped: the deployed predictor is
# exactly the same with or without it, and training is cheaper.
VARIANTS = {
    "sew": ("SEW", ("translation", "autoencoder", "cca")),
    "no_sd2": ("-SD2", ("translation", "cca")),
    "no_cca": ("-CCA", ("translation",)),
    "no_sd1": ("-SD1", ("autoencoder", "cca")),
    "no_cca_sd1": ("-(CCA & SD1)", ()),
}


@dataclasses.dataclass(frozen=True)
class SEWSettings:
    """Everything the SEW plan needs (meanings in ``configs/recola_sew.py``)."""

    dimension: str
    unimodal: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    variants: tuple[str, ...]
    hidden: Mapping[str, tuple[int, ...]]
    latent: int = 128
    latent_appearance: int = 168
    gru_layers: int = 4
    gru_units: int = 120
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0
    top_k: int = 10
    r1: float = 1e-3
    r2: float = 1e-3
    train_stride: int = 1
    dev_stride: int = 1
    significance_resamples: int = 9999
    compare_workdirs: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def latent_of(self, pair: tuple[str, str]) -> int:
        """The latent size of a pair: ``latent_appearance`` when appearance is in it."""
        return self.latent_appearance if "video_appearance" in pair else self.latent


def _modality(value, field: str) -> str:
    if value not in MODALITIES:
        raise ValueError(f"config.{field}={value!r} is not a modality; valid: {list(MODALITIES)}")
    return str(value)


def parse_pairs(pairs, dimension: str) -> tuple[tuple[str, str], ...]:
    """``config.sew.pairs`` (``"weak+strong"`` strings or ``(weak, strong)``) or, when
    empty, the paper's pairs of ``dimension``."""
    if not pairs:
        return PAPER_PAIRS[dimension]
    out = []
    for p in pairs:
        parts = tuple(p.split("+")) if isinstance(p, str) else tuple(p)
        if len(parts) != 2 or parts[0] == parts[1]:
            raise ValueError(
                f"config.sew.pairs entry {p!r}: expected 'weak+strong' with two different "
                f"modalities of {list(MODALITIES)}, e.g. 'video_geometric+audio'"
            )
        out.append((_modality(parts[0], "sew.pairs"), _modality(parts[1], "sew.pairs")))
    return tuple(out)


def _positive(value, field: str, minimum: int = 1) -> int:
    if int(value) < minimum:
        raise ValueError(f"config.{field} must be >= {minimum}, got {value}")
    return int(value)


def settings_from_config(config) -> SEWSettings:
    """Builds :class:`SEWSettings` from ``config.sew`` and ``config.data`` (validated)."""
    s = config.sew
    dimension = str(config.data.dimension)
    if dimension not in PAPER_PAIRS:
        raise ValueError(f"config.data.dimension={dimension!r}; valid: {sorted(PAPER_PAIRS)}")
    variants = tuple(s.variants)
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ValueError(
            f"config.sew.variants names unknown variants {bad}; valid: {list(VARIANTS)}"
        )
    for r in ("r1", "r2"):
        if not float(s[r]) > 0:
            raise ValueError(f"config.sew.{r} must be > 0 (the DCCA ridge), got {s[r]}")
    hidden = {m: tuple(int(h) for h in s.hidden[m]) for m in MODALITIES}
    return SEWSettings(
        dimension=dimension,
        unimodal=tuple(_modality(m, "sew.unimodal") for m in s.unimodal),
        pairs=parse_pairs(tuple(s.pairs), dimension),
        variants=variants,
        hidden=hidden,
        latent=_positive(s.latent, "sew.latent"),
        latent_appearance=_positive(s.latent_appearance, "sew.latent_appearance"),
        gru_layers=_positive(s.gru_layers, "sew.gru_layers"),
        gru_units=_positive(s.gru_units, "sew.gru_units"),
        alpha=float(s.alpha),
        beta=float(s.beta),
        gamma=float(s.gamma),
        top_k=_positive(s.top_k, "sew.top_k"),
        r1=float(s.r1),
        r2=float(s.r2),
        train_stride=_positive(s.train_stride, "sew.train_stride"),
        dev_stride=_positive(s.dev_stride, "sew.dev_stride"),
        significance_resamples=_positive(s.significance_resamples, "sew.significance_resamples"),
        compare_workdirs={str(k): str(v) for k, v in dict(s.compare_workdirs).items()},
    )
