"""Calibration table of the embedded corpus: ridge regression dev CCC per modality x dimension.

Protocol (README, embedded corpus): features standardised with train statistics (NaN -> 0),
gold standard shifted back 2.4 s (60 frames, last-value padding, per recording), closed-form
ridge regression with intercept fitted on the concatenated train partition, alpha picked on dev
from a small grid, CCC with population statistics over the concatenated dev partition.

Usage::

    python tools/calibrate_corpus.py                       # recola preset, simulated in memory
    python tools/calibrate_corpus.py --preset small
    python tools/calibrate_corpus.py --write /tmp/corpus   # also time generate_corpus on disk
    python tools/calibrate_corpus.py --root /tmp/corpus    # read an AVEC-layout corpus from disk
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ddat_jax.data import synthetic  # noqa: E402
from ddat_jax.data.preprocess import shift_back  # noqa: E402

MODALITIES = ("audio", "video_appearance", "video_geometric")
DIMENSIONS = ("arousal", "valence")
ALPHAS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
SHIFT = 60


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Concordance correlation with population statistics."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = x.mean(), y.mean()
    den = x.var() + y.var() + (mx - my) ** 2
    return float(2.0 * np.mean((x - mx) * (y - my)) / den) if den > 1e-12 else 0.0


def ridge_dev_ccc(xtr, ytr, xdev, ydev, alphas=ALPHAS):
    """Best dev CCC over ``alphas`` and that alpha; inputs are lists of per-recording arrays."""
    xtr, xdev = np.concatenate(xtr).astype(np.float64), np.concatenate(xdev).astype(np.float64)
    ytr, ydev = np.concatenate(ytr).astype(np.float64), np.concatenate(ydev).astype(np.float64)
    mu = np.nanmean(xtr, axis=0)
    sd = np.nanstd(xtr, axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    xtr = np.nan_to_num((xtr - mu) / sd)
    xdev = np.nan_to_num((xdev - mu) / sd)
    gram = xtr.T @ xtr
    rhs = xtr.T @ (ytr - ytr.mean())
    best = (-np.inf, None)
    for alpha in alphas:
        w = np.linalg.solve(gram + alpha * np.eye(gram.shape[0]), rhs)
        c = ccc(xdev @ w + ytr.mean(), ydev)
        if c > best[0]:
            best = (c, alpha)
    return best


def table_from_arrays(features, gold, stems_train, stems_dev):
    """``{(modality, dimension): (ccc, alpha)}`` from in-memory per-stem arrays."""
    out = {}
    for mod in MODALITIES:
        for dim in DIMENSIONS:
            out[mod, dim] = ridge_dev_ccc(
                [features[s][mod][dim] for s in stems_train],
                [shift_back(gold[s][dim], SHIFT) for s in stems_train],
                [features[s][mod][dim] for s in stems_dev],
                [shift_back(gold[s][dim], SHIFT) for s in stems_dev],
            )
    return out


def simulate(preset: str, seed: int):
    """Simulates train and dev in memory; returns features, gold, stems, seconds."""
    p = synthetic.PRESETS[preset]
    g = synthetic._make_globals(p, seed)
    t0 = time.perf_counter()
    features, gold = {}, {}
    stems = synthetic.recording_stems(p, ("train", "dev"))
    for stem in stems:
        rec = synthetic.simulate_recording(p, seed, stem, _globals=g)
        features[stem], gold[stem] = rec.features, rec.gold
    return features, gold, stems, time.perf_counter() - t0


def read_root(root: pathlib.Path):
    """Reads train and dev features and gold standard from an AVEC-layout folder."""
    from ddat_jax.data import avec2016

    features, gold = {}, {}
    stems = sorted(
        {p.stem for p in (root / "ratings_gold_standard" / "arousal").glob("*.arff")},
        key=lambda s: (s.split("_")[0], int(s.split("_")[1])),
    )
    stems = [s for s in stems if s.startswith(("train_", "dev_"))]
    for stem in stems:
        features[stem] = {
            mod: {
                dim: avec2016.read_arff(root / f"features_{mod}" / dim / f"{stem}.arff")
                .iloc[:, 1:]
                .to_numpy(np.float64)
                for dim in DIMENSIONS
            }
            for mod in MODALITIES
        }
        gold[stem] = {
            dim: avec2016.read_gold_standard(root / "ratings_gold_standard" / dim / f"{stem}.arff")[
                "gold"
            ].to_numpy(np.float64)
            for dim in DIMENSIONS
        }
    return features, gold, stems


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="recola", choices=sorted(synthetic.PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=pathlib.Path, help="read this AVEC-layout corpus instead")
    parser.add_argument("--write", type=pathlib.Path, help="also time generate_corpus here")
    args = parser.parse_args(argv)

    if args.write is not None:
        t0 = time.perf_counter()
        synthetic.generate_corpus(args.write, preset=args.preset, seed=args.seed)
        print(f"generate_corpus({args.preset!r}) to disk: {time.perf_counter() - t0:.1f} s")
    if args.root is not None:
        features, gold, stems = read_root(args.root)
        print(f"read {len(stems)} recordings from {args.root}")
    else:
        features, gold, stems, secs = simulate(args.preset, args.seed)
        print(f"simulated train+dev of {args.preset!r} in memory: {secs:.1f} s")
    train = [s for s in stems if s.startswith("train_")]
    dev = [s for s in stems if s.startswith("dev_")]
    t0 = time.perf_counter()
    table = table_from_arrays(features, gold, train, dev)
    print(f"ridge fits: {time.perf_counter() - t0:.1f} s\n")
    print(f"{'modality':18s} {'arousal':>16s} {'valence':>16s}")
    for mod in MODALITIES:
        cells = [f"{table[mod, d][0]:.3f} (a={table[mod, d][1]:.0e})" for d in DIMENSIONS]
        print(f"{mod:18s} {cells[0]:>16s} {cells[1]:>16s}")


if __name__ == "__main__":
    main()
