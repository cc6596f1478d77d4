"""CER-MTL settings: a frozen view of ``config.cer`` (plus the data fields it depends on).

:func:`settings_from_config` is the only reader of ``config.cer``; it validates every
field before any data is loaded (a bad value raises ``ValueError`` naming the field).
"""

from __future__ import annotations

import dataclasses

LOSSES = ("ccc", "pcc", "mse")
PAPERS = ("recola", "creativeit", "none")
SHORT = {"arousal": "Act", "activation": "Act", "valence": "Val", "dominance": "Dom"}


@dataclasses.dataclass(frozen=True)
class CERSettings:
    """Everything the CER-MTL plan needs.

    Attributes:
      dims: the emotion dimensions (tasks of the MTL network), from ``config.data.dimension``
        (``"arousal+valence"``); the first is the corpus's ``dimension``.
      variants: modality sets, each a tuple of ``config.data.modality`` members; the first
        is the multimodal (early-fusion) input of Tables III–IV.
      variant_labels: their row labels (the paper's: Multimodal, Speech, Motion / Facial
        Attributes).
      losses: ``ccc``, ``pcc``, ``mse`` (one system each); the first is the loss of
        Tables III–IV.
      windows: N values; the first is the N of Tables I–III, the others add Table IV rows.
      stride: t, frames between the N feature vectors of an image.
      causal: causal window ending at the frame (default) or centred (the paper's Eq. 1).
      chunk: target frames per training sequence (``batch_size`` sequences per step;
        4 × 64 = the paper's batch of 256 frames, drawn from 4 places of the corpus).
      train_every: keep every k-th training chunk (1: all; > 1 only to make a ``:quick``
        CPU run affordable — selection and reports use every frame).
      stl: also train one single-task network per dimension (Table III).
      paper: whose published values are printed beside ours (``recola``, ``creativeit``,
        ``none``).
      report: the partition of the paper tables (``dev``, as the paper); ignored with folds.
      folds: leave-one-partition-out over every loaded partition (CreativeIT's sessions):
        each system trains one network per held-out partition; the paper tables report the
        mean CCC over the folds.
      significance_resamples: resamples of the recording-level permutation tests.
      figure_frames, rolling: Fig. 2's span and its rolling-CCC window (256, 100).
    """

    dims: tuple[str, ...]
    variants: tuple[tuple[str, ...], ...]
    variant_labels: tuple[str, ...]
    losses: tuple[str, ...] = LOSSES
    windows: tuple[int, ...] = (20,)
    stride: int = 10
    causal: bool = True
    chunk: int = 64
    train_every: int = 1
    stl: bool = True
    paper: str = "recola"
    report: str = "dev"
    folds: bool = False
    significance_resamples: int = 9999
    figure_frames: int = 256
    rolling: int = 100

    @property
    def window(self) -> int:
        """N of Tables I–III."""
        return self.windows[0]


def _split(value: str) -> tuple[str, ...]:
    return tuple(m for m in str(value).split("+") if m)


def _check_variants(cer, modalities: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    variants = tuple(_split(v) for v in cer.variants)
    if not variants or len(cer.variant_labels) != len(variants):
        raise ValueError(
            f"config.cer.variants {tuple(cer.variants)} and config.cer.variant_labels "
            f"{tuple(cer.variant_labels)} must be non-empty and of equal length"
        )
    for v in variants:
        unknown = [m for m in v if m not in modalities]
        if not v or unknown:
            raise ValueError(
                f"config.cer.variants: {'+'.join(v)!r} names feature sets {unknown} that "
                f"config.data.modality={'+'.join(modalities)!r} does not load"
            )
    return variants


def settings_from_config(config) -> CERSettings:
    """Builds and validates :class:`CERSettings` from ``config.cer`` and ``config.data``."""
    cer = config.cer
    dims = _split(config.data.dimension)
    if len(dims) > 1 and float(config.data.delay_s) != 0.0:
        raise ValueError(
            f"config.data.delay_s={config.data.delay_s} with several dimensions {dims}: the "
            "trunk's label shift moves only the first dimension; use 0 (the causal window "
            "already spans the rater delay)"
        )
    variants = _check_variants(cer, _split(config.data.modality))
    losses = tuple(str(x) for x in cer.losses)
    bad = [x for x in losses if x not in LOSSES]
    if not losses or bad or len(set(losses)) != len(losses):
        raise ValueError(f"config.cer.losses={losses} is not valid; valid values: {list(LOSSES)}")
    windows = tuple(int(n) for n in cer.windows)
    if not windows or min(windows) < 4 or len(set(windows)) != len(windows):
        raise ValueError(f"config.cer.windows={windows}: expected distinct N >= 4")
    for field in (
        "stride",
        "chunk",
        "train_every",
        "significance_resamples",
        "figure_frames",
        "rolling",
    ):
        if int(cer[field]) < 1:
            raise ValueError(f"config.cer.{field} must be >= 1, got {cer[field]}")
    if cer.paper not in PAPERS:
        raise ValueError(f"config.cer.paper={cer.paper!r} is not valid; valid: {list(PAPERS)}")
    folds = bool(cer.folds)
    if folds and len(tuple(config.data.partitions)) < 2:
        raise ValueError(
            "config.cer.folds=True needs at least 2 partitions in config.data.partitions, "
            f"got {tuple(config.data.partitions)}"
        )
    if not folds and cer.report not in tuple(config.data.partitions):
        raise ValueError(
            f"config.cer.report={cer.report!r} is not a loaded partition "
            f"{tuple(config.data.partitions)}"
        )
    return CERSettings(
        dims=dims,
        variants=variants,
        variant_labels=tuple(str(x) for x in cer.variant_labels),
        losses=losses,
        windows=windows,
        stride=int(cer.stride),
        causal=bool(cer.causal),
        chunk=int(cer.chunk),
        train_every=int(cer.train_every),
        stl=bool(cer.stl),
        paper=str(cer.paper),
        report=str(cer.report),
        folds=folds,
        significance_resamples=int(cer.significance_resamples),
        figure_frames=int(cer.figure_frames),
        rolling=int(cer.rolling),
    )
