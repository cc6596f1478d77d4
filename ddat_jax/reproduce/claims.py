"""Which of each paper's claims hold on the reproduced runs, with the test behind each.

Every claim is read from the tables the runs wrote (``results/*.csv``); nothing is
recomputed here. One row per claim: what the paper says, where it is tested, our effect,
the paper's effect (from its published values, where it reports them), the test and its
p-value, and a verdict:

- ``yes``: the effect has the paper's sign and is significant (one-sided p < .05) — for a
  claim over several cells (feature sets × dimensions, pairs, modalities): in at least
  half of them;
- ``partly``: the paper's sign in at least half of the cells, significant in fewer;
- ``no``: otherwise;
- ``untested``: the run has no test for it (the row says why).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ALPHA = 0.05
COLUMNS = ("claim", "where", "here", "paper", "test", "p", "holds here")

Row = dict[str, str]


def verdict(deltas: Sequence[float], ps: Sequence[float]) -> str:
    """``yes`` / ``partly`` / ``no`` for a claim over cells (Δ > 0 is the paper's sign)."""
    d = np.asarray(deltas, float)
    p = np.asarray(ps, float)
    if d.size == 0:
        return "untested"
    right = np.isfinite(d) & (d > 0)
    sig = right & np.isfinite(p) & (p < ALPHA)
    if sig.sum() * 2 >= d.size:
        return "yes"
    if right.sum() * 2 >= d.size:
        return "partly"
    return "no"


def _cells(deltas: Sequence[float], ps: Sequence[float]) -> str:
    d, p = np.asarray(deltas, float), np.asarray(ps, float)
    n = d.size
    if n == 1:
        return f"Δ = {d[0]:+.3f}"
    right = int(np.sum(d > 0))
    sig = int(np.sum((d > 0) & (p < ALPHA)))
    return f"Δ > 0 in {right}/{n}, p < .05 in {sig}/{n} (mean Δ {np.nanmean(d):+.3f})"


def _p(ps: Sequence[float]) -> str:
    p = np.asarray(ps, float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return "–"
    if p.size == 1:
        return f"{p[0]:.3g}"
    return f"median {np.median(p):.3g}"


def _row(claim, where, deltas, ps, test, paper="") -> Row:
    return {
        "claim": claim,
        "where": where,
        "here": _cells(deltas, ps),
        "paper": paper,
        "test": test,
        "p": _p(ps),
        "holds here": verdict(deltas, ps),
    }


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / "results" / f"{name}.csv"
    return pd.read_csv(path, index_col=0) if path.is_file() else None


# ---------------------------------------------------------------- DDAT
_DDAT_KEYS = {
    "STL": "stl",
    "MTL-RE": "mtl_re",
    "MTL-PU": "mtl_pu",
    "DDAT-RE vector": "ddat_re_vector",
    "DDAT-RE sum": "ddat_re_sum",
    "DDAT-PU": "ddat_pu",
}
_FS = {"audio-eGeMAPS": "audio", "video-appearance": "video_appearance",
       "video-geometric": "video_geometric"}  # fmt: skip
_DIM = {"aro": "arousal", "val": "valence"}


def _paper_delta(system: str, other: str, fs: str, dim: str) -> float:
    from ddat_jax.methods.ddat import paper_values as pv

    a = pv.table_value(pv.TABLE2, system, fs, dim, "test")
    b = pv.table_value(pv.TABLE2, other, fs, dim, "test")
    return np.nan if a is None or b is None else a[0] - b[0]


def ddat_claims(folders: Mapping[str, Path]) -> list[Row]:
    """Table II (after post-processing, test): each DDAT row vs the MTL model of the same
    auxiliary task and vs STL, over the 3 feature sets × 2 dimensions, with the run's
    recording-level permutation test; Table IV: the best fused DDAT streams vs the fused
    baselines, with the same test on the fused predictions."""
    folder = folders.get("ddat_paper")
    vals = _read(folder, "paper_table2_values") if folder else None
    perm = _read(folder, "paper_table2_permutation_p") if folder else None
    rows: list[Row] = []
    if vals is not None and perm is not None:
        cells = [c[: -len(" test")] for c in vals.columns if c.endswith(" test")]
        for system, mtl in (("DDAT-RE vector", "MTL-RE"), ("DDAT-RE sum", "MTL-RE"),
                            ("DDAT-PU", "MTL-PU")):  # fmt: skip
            if system not in vals.index:
                continue
            for other, col in ((mtl, "vs MTL"), ("STL", "vs STL")):
                if other not in vals.index:
                    continue
                d, p, paper = [], [], []
                for cell in cells:
                    fs, dim = cell.rsplit(" ", 1)
                    d.append(vals.loc[system, f"{cell} test"] - vals.loc[other, f"{cell} test"])
                    p.append(perm.loc[system].get(f"{cell} {col}", np.nan))
                    paper.append(
                        _paper_delta(_DDAT_KEYS[system], _DDAT_KEYS[other], _FS[fs], _DIM[dim])
                    )
                paper_d = np.asarray(paper, float)
                rows.append(
                    _row(
                        f"{system} > {other}",
                        f"Table II, test, {len(cells)} feature set × dimension cells",
                        d,
                        p,
                        "one-sided paired permutation over test recordings",
                        f"Δ > 0 in {int(np.sum(paper_d > 0))}/{paper_d.size} "
                        f"(mean Δ {np.nanmean(paper_d):+.3f})",
                    )
                )
    t4 = _read(folder, "paper_table4") if folder else None
    sig4 = _read(folder, "paper_table4_permutation_p") if folder else None
    if t4 is not None:
        from ddat_jax.methods.ddat import paper_values as pv

        best, base = "P_re,dt + P_pu,dt + P_bs", "P_bs"
        if best in t4.index and base in t4.index:
            for dim, col, k in (("arousal", "aro test", 1), ("valence", "val test", 3)):
                d = t4.loc[best, col] - t4.loc[base, col]
                p = np.nan
                if sig4 is not None and f"{col} perm. p" in sig4.columns and best in sig4.index:
                    p = sig4.loc[best, f"{col} perm. p"]
                paper = pv.TABLE4[best][k] - pv.TABLE4[base][k]
                rows.append(
                    _row(f"{best} > {base}", f"Table IV, test, {dim}", [d], [p],
                         "one-sided paired permutation over test recordings (fused streams)",
                         f"Δ = {paper:+.3f}")
                )  # fmt: skip
    return rows


# ---------------------------------------------------------------- soft prediction
def soft_claims(folders: Mapping[str, Path]) -> list[Row]:
    """The soft-prediction paper's effects table (one row per comparison), grouped per
    effect and dimension."""
    folder = folders.get("soft_sewa")
    eff = _read(folder, "soft_effects") if folder else None
    if eff is None:
        return []
    eff = eff.reset_index()
    rows = []
    for (effect, part, dim), g in eff.groupby(["effect", "partition", "dimension"], sort=False):
        paper = g["paper Δ"].to_numpy(float)
        rows.append(
            _row(
                effect,
                f"{part}, {dim}, {len(g)} comparisons",
                g["Δ CCC"].to_numpy(float),
                g["perm. p (recordings)"].to_numpy(float),
                "one-sided paired permutation over recordings",
                f"Δ > 0 in {int(np.sum(paper > 0))}/{paper.size}",
            )
        )
    return rows


# ---------------------------------------------------------------- implicit fusion
def implicit_claims(folders: Mapping[str, Path]) -> list[Row]:
    """Implicit fusion > the mono-modal baseline (α = 0): RECOLA per dimension and main
    modality (test CCC, recording-level permutation test of the run), OMG per modality
    (dev F1, the bootstrap over utterances stated in Table 1's caption)."""
    rows = []
    for dim in ("arousal", "valence"):
        folder = folders.get(f"implicit_recola_{dim}")
        t = _read(folder, "table2_after_postprocessing") if folder else None
        if t is None:
            continue
        for label in t.index:
            if not str(label).startswith("RNN implicit fusion"):
                continue
            base = t.loc[label].get("vs stl")
            if not isinstance(base, str) or base not in t.index:
                continue
            d = t.loc[label, "test CCC"] - t.loc[base, "test CCC"]
            p = t.loc[label].get("stl perm. p", np.nan)
            mod = str(label).split("(")[-1].rstrip(")")
            paper = _implicit_paper(dim, mod)
            rows.append(
                _row("implicit fusion > mono-modal RNN", f"RECOLA {dim}, {mod} main, test",
                     [d], [p], "one-sided paired permutation over test recordings", paper)
            )  # fmt: skip
    folder = folders.get("implicit_omg")
    t1 = (folder / "results" / "table1_implicit_fusion.md") if folder else None
    if t1 is not None and t1.is_file():
        import re

        caption = t1.read_text().splitlines()[0]
        for mod, delta, p in re.findall(
            r"(audio|video): ΔF1 = ([+-][\d.]+) points, 95 % CI \[[^\]]*\], one-sided p = "
            r"(\d+(?:\.\d+)?)",
            caption,
        ):
            paper = {"audio": "ΔF1 = +3.7 points", "video": "ΔF1 = +4.2 points"}[mod]
            rows.append(
                _row("implicit fusion > mono-modal RNN", f"OMG-like, {mod} main, dev macro-F1",
                     [float(delta)], [float(p)], "paired bootstrap over dev utterances", paper)
            )  # fmt: skip
            rows[-1]["here"] = f"ΔF1 = {float(delta):+.1f} points"
    return rows


def _implicit_paper(dim: str, mod: str) -> str:
    from ddat_jax.methods.implicit_fusion.tables import PAPER

    key = "audio" if mod == "audio" else "video"
    base = PAPER.get(("RNN (baseline)", dim, key, "test"))
    fused = PAPER.get(("RNN (implicit fusion)", dim, key, "test"))
    return "" if base is None or fused is None else f"Δ = {fused - base:+.3f}"


# ---------------------------------------------------------------- CER-MTL
def cer_claims(folders: Mapping[str, Path]) -> list[Row]:
    """The CER-MTL claims table of each corpus (loss, MTL vs STL, window size)."""
    rows = []
    for part, corpus in (("cer_creativeit", "CreativeIT-like"), ("cer_recola", "RECOLA")):
        folder = folders.get(part)
        t = _read(folder, "cer_claims") if folder else None
        if t is None:
            continue
        t = t.reset_index()
        for claim, g in t.groupby("claim", sort=False):
            dims = "/".join(str(x) for x in g["dim"])
            rows.append(
                _row(claim, f"{corpus}, {dims}", g["ΔCCC (A−B)"].to_numpy(float),
                     g["p (A > B)"].to_numpy(float),
                     "one-sided paired permutation over recordings" if corpus == "RECOLA"
                     else "one-sided paired permutation over recordings (pooled folds)",
                     "holds (the paper's tables)")
            )  # fmt: skip
    return rows


# ---------------------------------------------------------------- SEW
def sew_claims(folders: Mapping[str, Path]) -> list[Row]:
    """SEW vs the weaker modality's unimodal model and vs each ablation, per pair (dev or
    test CCC, the run's recording-level test)."""
    rows = []
    by_vs: dict[str, tuple[list, list, list]] = {}
    for dim in ("arousal", "valence"):
        folder = folders.get(f"sew_recola_{dim}")
        t = _read(folder, "sew_table2_significance") if folder else None
        if t is None:
            continue
        t = t.reset_index()
        for _, r in t.iterrows():
            d, p, where = by_vs.setdefault(str(r["SEW vs"]), ([], [], []))
            d.append(float(r["ΔCCC"]))
            p.append(float(r["p (CCC)"]))
            where.append(f"{dim} {r['pair']}")
    for vs, (d, p, where) in by_vs.items():
        rows.append(
            _row(f"SEW > {vs}", f"{len(d)} stronger→weaker pairs ({'; '.join(where)})", d, p,
                 "one-sided paired permutation over recordings", "holds in every pair")
        )  # fmt: skip
    return rows


CLAIMS: dict[str, Callable[[Mapping[str, Path]], list[Row]]] = {
    "ddat": ddat_claims,
    "soft_prediction": soft_claims,
    "implicit_fusion": implicit_claims,
    "cer_mtl": cer_claims,
    "sew": sew_claims,
}


def claims(paper: str, folders: Mapping[str, Path]) -> pd.DataFrame | None:
    """The claims table of ``paper`` from its parts' workdirs (``{part name: folder}``);
    None when none of its claims can be read yet."""
    rows = CLAIMS[paper](folders)
    if not rows:
        return None
    return pd.DataFrame(rows, columns=list(COLUMNS)).set_index("claim")
