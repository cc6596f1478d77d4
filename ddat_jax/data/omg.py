"""OMG-Emotion: a real copy converted to the project's CSV layout, and class targets.

The corpus layer reads continuous labels; an utterance-level classification corpus is
stored in the CSV layout (:mod:`ddat_jax.data.csv_layout`) with one "recording" per video
whose "frames" are its utterances (``time`` = utterance index, period 1 s) and whose gold
standard is the class index (0..6 in :data:`CLASSES` order). The embedded preset
(:mod:`ddat_jax.data.sim_omg`) is written that way; :func:`convert_omg` writes a real copy
that way:

* ``omg_TrainVideos.csv``, ``omg_ValidationVideos.csv``, ``omg_TestVideos.csv`` (the OMG
  utterance lists: columns ``video``, ``utterance`` and, where released,
  ``EmotionMaxVote`` — the majority-vote class index, OMG's order
  :data:`CLASSES`);
* one feature table per modality, e.g. ``audio.csv`` (eGeMAPS functionals per utterance)
  and ``video.csv`` (VGG-Face fc7 averaged over the utterance's frames): columns
  ``video``, ``utterance``, then the features.

Utterances of a video are ordered by the number in their name (``utterance_2`` before
``utterance_10``). Lists without ``EmotionMaxVote`` (OMG's test set) get no gold files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ("neutral", "happiness", "sadness", "anger", "surprise", "fear", "disgust")
LISTS = {
    "train": "omg_TrainVideos.csv",
    "dev": "omg_ValidationVideos.csv",
    "test": "omg_TestVideos.csv",
}
GOLD = "EmotionMaxVote"


def _utterance_number(name: str) -> int:
    found = re.findall(r"\d+", Path(str(name)).stem)  # "utterance_10.mp4" -> 10
    return int(found[-1]) if found else 0


def _stem(part: str, video: str) -> str:
    return f"{part}_" + re.sub(r"[^A-Za-z0-9]+", "-", str(video)).strip("-")


def _read_list(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    missing = {"video", "utterance"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: expected columns video, utterance[, {GOLD}]; missing {missing}")
    if GOLD in df.columns:
        bad = ~df[GOLD].isin(range(len(CLASSES)))
        if bad.any():
            raise ValueError(
                f"{path}: {GOLD} must be a class index 0..6; row {int(np.flatnonzero(bad)[0]) + 2} "
                f"holds {df[GOLD][bad].iloc[0]!r}"
            )
    return df


def _write(path: Path, values: np.ndarray, names) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(values, columns=list(names))
    table.insert(0, "time", np.arange(len(table), dtype=float))
    table.to_csv(path, index=False, lineterminator="\n", float_format="%.7g")


def convert_omg(lists_dir: str | os.PathLike, features: Mapping[str, str | os.PathLike], out):
    """Writes a real OMG-Emotion copy in the CSV layout; returns the output root.

    Args:
      lists_dir: the folder with ``omg_TrainVideos.csv`` etc. (a missing list is skipped).
      features: modality → feature table (``video, utterance, f1, f2, ...``).
      out: the output root (``--config.data.root`` of ``configs/omg_implicit.py``).

    Raises:
      ValueError: a list or table without the needed columns, a bad class, or an
        utterance of a list without features.
    """
    out, lists_dir = Path(out), Path(lists_dir)
    tables = {m: pd.read_csv(p).set_index(["video", "utterance"]) for m, p in features.items()}
    parts = []
    for part, name in LISTS.items():
        if not (lists_dir / name).is_file():
            continue
        df = _read_list(lists_dir / name)
        for video, rows in df.groupby("video", sort=False):
            rows = rows.iloc[np.argsort([_utterance_number(u) for u in rows["utterance"]])]
            stem = _stem(part, video)
            keys = list(zip(rows["video"], rows["utterance"], strict=True))
            for mod, table in tables.items():
                absent = [k for k in keys if k not in table.index]
                if absent:
                    raise ValueError(f"features[{mod!r}] has no row for utterance {absent[0]}")
                _write(
                    out / "features" / mod / f"{stem}.csv",
                    table.loc[keys].to_numpy(),
                    table.columns,
                )
            if GOLD in rows.columns:
                _write(
                    out / "gold" / "emotion" / f"{stem}.csv", rows[[GOLD]].to_numpy(), ["emotion"]
                )
            parts.append(f"{stem},{part}")
    (out / "partitions.csv").write_text("stem,partition\n" + "\n".join(parts) + "\n")
    return out
