"""A short Markdown report of a run: its tables, links to its figures, notes.

A report is a title and sections; a section is a heading and a list of items, each one of

* ``str`` -- a paragraph of notes (Markdown as is);
* ``pandas.DataFrame`` -- a table (:func:`~ddat_jax.evaluation.io.to_markdown` and its
  ``attrs["legend"]``);
* ``(caption, DataFrame)`` -- a table with a caption
  (:func:`~ddat_jax.evaluation.io.markdown_block`);
* ``pathlib.Path`` (any ``os.PathLike``) -- a figure, linked relative to the report's folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ddat_jax import atomic
from ddat_jax.evaluation.io import check_file_stem, markdown_block, to_markdown

__all__ = ["render_item", "render_report", "write_report"]

Item = str | pd.DataFrame | tuple[str, pd.DataFrame] | os.PathLike


def render_item(item: Item, folder: Path) -> str:
    """Markdown of one report item (module docstring); figures relative to ``folder``."""
    if isinstance(item, str):
        return item.strip()
    if isinstance(item, pd.DataFrame):
        legend = item.attrs.get("legend")
        return to_markdown(item) + (f"\n\n{legend}" if legend else "")
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], pd.DataFrame):
        return markdown_block(item[1], str(item[0]))
    if isinstance(item, os.PathLike):
        path = Path(item)
        try:
            link = path.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            link = Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
        return f"![{path.stem}]({link})"
    raise ValueError(
        f"report items are str, DataFrame, (caption, DataFrame) or a path; got "
        f"{type(item).__name__}"
    )


def render_report(title: str, sections: Mapping[str, Sequence[Item]], folder: Path) -> str:
    """The report's Markdown: ``# title``, then per section ``## heading`` and its items."""
    if not isinstance(title, str) or not title.strip():
        raise ValueError("title must be a non-empty string")
    blocks = [f"# {title.strip()}"]
    for heading, items in sections.items():
        if isinstance(items, str | pd.DataFrame | os.PathLike):
            items = [items]
        blocks.append(f"## {heading}")
        blocks.extend(render_item(item, folder) for item in items)
    return "\n\n".join(blocks) + "\n"


def write_report(
    folder: str | os.PathLike,
    title: str,
    sections: Mapping[str, Sequence[Item]],
    *,
    name: str = "report.md",
) -> Path:
    """Writes ``<folder>/<name>`` (default ``report.md``) atomically and returns its path.

    Args:
      folder: the run's folder (figure links are made relative to it).
      title: the report's title, e.g. ``"DDAT, RECOLA arousal, audio"``.
      sections: heading → items (module docstring), in order; e.g.
        ``{"Results": [("Table I", t1), ("Table II", t2)], "Figures": [png],
        "Notes": ["Smoke run: numbers are not meaningful."]}``.
      name: file name.
    """
    folder = Path(folder)
    text = render_report(title, sections, folder)
    return atomic.write_text(folder / check_file_stem(name, "report name"), text)
