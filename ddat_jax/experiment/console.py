"""What a person reads at the end of a run: one compact table, a few columns wide."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd


def _cell(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "   -  " if not math.isfinite(v) else f"{v:6.3f}"


def summary(tables: Mapping[str, pd.DataFrame]) -> str:
    """System × {dev, test} CCC before and after post-processing, with significance marks.

    Args:
      tables: the run's tables; uses ``table1_before_postprocessing`` and
        ``table2_after_postprocessing`` (columns ``dev CCC``, ``test CCC``, ``marks``).
    """
    before = tables.get("table1_before_postprocessing")
    after = tables.get("table2_after_postprocessing")
    if before is None:
        return ""
    width = max(len(str(i)) for i in before.index) + 2
    head = f"{'system':<{width}}{'dev':>7}{'test':>7}  | pp: {'dev':>6}{'test':>7}  sig."
    lines = ["", "CCC (concatenated recordings)", head, "-" * len(head)]
    for label in before.index:
        row = before.loc[label]
        line = f"{label:<{width}}{_cell(row.get('dev CCC')):>7}{_cell(row.get('test CCC')):>7}"
        if after is not None and label in after.index:
            a = after.loc[label]
            marks = a.get("marks", "")
            marks = "" if not isinstance(marks, str) else marks
            line += f"  |     {_cell(a.get('dev CCC')):>6}{_cell(a.get('test CCC')):>7}  {marks}"
        lines.append(line)
    return "\n".join(lines)


def route_library_logs(workdir: Path, *, console: bool = False, name: str = "log.txt") -> None:
    """Other libraries' INFO logs (orbax, absl, jax) go to ``workdir/<name>``; the console
    keeps their warnings only, unless ``console``."""
    from absl import logging as absl_logging

    workdir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(workdir / name)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if not console:
        absl_logging.get_absl_handler().setLevel(logging.WARNING)
        for other in root.handlers:  # e.g. a basicConfig handler outside an absl app
            if other is not handler and isinstance(other, logging.StreamHandler):
                other.setLevel(logging.WARNING)
