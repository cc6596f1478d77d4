"""The corpus model: partitions of recordings with features, gold standard, raters and PU.

:func:`load_corpus` reads a corpus root in the AVEC 2016 layout (``features_<modality>/
<dimension>/<stem>.arff``, ``ratings_gold_standard/<dimension>/<stem>.arff``,
``ratings_individual/<dimension>/<stem>.csv``) or in the generic CSV layout of
:mod:`ddat_jax.data.csv_layout`, validates it (same stems across feature sets and labels, same
number of frames, same time grid) and returns a :class:`Corpus`.

Gold standard (``gold=``):

* ``"provided"``: the gold-standard file of each recording.
* ``"mean"``: the mean of the raters at every frame.
* ``"ccc_centring"``: AVEC 2016's "CCC centring" (per recording): rater k's agreement a_k is
  the mean CCC with each other rater (MATLAB ``CCC_calc``: ``nanvar`` with N-1, covariance with
  N); offset ``w = sum_k a_k m_k / sum_k a_k`` with m_k the time mean of rater k; gold
  ``= mean_k r_k(t) - mean_k m_k + w``.
* ``"ewe"``: evaluator weighted estimator (per recording): weight of rater k = Pearson
  correlation of r_k with the raters' mean trace over all frames of the recording, negative
  (or undefined) -> 0, normalised to sum 1; gold ``= sum_k w_k r_k(t)``.

Perception uncertainty: the standard deviation over the raters at every frame
(``ddof=pu_ddof``, default 1).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax import metrics
from ddat_jax.data import csv_layout
from ddat_jax.data.avec2016 import (
    DIMENSIONS,
    MODALITIES,
    DataFormatError,
    check_time_grid,
    read_arff,
    read_gold_standard,
    read_ratings,
)

__all__ = [
    "GOLD_METHODS",
    "LAYOUTS",
    "Corpus",
    "Recording",
    "gold_ccc_centring",
    "gold_ewe",
    "gold_mean",
    "load_corpus",
    "perception_uncertainty",
]

LAYOUTS = ("auto", "avec2016", "csv")
_EPS = 1e-12


# ------------------------------------------------------------------------------ data model


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
    """One recording of a partition (immutable; compared by identity, as it holds arrays).

    Attributes:
        name: the file stem, e.g. ``train_1``.
        times: frame times in seconds, ``[T]`` float64.
        features: ``[T, F]`` float32; NaN allowed before preprocessing.
        gold: gold standard ``[T]`` float32, or None when the partition has no labels.
        ratings: rater traces ``[T, K]`` float32, or None.
        pu: perception uncertainty (std over raters) ``[T]`` float32, or None.
        other_gold: the gold standard ``[T]`` of every further dimension of a corpus loaded
            with several dimensions (``{dimension: [T]}``, corpus order; empty otherwise).
            ``gold`` stays the first dimension's, so single-dimension code is unchanged.
        other_ratings: the rater traces ``[T, K_d]`` of every further dimension (same keys
            as ``other_gold`` where the corpus has ratings; empty otherwise).
    """

    name: str
    times: np.ndarray
    features: np.ndarray
    gold: np.ndarray | None = None
    ratings: np.ndarray | None = None
    pu: np.ndarray | None = None
    other_gold: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    other_ratings: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])

    @property
    def has_labels(self) -> bool:
        return self.gold is not None

    def gold_matrix(self, dimensions: Sequence[str]) -> np.ndarray | None:
        """The gold standard of ``dimensions`` as ``[T, D]`` float32 (None without labels).

        ``dimensions[0]`` may be the first dimension (``gold``) or any key of
        ``other_gold``; an unknown name raises ``ValueError`` listing the valid ones. The
        first dimension's name is not stored on the recording: pass the corpus's
        ``dimensions`` (first = ``gold``).
        """
        if self.gold is None:
            return None
        cols = []
        for i, d in enumerate(dimensions):
            if d in self.other_gold:
                cols.append(self.other_gold[d])
            elif i == 0:
                cols.append(self.gold)
            else:
                raise ValueError(
                    f"recording {self.name!r} has no gold standard for dimension {d!r}; "
                    f"valid: the first dimension or {sorted(self.other_gold)}"
                )
        return np.stack(cols, axis=1).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
    """Partitions of recordings sharing one feature space and one emotion dimension.

    Attributes:
        partitions: ``{partition: [Recording, ...]}`` in natural stem order.
        feature_names: ``F`` names; prefixed ``<modality>/`` when several modalities are
            concatenated.
        rater_names: ``K`` rater names (empty when no ratings were loaded).
        frame_period: seconds between frames.
        modalities: the feature sets, in concatenation order.
        dimension: the emotion dimension.
        root: the corpus root.
        modality_slices: ``{modality: (start, stop)}`` column range of each feature set.
        gold_method: how the gold standard was obtained (``provided``, ``mean``, …).
        other_dimensions: the further dimensions of a corpus loaded with several (their gold
            standards are each recording's ``other_gold``); empty for one dimension.
    """

    partitions: dict[str, list[Recording]]
    feature_names: list[str]
    rater_names: list[str]
    frame_period: float
    modalities: tuple[str, ...]
    dimension: str
    root: Path
    modality_slices: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    gold_method: str = "provided"
    other_dimensions: tuple[str, ...] = ()

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Every loaded dimension: ``(dimension, *other_dimensions)``."""
        return (self.dimension, *self.other_dimensions)

    def replace_recordings(self, partitions: dict[str, list[Recording]]) -> Corpus:
        """A copy with other recordings (same metadata)."""
        return dataclasses.replace(self, partitions=partitions)

    def summary(self) -> str:
        """One line per partition: recordings, frames, features, labels, NaN fraction."""
        head = (
            f"corpus {self.root} | modalities {', '.join(self.modalities)} | "
            f"dimension {'+'.join(self.dimensions)} | {self.num_features} features | "
            f"frame period {self.frame_period:g} s | gold {self.gold_method}"
        )
        lines = [head]
        for part, recs in self.partitions.items():
            frames = [r.num_frames for r in recs]
            total = sum(frames)
            n_values = sum(r.features.size for r in recs)
            n_nan = sum(int(np.isnan(r.features).sum()) for r in recs)
            nan_pct = 100.0 * n_nan / n_values if n_values else 0.0
            if recs and all(r.gold is not None for r in recs):
                labels = "gold"
                if all(r.ratings is not None for r in recs):
                    labels += f" + {recs[0].ratings.shape[1]} raters + PU"
            else:
                labels = "no labels"
            lo, hi = min(frames, default=0), max(frames, default=0)
            span = f"{lo}" if lo == hi else f"{lo}-{hi}"
            lines.append(
                f"  {part:<6} {len(recs):3d} recordings, {total:7d} frames ({span} per "
                f"recording), labels: {labels}, NaN {nan_pct:.2f}%"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------- gold / PU


def perception_uncertainty(ratings, *, ddof: int = 1) -> np.ndarray:
    """Standard deviation over the raters at every frame.

    Args:
        ratings: ``[T, K]``.
        ddof: delta degrees of freedom (1: unbiased estimator, K - 1 in the denominator).

    Returns:
        ``[T]`` float32.

    Raises:
        ValueError: ``K - ddof < 1``.
    """
    r = np.asarray(ratings, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"ratings must be [T, K], got shape {r.shape}")
    if r.shape[1] - ddof < 1:
        raise ValueError(f"perception uncertainty with ddof={ddof} needs more than {ddof} raters")
    return np.std(r, axis=1, ddof=ddof).astype(np.float32)


def gold_mean(ratings) -> np.ndarray:
    """Mean of the raters at every frame: ``[T, K] -> [T]`` float32."""
    r = np.asarray(ratings, dtype=np.float64)
    return r.mean(axis=1).astype(np.float32)


def _rater_agreement(x: np.ndarray, y: np.ndarray) -> float:
    """CCC of two rater traces as the AVEC 2016 ``CCC_calc``: N-1 variances, N covariance.

    :func:`ddat_jax.metrics.ccc` with ``matlab_compatible=True``; two constant, equal traces
    (CCC undefined) agree 0.
    """
    value = metrics.ccc(x, y, matlab_compatible=True)
    return 0.0 if np.isnan(value) else float(value)


def gold_ccc_centring(ratings) -> np.ndarray:
    """AVEC 2016 gold standard by "CCC centring" of the raters (one recording).

    .. math::
        a_k = \\frac{1}{K-1} \\sum_{l \\ne k} \\mathrm{CCC}(r_k, r_l), \\quad
        w = \\frac{\\sum_k a_k m_k}{\\sum_k a_k}, \\quad
        g(t) = \\frac{1}{K} \\sum_k (r_k(t) - m_k) + w

    with ``m_k`` the time mean of rater k and CCC the official ``CCC_calc`` (``N-1``
    variances, ``N`` covariance: :func:`ddat_jax.metrics.ccc` with
    ``matlab_compatible=True``). Negative agreements are kept (as the official script); if
    ``sum_k a_k`` is 0 the plain mean of the ``m_k`` is used as the offset. This is the one
    implementation: the embedded corpus's generator writes its gold standard with it.

    Args:
        ratings: ``[T, K]``, K >= 2.

    Returns:
        ``[T]`` float32.
    """
    r = np.asarray(ratings, dtype=np.float64)
    t, k = r.shape
    if k < 2 or t < 2:
        raise ValueError(f"CCC centring needs at least 2 raters and 2 frames, got {r.shape}")
    pair = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):  # the CCC is symmetric: each pair once
            pair[i, j] = pair[j, i] = _rater_agreement(r[:, i], r[:, j])
    agree = pair.sum(axis=1) / (k - 1)
    means = r.mean(axis=0)
    total = agree.sum()
    offset = float(agree @ means / total) if abs(total) > _EPS else float(means.mean())
    return (r.mean(axis=1) - means.mean() + offset).astype(np.float32)


def gold_ewe(ratings) -> np.ndarray:
    """Evaluator weighted estimator (one recording).

    Weight of rater k: Pearson correlation of ``r_k`` with the raters' mean trace over all
    frames; undefined (constant trace) or negative correlations count as 0; the weights are
    normalised to sum 1 (equal weights if all are 0). ``g(t) = sum_k w_k r_k(t)``.

    Args:
        ratings: ``[T, K]``.

    Returns:
        ``[T]`` float32.
    """
    r = np.asarray(ratings, dtype=np.float64)
    mean = r.mean(axis=1)
    corr = np.nan_to_num([metrics.pcc(r[:, k], mean) for k in range(r.shape[1])], nan=0.0)
    w = np.clip(corr, 0.0, None)
    w = w / w.sum() if w.sum() > _EPS else np.full(r.shape[1], 1.0 / r.shape[1])
    return (r @ w).astype(np.float32)


GOLD_METHODS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "provided": None,
    "mean": gold_mean,
    "ccc_centring": gold_ccc_centring,
    "ewe": gold_ewe,
}


