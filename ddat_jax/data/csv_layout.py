"""A generic folder-of-CSVs layout for your own corpora (SEWA-like, any frame rate).

Layout of a corpus root::

    <root>/
      features/<modality>/<stem>.csv               one file per recording and feature set
      features/<modality>/<dimension>/<stem>.csv   (alternative: features per dimension, as AVEC)
      ratings/<dimension>/<stem>.csv               individual rater traces (optional)
      gold/<dimension>/<stem>.csv                  gold standard (optional)
      partitions.csv                               stem -> partition (optional)

Modality and dimension names are the folder names, e.g.
``load_corpus(root, modality="egemaps", dimension="valence", layout="csv")``; several
modalities (``modality=["egemaps", "vggface"]``) are concatenated along the features, with the
feature names prefixed ``<modality>/``. Recordings are ordered naturally by stem (``x_2`` before
``x_10``).

File formats (UTF-8, a byte-order mark allowed, or UTF-16 with one; one header line; ``,``,
``;`` or tab separated, detected from the header; LF, CRLF or CR-only line endings, and the
last line ends with one too; ``"``-quoted fields allowed):

* **Features** ``features/<modality>/[<dimension>/]<stem>.csv``: first column ``time`` (seconds;
  ``frameTime``/``frametime`` accepted), then one column per feature, any names. Missing values:
  an empty field, ``?``, ``nan`` or ``NA`` (read as NaN; set to 0 after standardisation).
  When ``features/<modality>/<dimension>/`` exists it is used for that dimension, otherwise
  ``features/<modality>/``.
* **Ratings** ``ratings/<dimension>/<stem>.csv``: ``time`` then one column per rater
  (e.g. ``time,R1,R2,R3``). Every file of a dimension has the same rater columns. No missing
  values.
* **Gold standard** ``gold/<dimension>/<stem>.csv``: ``time`` and one value column (any name,
  e.g. ``time,arousal``). No missing values. If absent, the gold standard can be computed from
  the ratings (``load_corpus(..., gold="mean" | "ccc_centring" | "ewe")``).
* **Partitions**: ``partitions.csv`` with header ``stem,partition`` (e.g. ``Train_DE_01,train``);
  without it, the partition is the stem's prefix before the first ``_`` (``train_01``,
  ``dev_7``, ``test_3``; ``devel``/``development``/``val``/``valid``/``validation`` mean
  ``dev``, ``training`` means ``train``, ``testing`` means ``test``; case-insensitive).
  ``load_corpus`` loads ``partitions=("train", "dev", "test")`` by default and each must have
  recordings: pass e.g. ``partitions=("train", "dev")`` for a corpus without a test set.
* **Time grid**: the time column of every file is strictly increasing with a constant step, the
  frame period (inferred from the median step, e.g. 0.04 s for RECOLA, 0.1 s for SEWA, or given
  as ``load_corpus(..., frame_period=0.1)``). Features and labels of one recording have the
  same number of frames and the same times. A partition may have no labels at all (e.g. a
  withheld test set): then put no ``ratings``/``gold`` files for its stems.

Every malformed file raises :class:`~ddat_jax.data.avec2016.DataFormatError` naming the file,
the line or column, and what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax.data.avec2016 import (
    DataFormatError,
    _atomic_write,
    _Block,
    _decode,
    _format_rows,
    _parse_block,
    _read_bytes,
    _require_final_line_break,
    _rows_to_bytes,
    _where,
)

__all__ = [
    "PARTITION_ALIASES",
    "locate_csv",
    "natural_key",
    "partition_of_stem",
    "read_partitions",
    "read_table",
    "write_table",
]

PARTITION_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "devel": "dev",
    "development": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "test": "test",
    "testing": "test",
}
"""Stem prefixes (lower case) understood as partition names when no partitions.csv exists."""

_FEATURE_MISSING = ("", "?", "nan", "NaN", "NAN", "NA")
_LABEL_MISSING = ("?", "nan", "NaN", "NAN", "NA")
_TIME_NAMES = ("time", "frametime")


def natural_key(stem: str) -> tuple:
    """Sort key that orders ``train_2`` before ``train_10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", stem))


