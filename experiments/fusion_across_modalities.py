"""Table IV of the DDAT paper across feature sets: late fusion and dynamic tuning.

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
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax import reports
from ddat_jax.ddat import artifacts


def read_stream(workdir: Path, label: str, difficulty: str | None) -> dict:
    """Reads one system's predictions (and a difficulty signal) from a DDAT workdir.

    Returns:
      partition → ``{"names", "pred", "pred_pp", "gold", "difficulty"?}``.
    """
    folder = workdir / "predictions" / reports.slugify(label)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no predictions for system {label!r} in {workdir}")
    signals = None
    if difficulty is not None:
        arrays, manifest = artifacts.read_augmented(
            workdir / "stage1" / difficulty, expected_config_hash=None
        )
        n_feat = len(manifest["feature_names"])
        signals = {p: {k: a[:, n_feat:] for k, a in recs.items()} for p, recs in arrays.items()}
    out = {}
    for part in ("dev", "test"):
        files = sorted((folder / part).glob("*.csv"), key=lambda p: _natural(p.stem))
        if not files:
            continue
        frames = [pd.read_csv(f) for f in files]
        names = [f.stem for f in files]
        gold = [fr["gold"].to_numpy() for fr in frames]
        entry = {
            "names": names,
            "pred": [fr["prediction"].to_numpy() for fr in frames],
            "pred_pp": [fr["prediction_pp"].to_numpy() for fr in frames],
            "gold": None if any(np.isnan(g).any() for g in gold) else gold,
        }
        if signals is not None:
            entry["difficulty"] = [signals[part][n][:, 0] for n in names]
        out[part] = entry
    return out


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
        tag = json.loads((wd / "config.json").read_text())["data"]["modality"]
        streams[f"{tag}/{args.system}"] = read_stream(wd, args.system, args.difficulty)
        streams[f"{tag}/{args.baseline}"] = read_stream(wd, args.baseline, args.difficulty)
    ddat = [k for k in streams if k.endswith(f"/{args.system}")]
    base = [k for k in streams if k.endswith(f"/{args.baseline}")]
    rows = {
        f"P_{args.baseline}": base,
        f"P_{args.system}": ddat,
        f"P_{args.system} + P_{args.baseline}": ddat + base,
        f"P_{args.baseline},dt": [f"{k}:dt" for k in base],
        f"P_{args.system},dt": [f"{k}:dt" for k in ddat],
    }
    result = reports.fusion_table(streams, rows, which=args.which)
    reports.write_table(
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
