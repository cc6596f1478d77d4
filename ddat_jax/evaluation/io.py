"""Tables to files: full-precision CSV and a Markdown table with formatted numbers.

A table is a :class:`pandas.DataFrame` whose ``attrs`` may hold ``"legend"`` (text put
under the Markdown table: aggregation, tests, marks) and ``"formats"`` (column → format
spec, e.g. ``".3f"``). Files are written atomically (:mod:`ddat_jax.atomic`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax import atomic
from ddat_jax.predictions import check_file_stem, slugify

__all__ = [
    "check_file_stem",
    "format_cell",
    "markdown_block",
    "slugify",
    "to_markdown",
    "write_table",
]


def format_cell(value, spec: str | None) -> str:
    """One Markdown cell: NaN/NA as ``n/a``, floats by ``spec`` (default ``".4g"``)."""
    if value is None:
        return ""
    if value is pd.NA:
        return "n/a"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        if spec and spec.endswith("d") and float(value).is_integer():
            return format(int(value), spec)
        if spec and spec.endswith("d"):
            spec = ".4g"  # an integer format on a fractional value: do not raise
        return format(float(value), spec or ".4g")
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and spec:
        return format(int(value), spec)
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, *, formats: Mapping[str, str] | None = None) -> str:
    """Renders ``df`` (with its index) as a GitHub pipe table; NaN shows as ``n/a``.

    Args:
      df: the table ``[rows, columns]``.
      formats: column → format spec; defaults to ``df.attrs["formats"]``, and ``".4g"``
        for other float columns.

    Returns:
      The Markdown table (no trailing newline).
    """
    fmts = {**df.attrs.get("formats", {}), **(formats or {})}
    header = [str(df.index.name or "")] + [str(c) for c in df.columns]
    align = [":---"] + [
        "---:" if pd.api.types.is_numeric_dtype(df[c]) else ":---" for c in df.columns
    ]
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "|" + "|".join(align) + "|",
    ]
    for idx, rec in zip(df.index, df.itertuples(index=False), strict=True):
        cells = [format_cell(idx, None)] + [
            format_cell(v, fmts.get(c)) for c, v in zip(df.columns, rec, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_block(
    df: pd.DataFrame, caption: str, *, formats: Mapping[str, str] | None = None
) -> str:
    """``Table: <caption>``, a blank line, the table and, if any, its legend."""
    parts = [f"Table: {caption.strip()}", "", to_markdown(df, formats=formats)]
    legend = df.attrs.get("legend")
    if legend:
        parts += ["", str(legend)]
    return "\n".join(parts)


def write_table(
    df: pd.DataFrame,
    results_dir: str | os.PathLike,
    name: str,
    *,
    caption: str,
    formats: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """Writes ``<results_dir>/<name>.csv`` and ``<name>.md`` atomically.

    The CSV holds full-precision numbers with the index as first column (read it back
    with ``pandas.read_csv(path, index_col=0)``; NaN is an empty cell). The Markdown file
    is :func:`markdown_block` (pandoc caption, table with rounded numbers, legend).

    Args:
      df: any table, e.g. from :mod:`ddat_jax.evaluation.tables`.
      results_dir: output folder (created if missing).
      name: file stem, e.g. ``"table1_arousal_audio"``.
      caption: the table's caption.
      formats: column → format spec overriding ``df.attrs["formats"]``.

    Returns:
      ``(csv_path, md_path)``.

    Raises:
      ValueError: ``name`` not a plain file name, empty ``caption``, ``df`` not a DataFrame.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    name = check_file_stem(name, "table name")
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError("caption must be a non-empty string")
    out = Path(results_dir)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    atomic.write_text(csv_path, df.to_csv(index=True, lineterminator="\n"))
    atomic.write_text(md_path, markdown_block(df, caption, formats=formats) + "\n")
    return csv_path, md_path