# ------------------------------------------------------------------------------- layouts


@dataclasses.dataclass
class _Files:
    features: dict[str, dict[str, Path]]  # modality -> stem -> file
    ratings: dict[str, Path]
    gold: dict[str, Path]
    partitions: dict[str, str] | None
    read_features: Callable[[Path], pd.DataFrame]
    read_ratings: Callable[[Path], pd.DataFrame]
    read_gold: Callable[[Path], pd.DataFrame]


def _files_by_stem(folder: Path, suffix: str) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    files = sorted(folder.glob(f"*{suffix}"), key=lambda p: csv_layout.natural_key(p.stem))
    return {p.stem: p for p in files}


def _avec_features(path: Path) -> pd.DataFrame:
    frame = read_arff(path)
    kinds = [pd.api.types.is_float_dtype(frame[c]) for c in frame.columns]
    if not all(kinds):
        j = kinds.index(False)
        raise DataFormatError(
            f"{path}: column {j + 1} ({frame.columns[j]!r}) expected a numeric attribute "
            "(frame time first, then numeric features; no string or class attribute)"
        )
    if frame.shape[1] < 2:
        raise DataFormatError(f"{path}: expected the frame time and at least one feature")
    return frame


def _avec_gold(path: Path, *, dimension: str) -> pd.DataFrame:
    """A gold-standard ARFF of recording ``path.stem`` and ``dimension``: time and gold.

    The file names its recording on every row (``Instance_name``) and its dimension in the
    relation (``GOLDSTANDARD_AROUSAL``): both must match where the file lies, so that a file
    copied into the wrong place is not read as another recording's labels.
    """
    frame = read_gold_standard(path)
    lines = frame.attrs["line_numbers"]
    wrong = np.flatnonzero(frame["name"].to_numpy() != path.stem)
    if wrong.size:
        i = int(wrong[0])
        raise DataFormatError(
            f"{path}, line {int(lines[i])}: Instance_name {frame['name'].iloc[i]!r}; expected "
            f"{path.stem!r}, the recording the file is named after"
        )
    relation = str(frame.attrs.get("relation", ""))
    named = relation.upper().removeprefix("GOLDSTANDARD_").lower()
    if relation.upper().startswith("GOLDSTANDARD_") and named != dimension.lower():
        raise DataFormatError(
            f"{path}, line {frame.attrs.get('relation_line', 1)}: relation {relation!r} names "
            f"the {named!r} dimension; expected 'GOLDSTANDARD_{dimension.upper()}' (or "
            f"'GOLDSTANDARD') in the {dimension!r} folder"
        )
    out = frame[["time", "gold"]].copy()
    out.attrs.update(frame.attrs)
    return out