def partition_of_stem(stem: str, *, path: str | os.PathLike | None = None) -> str:
    """Partition of a recording from its stem prefix (``train_1`` -> ``train``).

    Raises:
        DataFormatError: the prefix is not a known partition name.
    """
    prefix = stem.split("_", 1)[0].lower()
    if prefix in PARTITION_ALIASES and "_" in stem:
        return PARTITION_ALIASES[prefix]
    where = f"{path}: " if path is not None else ""
    raise DataFormatError(
        f"{where}cannot tell the partition of recording {stem!r}: expected a stem "
        f"'<partition>_<id>' with partition in {sorted(set(PARTITION_ALIASES))}, or a "
        "partitions.csv (stem,partition) at the corpus root"
    )


def _header(path, raw: bytes, sep: str | None) -> tuple[list[str], str, int]:
    end = raw.find(b"\n")
    head = _decode(raw if end < 0 else raw[:end], path, 1).strip()
    if sep is None:
        sep = next((c for c in (",", ";", "\t") if c in head), ",")
    names = [n.strip().strip('"').strip() for n in head.split(sep)]
    return names, sep, (len(raw) if end < 0 else end + 1)


def read_table(
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    missing: Sequence[str] = _FEATURE_MISSING,
    allow_missing: bool = True,
) -> pd.DataFrame:
    """Reads a numeric CSV whose first column is the frame time.

    Args:
        path: the ``.csv`` file.
        sep: field separator; detected from the header (``,``, ``;`` or tab) when None.
        missing: tokens read as NaN.
        allow_missing: when False, a missing value is an error (labels).

    Returns:
        DataFrame with ``time`` first (renamed from ``frameTime``/``frametime``), then the other
        columns as float64. ``attrs["path"]`` and ``attrs["line_numbers"]`` (1-based file line
        of each row) are set.

    Raises:
        DataFormatError: empty or truncated file (no line break after the last line), bad
            header, wrong field count, non-numeric or infinite value, missing value where not
            allowed.
    """
    raw = _read_bytes(path)
    if not raw or raw.isspace():
        raise DataFormatError(f"{path}: file is empty; expected a header line 'time,...'")
    names, sep, start = _header(path, raw, sep)
    if names[0].lower() not in _TIME_NAMES:
        raise DataFormatError(
            f"{_where(path, 1)}: expected the first column to be 'time' (or frameTime), "
            f"found {names[0]!r}"
        )
    names[0] = "time"
    if len(names) < 2:
        raise DataFormatError(f"{_where(path, 1)}: expected 'time' and at least one more column")
    empty = [j + 1 for j, n in enumerate(names) if not n]
    if empty:
        raise DataFormatError(
            f"{_where(path, 1)}: column {empty[0]} has no name in the header; expected a name "
            "for every column"
        )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataFormatError(
            f"{_where(path, 1)}: duplicate column names {dup}; expected unique column names"
        )
    data = _Block(memoryview(raw)[start:], 2)
    if not data:
        raise DataFormatError(
            f"{path}: no data rows after the header; truncated file? (expected one row per frame)"
        )
    frame = _parse_block(
        path,
        data,
        sep=sep,
        names=names,
        numeric=[True] * len(names),
        what=f"one per header column ({len(names)})",
        na_values=missing,
        quotechar='"',
    )
    _require_final_line_break(path, raw)
    values = frame.to_numpy()
    bad = np.isnan(values)
    if not allow_missing:
        check = bad
    else:
        check = np.zeros_like(bad)
        check[:, 0] = bad[:, 0]  # the time is never optional
    if check.any():
        i, j = (int(k[0]) for k in np.nonzero(check))
        raise DataFormatError(
            f"{_where(path, int(frame.attrs['line_numbers'][i]))}: column {j + 1} "
            f"({names[j]!r}) expected a number, found a missing value"
        )
    return frame


def write_table(
    path: str | os.PathLike, frame: pd.DataFrame, *, sep: str = ",", float_format="%.10g"
) -> None:
    """Writes ``frame`` (``time`` first) as a CSV of this layout; atomic; NaN as empty field.

    Args:
        path: the output file (folders are created).
        frame: ``[T, 1 + C]`` table; the first column is the time in seconds.
        sep: field separator.
        float_format: %-format of float values.
    """
    cols = [str(c) for c in frame.columns]
    if not cols or cols[0].lower() not in _TIME_NAMES:
        raise ValueError(f"{path}: the first column must be 'time', got {cols[:1]}")
    rows = _format_rows(frame, sep, float_format, 9, nan_token="")
    payload = _rows_to_bytes([sep.join(cols)], rows, newline="\n")
    _atomic_write(path, payload)


