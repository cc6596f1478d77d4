"""The DDAT paper's Figures 2–4 across the cells (see :mod:`.paper_outputs`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ddat_jax import atomic
from ddat_jax.methods.ddat import paper_outputs
from ddat_jax.methods.ddat import paper_values as pv

FIG2_BARS = {
    "baseline (STL)": ("table2_after_postprocessing", "STL"),
    "DDAT-RE sum": ("table2_after_postprocessing", "DDAT-RE sum"),
    "DDAT-PU": ("table2_after_postprocessing", "DDAT-PU"),
    "DDAT-RE sum, dyn. tuned": ("table4_fusion", "DDAT-RE sum + dyn. tuning (RE)"),
    "DDAT-PU, dyn. tuned": ("table4_fusion", "DDAT-PU + dyn. tuning (PU)"),
}


def _save(fig: Figure, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic.write_bytes(path, buf.getvalue())


def _scored(cell) -> str:
    return "test" if cell.predictions.has_gold("test") else "dev"


def fig2(cells, path: Path) -> Path:
    """Fig. 2: CCC (test where labelled, after post-processing) of the baseline, DDAT-RE,
    DDAT-PU and their dynamically tuned versions per feature set × dimension."""
    keys = list(cells)
    fig = Figure(figsize=(11, 4.2), dpi=120, layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(FIG2_BARS)
    for j, (name, (table, row)) in enumerate(FIG2_BARS.items()):
        vals = []
        for k in keys:
            df = cells[k].tables.get(table)
            col = f"{_scored(cells[k])} CCC"
            ok = df is not None and row in df.index and col in df
            vals.append(float(df.at[row, col]) if ok else np.nan)
        ax.bar(np.arange(len(keys)) + (j - 2) * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(keys)))
    ax.set_xticklabels(
        [f"{pv.FEATURE_SET_NAMES[f]}\n{d} ({_scored(cells[(f, d)])})" for f, d in keys]
    )
    ax.set_ylabel("CCC (after post-processing, paper protocol)")
    ax.legend(fontsize=8, ncol=3)
    ax.set_title("Fig. 2: baseline vs DDAT and dynamically tuned DDAT")
    return _save(fig, path)


def fig3(result, dim: str, path: Path) -> Path:
    """Fig. 3: the best fusion (dev) vs the fused baseline P_bs vs gold, one recording."""
    best = paper_outputs.best_row(result)
    preds = result.predictions
    part = "test" if preds.has_gold("test") else "dev"
    fig = Figure(figsize=(11, 3.6), dpi=120, layout="constrained")
    ax = fig.subplots()
    ref = preds[best]
    t = np.arange(ref.partitions[part][0].num_frames) * preds.frame_period
    ax.plot(t, ref.series(part, "gold")[0], color="k", lw=1.4, label="gold standard")
    if "P_bs" in preds.labels:
        ax.plot(t, preds["P_bs"].series(part, "pred")[0], lw=1, label="baseline (P_bs)")
    ax.plot(t, ref.series(part, "pred")[0], lw=1, label=f"best fusion: {best}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(dim)
    ax.set_title(f"Fig. 3: {dim}, {part} recording {ref.partitions[part][0].name}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig4(results, path: Path) -> Path:
    """Fig. 4: each stream's share |γ_i| / Σ|γ| in the best fusion of each dimension."""
    fig = Figure(figsize=(11, 3.8), dpi=120, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    for ax, (dim, res) in zip(axes, results.items(), strict=True):
        best = paper_outputs.best_row(res)
        f = res.fusions.get(best)
        if f is None:
            names, share = [best], np.ones(1)
        else:
            names, coefs = list(f.names), np.abs(np.asarray(f.coefs))
            share = coefs / max(coefs.sum(), 1e-12)
        ax.barh(np.arange(len(names)), share)
        ax.set_yticks(np.arange(len(names)))
        ax.set_yticklabels(names, fontsize=8)
        ax.set_xlabel("contribution |γ| / Σ|γ|")
        ax.set_title(f"{dim}: {best}", fontsize=9)
    fig.suptitle("Fig. 4: contribution of each stream and model to the best fusion (dev)")
    return _save(fig, path)


def write_figures(cells, results, folder: Path) -> list[Path]:
    """Figs. 2–4 (Figs. 3–4 only where Table IV could be fitted)."""
    paths = [fig2(cells, folder / "fig2_ccc_per_stream.png")]
    for dim, res in results.items():
        paths.append(fig3(res, dim, folder / f"fig3_best_fusion_{dim}.png"))
    if results:
        paths.append(fig4(results, folder / "fig4_fusion_contributions.png"))
    return paths