def _csv_gold(path: Path, *, dimension: str, dimensions: Sequence[str]) -> pd.DataFrame:
    """A gold-standard CSV: time and one value column.

    The value column may have any name, but not the name of another dimension of the corpus
    (``time,valence`` in ``gold/arousal/`` is a file copied into the wrong folder).
    """
    frame = csv_layout.read_table(path, missing=(), allow_missing=False)
    if frame.shape[1] != 2:
        raise DataFormatError(
            f"{path}: expected 2 columns (time and the gold standard), found "
            f"{frame.shape[1]}: {list(frame.columns)}"
        )
    name = str(frame.columns[1])
    others = {d.lower() for d in dimensions} - {dimension.lower()}
    if name.lower() in others:
        raise DataFormatError(
            f"{path}, line 1: the gold-standard column is named {name!r}, another dimension of "
            f"this corpus; expected the {dimension!r} gold standard (a file in the wrong folder?)"
        )
    attrs = dict(frame.attrs)
    frame = frame.set_axis(["time", "gold"], axis=1)
    frame.attrs.update(attrs)
    return frame


def _csv_ratings(path: Path) -> pd.DataFrame:
    return csv_layout.read_table(path, missing=(), allow_missing=False)


def _locate_avec(root: Path, modalities: Sequence[str], dimension: str, ratings: str) -> _Files:
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}: expected one of {list(DIMENSIONS)}")
    features = {}
    for mod in modalities:
        if mod not in MODALITIES:
            raise ValueError(f"unknown modality {mod!r}: expected one of {list(MODALITIES)}")
        folder = root / f"features_{mod}" / dimension
        files = _files_by_stem(folder, ".arff")
        if not files:
            raise DataFormatError(
                f"{folder}: no feature files for modality {mod!r} and dimension "
                f"{dimension!r}; expected <stem>.arff files"
            )
        features[mod] = files
    ratings_dirs = {"individual": "ratings_individual", "centred": "ratings_individual_centred"}
    if ratings not in ratings_dirs:
        raise ValueError(f"unknown ratings {ratings!r}: expected one of {list(ratings_dirs)}")
    return _Files(
        features=features,
        ratings=_files_by_stem(root / ratings_dirs[ratings] / dimension, ".csv"),
        gold=_files_by_stem(root / "ratings_gold_standard" / dimension, ".arff"),
        partitions=None,
        read_features=_avec_features,
        read_ratings=read_ratings,
        read_gold=functools.partial(_avec_gold, dimension=dimension),
    )


