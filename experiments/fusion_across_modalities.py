"""Table IV of the DDAT paper across feature sets: late fusion and dynamic tuning.

The whole paper (every cell, Tables I–IV with P_re, P_pu, P_bs and their tuned versions,
Figs. 2–4) is one command: ``python -m ddat_jax.main --config=configs/ddat_paper.py``. This
script fuses runs made separately (e.g. on your own feature sets).

Each DDAT run (``python -m ddat_jax.main``) covers one feature set; the paper's Table IV fuses
the audio, video-appearance and video-geometric streams. This script reads the per-recording
predictions and stage-1 difficulty signals that several runs wrote, fits the fusions on dev
and reports dev/test CCC.

Example (one dimension, three feature sets, then the fusion)::

    for m in audio video_appearance video_geometric; do
      python -m ddat_jax.main --config=configs/recola_re.py:modality=$m,dimension=arousal \\
          --workdir=runs/arousal_$m
    done
    python experiments/fusion_across_modalities.py --out=runs/arousal_fusion \\
        runs/arousal_audio runs/arousal_video_appearance runs/arousal_video_geometric

Rows (as in the paper): each system fused over the feature sets (``P_<system>``), the DDAT
system together with the STL streams (``P_DDAT + P_STL``, one flat regression), and the
dynamically tuned streams ``y' = ε + γ·y + γ_d·d`` fused (``P_<system>,dt``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax.evaluation import fusion, io
from ddat_jax.methods.ddat import artifacts
from ddat_jax.predictions import (
    MANIFEST,
    Predictions,
    SystemPredictions,
    read_predictions,
    slugify,
)


def read_system(workdir: Path, label: str, dim: str) -> SystemPredictions:
    """One system's predictions from a run's ``predictions/`` folder.

    Reads the manifest layout of :func:`ddat_jax.predictions.write_predictions`; a run
    without a manifest (the legacy writer: ``prediction``, ``prediction_pp``, ``gold``
    columns only) is read from its CSVs as dimension ``dim``, gold withheld where any gold
    cell is empty.
    """
    folder = workdir / "predictions"
    if (folder / MANIFEST).is_file():
        return read_predictions(folder)[label]
    if not (folder / slugify(label)).is_dir():
        raise FileNotFoundError(f"{folder / slugify(label)}: no predictions for {label!r}")
    parts = {}
    for part in ("dev", "test"):
        files = sorted(
            (folder / slugify(label) / part).glob("*.csv"), key=lambda p: _natural(p.stem)
        )
        if not files:
            continue
        frames = [pd.read_csv(f) for f in files]
        gold = [fr["gold"].to_numpy() for fr in frames]
        parts[part] = {
            "names": [f.stem for f in files],
            "pred": [fr["prediction"].to_numpy() for fr in frames],
            "pred_pp": [fr["prediction_pp"].to_numpy() for fr in frames],
            "gold": None if any(np.isnan(g).any() for g in gold) else gold,
        }
    return SystemPredictions.from_arrays(label, (dim,), parts)


def with_difficulty(system: SystemPredictions, label: str, workdir: Path, variant: str | None):
    """``system`` relabelled, with extras ``"difficulty"``: its own stage-1 signal ``[T]``
    as the run wrote it (RE for the RE systems, predicted PU for DDAT-PU/MTL-PU; Eq. 12),
    else (baselines, older runs) the ``variant`` column of ``stage1/<variant>``."""
    own = all("difficulty" in r.extras for recs in system.partitions.values() for r in recs)
    if variant is None or own:
        return dataclasses.replace(system, label=label)
    arrays, manifest = artifacts.read_augmented(
        workdir / "stage1" / variant, expected_config_hash=None
    )
    n_feat = len(manifest["feature_names"])
    parts = {
        part: tuple(
            dataclasses.replace(
                r, extras={**r.extras, "difficulty": arrays[part][r.name][:, n_feat]}
            )
            for r in recs
        )
        for part, recs in system.partitions.items()
    }
    return dataclasses.replace(system, label=label, partitions=parts)


def read_stream(workdir: Path, label: str, difficulty: str | None) -> SystemPredictions:
    """System ``label`` of one run as stream ``"<modality>/<label>"`` with its difficulty."""
    data = json.loads((workdir / "config.json").read_text())["data"]
    system = read_system(workdir, label, data["dimension"])
    return with_difficulty(system, f"{data['modality']}/{label}", workdir, difficulty)


def _natural(stem: str):
    head, _, tail = stem.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (stem, 0)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "workdirs", nargs="+", type=Path, help="DDAT run folders (one per feature set)"
    )
    parser.add_argument("--system", default="DDAT-RE sum", help="DDAT system to fuse")
    parser.add_argument("--baseline", default="STL", help="baseline system")
    parser.add_argument("--difficulty", default="re_sum", help="stage-1 variant for tuning")
    parser.add_argument("--which", default="pred_pp", choices=("pred", "pred_pp"))
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)

    streams = {}
    for wd in args.workdirs:
        for label in (args.system, args.baseline):
            s = read_stream(wd, label, args.difficulty)
            streams[s.label] = s
    preds = Predictions(streams)
    ddat = [k for k in streams if k.endswith(f"/{args.system}")]
    base = [k for k in streams if k.endswith(f"/{args.baseline}")]
    rows = {
        f"P_{args.baseline}": base,
        f"P_{args.system}": ddat,
        f"P_{args.system} + P_{args.baseline}": ddat + base,
        f"P_{args.baseline},dt": [f"{k}:dt" for k in base],
        f"P_{args.system},dt": [f"{k}:dt" for k in ddat],
    }
    result = fusion.fusion_table(preds, rows, which=args.which)
    io.write_table(
        result.table,
        args.out,
        "table4_fusion_across_modalities",
        caption="Table IV: late fusion across feature sets (SLR fitted on dev) and dynamic "
        f"tuning with the stage-1 '{args.difficulty}' difficulty",
    )
    print(result.table.to_string())
    return result.table


if __name__ == "__main__":
    main()