def read_partitions(path: str | os.PathLike) -> dict[str, str]:
    """Reads ``partitions.csv`` (header ``stem,partition``) into ``{stem: partition}``.

    Partition names are kept as written, except the aliases of :data:`PARTITION_ALIASES`,
    which are mapped to ``train``/``dev``/``test``. A last line without a line break must
    name one of those (otherwise it may be truncated).

    Raises:
        DataFormatError: bad header, a line that is not ``<stem>,<partition>``, a stem listed
            twice, a possibly truncated last line.
    """
    raw = _read_bytes(path)
    lines = _decode(raw, path, 1).split("\n")
    lines = [ln.rstrip("\r") for ln in lines]
    if not lines or not lines[0].strip():
        raise DataFormatError(f"{path}: file is empty; expected a header 'stem,partition'")
    sep = next((c for c in (",", ";", "\t") if c in lines[0]), ",")
    header = [h.strip().strip('"').strip().lower() for h in lines[0].split(sep)]
    if header != ["stem", "partition"]:
        raise DataFormatError(
            f"{_where(path, 1)}: expected the header 'stem,partition', found {lines[0]!r}"
        )
    out: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip().strip('"').strip() for f in line.split(sep)]
        if len(fields) != 2 or not all(fields):
            raise DataFormatError(
                f"{_where(path, number)}: expected '<stem>{sep}<partition>', found {line!r}"
            )
        stem, part = fields
        if stem in out:
            raise DataFormatError(
                f"{_where(path, number)}: stem {stem!r} listed twice; expected each recording once"
            )
        if number == len(lines) and part.lower() not in PARTITION_ALIASES:
            # The last line has no line break: a cut-off partition name ('tes') would
            # otherwise silently move the recording out of the partitions loaded.
            raise DataFormatError(
                f"{_where(path, number)}: the file does not end with a line break and the last "
                f"partition name {part!r} is not one of {sorted(set(PARTITION_ALIASES))}; "
                "expected a complete last line (add a line break at the end if it is)"
            )
        out[stem] = PARTITION_ALIASES.get(part.lower(), part)
    return out


def _csv_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.csv"), key=lambda p: natural_key(p.stem))}


def _subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def locate_csv(root: str | os.PathLike, *, modalities: Sequence[str], dimension: str) -> dict:
    """Finds the files of a corpus in the CSV layout.

    Args:
        root: the corpus root.
        modalities: feature sets to load (sub-folders of ``features/``).
        dimension: the emotion dimension (sub-folder of ``ratings/`` or ``gold/``).

    Returns:
        ``{"features": {modality: {stem: path}}, "ratings": {stem: path},
        "gold": {stem: path}, "partitions": {stem: partition} | None}``.

    Raises:
        ValueError: unknown modality or dimension (the valid ones are listed).
        DataFormatError: a modality folder without CSV files.
    """
    root = Path(root)
    feat_root = root / "features"
    available = _subdirs(feat_root)
    for mod in modalities:
        if mod not in available:
            raise ValueError(
                f"unknown modality {mod!r} for the CSV corpus at {root}: expected one of "
                f"{available} (sub-folders of {feat_root})"
            )
    dims = sorted(set(_subdirs(root / "ratings")) | set(_subdirs(root / "gold")))
    if dimension not in dims:
        raise ValueError(
            f"unknown dimension {dimension!r} for the CSV corpus at {root}: expected one of "
            f"{dims} (sub-folders of {root / 'ratings'} or {root / 'gold'})"
        )
    features = {}
    for mod in modalities:
        folder = feat_root / mod
        if (folder / dimension).is_dir():
            folder = folder / dimension
        files = _csv_files(folder)
        if not files:
            raise DataFormatError(
                f"{folder}: no feature files for modality {mod!r}; expected <stem>.csv files"
            )
        features[mod] = files
    part_file = root / "partitions.csv"
    return {
        "features": features,
        "ratings": _csv_files(root / "ratings" / dimension),
        "gold": _csv_files(root / "gold" / dimension),
        "partitions": read_partitions(part_file) if part_file.is_file() else None,
    }