def _locate_csv(root: Path, modalities: Sequence[str], dimension: str) -> _Files:
    found = csv_layout.locate_csv(root, modalities=modalities, dimension=dimension)
    dims = {p.name for sub in ("ratings", "gold") for p in (root / sub).glob("*") if p.is_dir()}
    return _Files(
        features=found["features"],
        ratings=found["ratings"],
        gold=found["gold"],
        partitions=found["partitions"],
        read_features=csv_layout.read_table,
        read_ratings=_csv_ratings,
        read_gold=functools.partial(_csv_gold, dimension=dimension, dimensions=sorted(dims)),
    )


def _detect_layout(root: Path) -> str:
    if not root.is_dir():
        raise FileNotFoundError(f"corpus root {root} is not a folder")
    if any(p.is_dir() and p.name.startswith("features_") for p in root.iterdir()):
        return "avec2016"
    if (root / "features").is_dir():
        return "csv"
    raise DataFormatError(
        f"{root}: cannot tell the corpus layout: expected 'features_<modality>/' folders "
        "(AVEC 2016) or a 'features/' folder (CSV layout)"
    )


# -------------------------------------------------------------------------------- loading


class _Grid:
    """The time grid of the corpus: frame period fixed by the first file (or given)."""

    def __init__(self, frame_period: float | None):
        self.period = frame_period
        self.source: Path | None = None  # the file the period was inferred from

    def check(self, frame: pd.DataFrame, path: Path) -> np.ndarray:
        """Checks the time column of one file against the grid; returns the times ``[T]``."""
        times = frame.iloc[:, 0].to_numpy(np.float64)
        try:
            period = check_time_grid(
                times,
                path=path,
                line_numbers=frame.attrs.get("line_numbers"),
                frame_period=self.period,
                column=str(frame.columns[0]),
            )
        except DataFormatError as err:
            if self.source is None or self.source == path:
                raise
            raise DataFormatError(f"{err} (the frame period of {self.source})") from None
        if self.period is None:
            self.period, self.source = period, path
        return times


