"""Which of each paper's claims hold on the reproduced runs, with the test behind each."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd


def claims(paper: str, folders: Mapping[str, Path]) -> pd.DataFrame | None:
    return None
