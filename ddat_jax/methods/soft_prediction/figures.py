"""Figures of the soft-prediction method: the w_E grid (dev CCC of E and σ against w_E,
one figure per dimension and modality) and the paper's Fig. 4 (E and σ predictions vs
gold for one test recording, both dimensions)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ddat_jax import atomic
from ddat_jax.methods.soft_prediction import evaluate
from ddat_jax.methods.soft_prediction.settings import TARGETS, SoftSettings


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return atomic.write_bytes(path, buf.getvalue())


def grid_figure(df, dim: str, mod: str, path: Path, total: float) -> Path:
    """Dev CCC of E and σ over w_E (solid: the target's primary network; dashed: the
    other network's secondary output)."""
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    sub = df[(df["dimension"] == dim) & (df["modality"] == mod)]
    for primary in ("E", "σ"):
        rows = sub[sub["primary"] == primary].sort_values("w_E")
        for target, color in (("E", "tab:blue"), ("σ", "tab:red")):
            style = "-o" if target == primary else "--"
            label = f"{target} ({primary}-primary net)"
            ax.plot(rows["w_E"], rows[f"dev CCC {target}"], style, color=color, label=label, ms=3)
    ax.set_xlabel(f"w_E  (w_σ = {total:g} − w_E)")
    ax.set_ylabel("dev CCC (raw predictions)")
    ax.set_title(f"{mod}, {dim}: multi-task weight grid")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def fig4(ctx, found, path: Path) -> Path:
    """E and σ of the fused (or single-modality) multi-task system vs gold, one test
    recording (dev when test labels are withheld), every dimension."""
    s: SoftSettings = ctx.settings
    row = "+".join(s.modalities) if len(s.modalities) > 1 else s.modalities[0]
    label = f"{row} multi"
    dims = s.dimensions
    fig = Figure(figsize=(10.0, 2.6 * len(dims) * 2))
    k = 0
    for dim in dims:
        for target in TARGETS:
            preds = found[(dim, target)]
            part = evaluate.labelled_parts(ctx, dim)[-1]
            i = min(s.figure_recording, len(preds[label].names(part)) - 1)
            pred = preds.series(label, part, "pred_pp")[i]
            gold = preds.gold(part)[i]
            t = np.arange(pred.size) * preds.frame_period
            k += 1
            ax = fig.add_subplot(len(dims) * 2, 1, k)
            ax.plot(t, gold, color="tab:blue", label="gold standard")
            ax.plot(t, pred, color="tab:red", label="prediction")
            name = preds[label].names(part)[i]
            ax.set_title(f"{dim} {evaluate.SYMBOL[target]} — {label}, {name}", fontsize=9)
            ax.legend(fontsize=7, loc="upper right")
    fig.axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    return _save(fig, path)


def paper_figures(ctx, preds, trained, folder: Path) -> list[Path]:
    """The w_E figures (one per dimension and modality) and Fig. 4."""
    s: SoftSettings = ctx.settings
    folder = Path(folder)
    df = evaluate.grid_table(ctx, trained)
    paths = [
        grid_figure(df, dim, mod, folder / f"w_grid_{dim}_{mod}.png", s.total)
        for dim in s.dimensions
        for mod in s.modalities
    ]
    paths.append(
        fig4(ctx, evaluate.all_streams(ctx, trained), folder / "fig4_soft_predictions.png")
    )
    return paths