def _same_times(ref: np.ndarray, ref_path: Path, frame: pd.DataFrame, path: Path, grid: _Grid):
    """Checks that a file of a recording has the times of its first file ``ref_path``."""
    # The file's own grid first: a duplicated or lost row is then reported at its line.
    times = grid.check(frame, path)
    period = grid.period
    if len(times) != len(ref):
        raise DataFormatError(
            f"{path}: expected {len(ref)} frames like {ref_path}, found {len(times)} "
            "(features and labels of a recording must have the same length)"
        )
    off = np.flatnonzero(np.abs(times - ref) > 1e-3 * period)
    if off.size:
        i = int(off[0])
        lines = frame.attrs.get("line_numbers")
        where = f"{path}, line {int(lines[i])}" if lines is not None else f"{path}, row {i + 1}"
        raise DataFormatError(
            f"{where}: time {times[i]:g} differs from {ref[i]:g} at the same frame of "
            f"{ref_path} (expected the same time grid)"
        )


def _partition_map(
    files: _Files, stems: list[str], root: Path, partitions: Sequence[str]
) -> dict[str, str]:
    if files.partitions is not None:
        # A listed recording of a loaded partition without files is a lost recording.
        absent = [s for s, p in files.partitions.items() if p in partitions and s not in set(stems)]
        if absent:
            folders = sorted({str(next(iter(f.values())).parent) for f in files.features.values()})
            raise DataFormatError(
                f"{root / 'partitions.csv'}: lists recording {absent[0]!r} (partition "
                f"{files.partitions[absent[0]]!r}), which has no feature file; expected "
                f"'{absent[0]}.csv' in {', '.join(folders)} (recordings listed without files: "
                f"{absent})"
            )
        known = set(csv_layout.PARTITION_ALIASES.values()) | set(partitions)
        unknown = {s: p for s, p in files.partitions.items() if p not in known}
        if unknown:
            # A damaged partition name would otherwise drop its recording without a word.
            stem, part = next(iter(unknown.items()))
            raise DataFormatError(
                f"{root / 'partitions.csv'}: recording {stem!r} is in partition {part!r}; "
                f"expected train, dev, test (or an alias) or one of the partitions loaded "
                f"{list(partitions)} (pass partitions=(..., {part!r}) to load it)"
            )
    out = {}
    for stem in stems:
        if files.partitions is not None:
            if stem not in files.partitions:
                raise DataFormatError(
                    f"{root / 'partitions.csv'}: recording {stem!r} is not listed "
                    "(expected a line '<stem>,<partition>' for every recording)"
                )
            out[stem] = files.partitions[stem]
        else:
            any_file = next(f[stem] for f in files.features.values() if stem in f)
            out[stem] = csv_layout.partition_of_stem(stem, path=any_file)
    return out


def load_corpus(
    root: str | os.PathLike,
    *,
    modality: str | Sequence[str],
    dimension: str | Sequence[str],
    **options,
) -> Corpus:
    """Loads and validates a corpus with one emotion dimension or several.

    Args:
        root: the corpus root.
        modality: one feature set or several (concatenated along features, in this order).
        dimension: one dimension (``"arousal"``), or several as a sequence
            (``("activation", "valence", "dominance")``) or joined by ``+`` as a config
            writes them (``"arousal+valence"``). With several, the first is the corpus's
            ``dimension`` and every recording's ``gold``/``ratings``/``pu``, exactly as if it
            had been loaded alone; each further dimension's gold standard and ratings are in
            ``Recording.other_gold``/``other_ratings`` and its name in
            ``Corpus.other_dimensions``. The features are the first dimension's (the AVEC
            layout writes features per dimension; the CSV layout usually shares them).
        **options: ``layout``, ``gold``, ``pu_ddof``, ``partitions``, ``frame_period``,
            ``ratings``, ``missing_modality`` (see :func:`_load_one`), applied to every
            dimension.

    Returns:
        The :class:`Corpus`.

    Raises:
        ValueError: unknown modality, dimension, layout, gold method (valid ones listed);
            a repeated dimension.
        DataFormatError: malformed or inconsistent files; with several dimensions also a
            recording, partition or length that differs between dimensions.
    """
    dims = _dimension_list(dimension)
    first = _load_one(root, modality=modality, dimension=dims[0], **options)
    if len(dims) == 1:
        return first
    others = {d: _load_one(root, modality=modality, dimension=d, **options) for d in dims[1:]}
    parts = {}
    for part, recs in first.partitions.items():
        parts[part] = [_with_other_dims(rec, part, others, first.root) for rec in recs]
    return dataclasses.replace(first, partitions=parts, other_dimensions=tuple(dims[1:]))


def _dimension_list(dimension: str | Sequence[str]) -> list[str]:
    """``"a+b"`` or ``("a", "b")`` -> ``["a", "b"]``; rejects empty and repeated names."""
    dims = str(dimension).split("+") if isinstance(dimension, str) else [str(d) for d in dimension]
    if not dims or not all(dims):
        raise ValueError(f"dimension: expected one or more names, got {dimension!r}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dimension: repeated dimension in {dims}")
    return dims


def _with_other_dims(rec: Recording, part: str, others: dict[str, Corpus], root) -> Recording:
    """``rec`` with the gold standard and ratings of the same recording in ``others``."""
    gold, ratings = {}, {}
    for dim, corpus in others.items():
        match = [r for r in corpus.partitions.get(part, []) if r.name == rec.name]
        if not match:
            raise DataFormatError(
                f"{root}: recording {rec.name!r} (partition {part!r}) has no labels or features "
                f"for dimension {dim!r}; expected the same recordings for every dimension"
            )
        other = match[0]
        if other.num_frames != rec.num_frames:
            raise DataFormatError(
                f"{root}: recording {rec.name!r} has {rec.num_frames} frames for the first "
                f"dimension but {other.num_frames} for {dim!r}; expected the same length"
            )
        if (other.gold is None) != (rec.gold is None):
            raise DataFormatError(
                f"{root}: recording {rec.name!r} has labels for only some dimensions "
                f"(first: {rec.gold is not None}, {dim!r}: {other.gold is not None})"
            )
        if other.gold is not None:
            gold[dim] = other.gold
        if other.ratings is not None:
            ratings[dim] = other.ratings
    return dataclasses.replace(rec, other_gold=gold, other_ratings=ratings)


def _load_one(
    root: str | os.PathLike,
    *,
    modality: str | Sequence[str],
    dimension: str,
    layout: str = "auto",
    gold: str = "provided",
    pu_ddof: int = 1,
    partitions: Sequence[str] = ("train", "dev", "test"),
    frame_period: float | None = None,
    ratings: str = "individual",
    missing_modality: str = "error",
) -> Corpus:
    """Loads and validates a corpus.

    Args:
        root: the corpus root.
        modality: one feature set or several (concatenated along features, in this order).
        dimension: the emotion dimension, e.g. ``arousal``.
        layout: ``auto`` (detected from the folders), ``avec2016`` or ``csv``.
        gold: ``provided``, ``mean``, ``ccc_centring`` or ``ewe`` (see the module docstring).
        pu_ddof: ddof of the perception uncertainty (std over raters).
        partitions: partitions to load; each must have at least one recording.
        frame_period: expected seconds between frames; inferred from the first file if None.
        ratings: AVEC layout only: ``individual`` (``ratings_individual``) or ``centred``
            (``ratings_individual_centred``).
        missing_modality: ``error`` (default), or ``nan``: a recording that lacks one of
            several feature sets (AVEC ``test_7`` has no EDA/SCL/SCR) gets NaN features for it.

    Returns:
        The :class:`Corpus`. Recordings of a partition without labels (AVEC test) have
        ``gold``, ``ratings`` and ``pu`` None.

    Raises:
        ValueError: unknown modality, dimension, layout, gold method (valid ones listed).
        DataFormatError: malformed or inconsistent files (file, line/column, expectation).
    """
    root = Path(root)
    modalities = (modality,) if isinstance(modality, str) else tuple(modality)
    if not modalities:
        raise ValueError("modality: expected at least one feature set")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"modality: duplicate feature sets in {list(modalities)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {list(LAYOUTS)}")
    if gold not in GOLD_METHODS:
        raise ValueError(f"unknown gold {gold!r}: expected one of {list(GOLD_METHODS)}")
    if missing_modality not in ("error", "nan"):
        raise ValueError(f"unknown missing_modality {missing_modality!r}: expected error or nan")
    if isinstance(partitions, str):
        partitions = (partitions,)
    if layout == "auto":
        layout = _detect_layout(root)
    if layout == "avec2016":
        files = _locate_avec(root, modalities, dimension, ratings)
    else:
        files = _locate_csv(root, modalities, dimension)

    # Stems: every feature set and every label file must refer to the same recordings.
    all_stems = sorted(
        set().union(*(set(f) for f in files.features.values())), key=csv_layout.natural_key
    )
    for mod, stems in files.features.items():
        missing = [s for s in all_stems if s not in stems]
        if missing and missing_modality == "error":
            other = next(f[missing[0]] for f in files.features.values() if missing[0] in f)
            folder = next(iter(stems.values())).parent
            raise DataFormatError(
                f"{folder}: no feature file for recording {missing[0]!r} of modality {mod!r} "
                f"(expected one per recording, like {other}); missing: {missing}"
            )
    for kind, label_files in (("ratings", files.ratings), ("gold standard", files.gold)):
        orphans = [s for s in label_files if s not in all_stems]
        if orphans:
            raise DataFormatError(
                f"{label_files[orphans[0]]}: {kind} for recording {orphans[0]!r}, which has no "
                f"feature files (expected features for {modalities})"
            )
    part_of = _partition_map(files, all_stems, root, partitions)
    by_part: dict[str, list[str]] = {p: [] for p in partitions}
    for stem in all_stems:
        if part_of[stem] in by_part:
            by_part[part_of[stem]].append(stem)
    for part, stems in by_part.items():
        if not stems:
            found = sorted(set(part_of.values()))
            raise DataFormatError(
                f"{root}: partition {part!r} has no recordings (found partitions {found}); "
                "expected at least one, or pass partitions=... to load only some"
            )

    grid = _Grid(frame_period)
    feature_names: list[str] | None = None
    per_mod_names: dict[str, list[str]] = {}
    per_mod_ref: dict[str, Path] = {}
    rater_names: list[str] | None = None
    rater_ref: Path | None = None
    gold_fn = GOLD_METHODS[gold]
    out: dict[str, list[Recording]] = {}
    for part, stems in by_part.items():
        recs = []
        for stem in stems:
            times = ref_path = None
            blocks: dict[str, np.ndarray] = {}
            for mod in modalities:
                path = files.features[mod].get(stem)
                if path is None:
                    continue
                frame = files.read_features(path)
                names = [str(c) for c in frame.columns[1:]]
                if mod not in per_mod_names:
                    per_mod_names[mod], per_mod_ref[mod] = names, path
                elif names != per_mod_names[mod]:
                    raise DataFormatError(
                        f"{path}: expected the {len(per_mod_names[mod])} feature columns of "
                        f"{per_mod_ref[mod]}, found {len(names)} "
                        f"(first difference: {_first_difference(per_mod_names[mod], names)})"
                    )
                if times is None:
                    times, ref_path = grid.check(frame, path), path
                else:
                    _same_times(times, ref_path, frame, path, grid)
                blocks[mod] = _float32(frame, path)
            feats = []
            for mod in modalities:
                if mod in blocks:
                    feats.append(blocks[mod])
                else:  # only reachable with missing_modality="nan"
                    width = len(per_mod_names.get(mod, [])) or _width_of(files, mod)
                    feats.append(np.full((len(times), width), np.nan, dtype=np.float32))
            features = np.concatenate(feats, axis=1) if len(feats) > 1 else feats[0]

            r_mat = g_vec = pu = None
            if stem in files.ratings:
                path = files.ratings[stem]
                frame = files.read_ratings(path)
                names = [str(c) for c in frame.columns[1:]]
                if rater_names is None:
                    rater_names, rater_ref = names, path
                elif names != rater_names:
                    missing = [n for n in rater_names if n not in names]
                    detail = f"missing rater column(s) {missing}" if missing else f"found {names}"
                    raise DataFormatError(
                        f"{path}: expected the rater columns {rater_names} of {rater_ref}; {detail}"
                    )
                _same_times(times, ref_path, frame, path, grid)
                r_mat = frame.iloc[:, 1:].to_numpy(np.float64)
                _float32(frame, path)  # the ratings are kept as float32 too
                if r_mat.shape[1] - pu_ddof < 1:
                    raise DataFormatError(
                        f"{path}: perception uncertainty with pu_ddof={pu_ddof} expected more than "
                        f"{pu_ddof} rater column(s), found {r_mat.shape[1]}"
                    )
                pu = perception_uncertainty(r_mat, ddof=pu_ddof)
            if gold_fn is None:
                if stem in files.gold:
                    path = files.gold[stem]
                    frame = files.read_gold(path)
                    _same_times(times, ref_path, frame, path, grid)
                    g_vec = _float32(frame, path)[:, 0]
                    if np.isnan(g_vec).any():
                        i = int(np.flatnonzero(np.isnan(g_vec))[0])
                        line = frame.attrs["line_numbers"][i]
                        raise DataFormatError(
                            f"{path}, line {int(line)}: expected a gold-standard value, found '?'"
                        )
                elif r_mat is not None:
                    expected = _sibling(files.gold, stem)
                    raise DataFormatError(
                        f"{files.ratings[stem]}: recording {stem!r} has individual ratings but "
                        f"no gold-standard file{f' (expected {expected})' if expected else ''}; "
                        "compute one with gold='mean', gold='ccc_centring' or gold='ewe'"
                    )
            elif r_mat is not None:
                g_vec = gold_fn(r_mat)
            elif stem in files.gold:
                raise DataFormatError(
                    f"{files.gold[stem]}: gold={gold!r} computes the gold standard from the "
                    f"individual ratings, but recording {stem!r} has none (expected "
                    f"{_sibling(files.ratings, stem) or 'its ratings file'}); use gold='provided'"
                )
            recs.append(
                Recording(
                    name=stem,
                    times=times,
                    features=features,
                    gold=g_vec,
                    ratings=None if r_mat is None else r_mat.astype(np.float32),
                    pu=pu,
                )
            )
        labelled = [r.name for r in recs if r.gold is not None]
        if labelled and len(labelled) != len(recs):
            unlabelled = [r.name for r in recs if r.gold is None]
            expected = _sibling(files.gold, unlabelled[0]) or root
            raise DataFormatError(
                f"{expected}: no such file; partition {part!r} has labels for {labelled} but "
                f"none for {unlabelled} (expected labels for all recordings of a partition or "
                "none)"
            )
        rated = [r.name for r in recs if r.ratings is not None]
        if rated and len(rated) != len(recs):
            # Without this, a lost ratings file would silently drop the PU of a recording.
            unrated = [r.name for r in recs if r.ratings is None]
            raise DataFormatError(
                f"{_sibling(files.ratings, unrated[0])}: no such file; "
                f"partition {part!r} has individual ratings for {rated} but none for {unrated} "
                "(expected ratings for all recordings of a partition or none)"
            )
        out[part] = recs

    names_out: list[str] = []
    slices: dict[str, tuple[int, int]] = {}
    for mod in modalities:
        names = per_mod_names.get(mod, [])
        start = len(names_out)
        names_out += [f"{mod}/{n}" for n in names] if len(modalities) > 1 else names
        slices[mod] = (start, len(names_out))
    feature_names = names_out
    return Corpus(
        partitions=out,
        feature_names=feature_names,
        rater_names=rater_names or [],
        frame_period=float(grid.period),
        modalities=modalities,
        dimension=dimension,
        root=root,
        modality_slices=slices,
        gold_method=gold,
    )


def _sibling(by_stem: dict[str, Path], stem: str) -> Path | None:
    """Where the file of ``stem`` would be, beside the others of ``by_stem`` (None if empty)."""
    if not by_stem:
        return None
    other = next(iter(by_stem.values()))
    return other.parent / f"{stem}{other.suffix}"


def _float32(frame: pd.DataFrame, path: Path) -> np.ndarray:
    """The value columns of ``frame`` as float32; a value beyond the float32 range is an error."""
    values = frame.iloc[:, 1:].to_numpy(np.float64)
    with np.errstate(over="ignore"):
        out = values.astype(np.float32)
    bad = np.isinf(out) & ~np.isinf(values)
    if bad.any():
        i, j = (int(k[0]) for k in np.nonzero(bad))
        lines = frame.attrs.get("line_numbers")
        where = f"{path}, line {int(lines[i])}" if lines is not None else f"{path}, row {i + 1}"
        raise DataFormatError(
            f"{where}: column {j + 2} ({frame.columns[j + 1]!r}) expected a number within the "
            f"float32 range (|x| < 3.4e38), found {values[i, j]:g}"
        )
    return out


def _width_of(files: _Files, mod: str) -> int:
    path = next(iter(files.features[mod].values()))
    return files.read_features(path).shape[1] - 1


def _first_difference(a: list[str], b: list[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"column {i + 2}: expected {x!r}, found {y!r}"
    return f"expected {len(a)} features, found {len(b)}"
