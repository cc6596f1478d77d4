"""``report/index.md`` (and ``index.html``): the reproduction of all five papers as one page.

Per paper: the parts that produced it (status, wall time, machine), which of the paper's
claims hold on this data and with what test (:mod:`ddat_jax.reproduce.claims`), the tables
that put the paper's values beside ours (embedded), and links to every other table and
figure of its runs.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ddat_jax import atomic
from ddat_jax.evaluation import io as eval_io
from ddat_jax.reproduce import claims as claims_lib
from ddat_jax.reproduce.parts import PAPERS
from ddat_jax.reproduce.runner import Outcome, machine, read_marker

HEADLINE = {
    "ddat": ("paper_table1_vs_paper", "paper_table2_vs_paper", "paper_table3_vs_paper",
             "paper_table4_vs_paper"),
    "soft_prediction": ("soft_table1_ccc", "soft_table2_rmse"),
    "implicit_fusion": ("table2_implicit_fusion", "table1_implicit_fusion"),
    "cer_mtl": ("cer_table_losses", "cer_table3_mtl_stl", "cer_table4_window"),
    "sew": ("sew_table1_unimodal_both", "sew_table2_ablations_both",
            "sew_table3_comparison_both"),
}  # fmt: skip
"""Per paper, the tables embedded in the index (the paper's values beside ours); every
other table and figure is linked."""

SEW_BOTH = "sew_both"


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _minutes(seconds) -> str:
    try:
        return f"{float(seconds) / 60:.1f} min"
    except (TypeError, ValueError):
        return "–"


def join_sew(root: Path, outcomes: Sequence[Outcome]) -> Path | None:
    """Joins the arousal and valence SEW runs into ``root/sew_both/results`` (when both are
    complete); returns that folder."""
    from ddat_jax.methods.sew import combine

    ok = {o.part.name: o.workdir for o in outcomes if o.status in ("ran", "skipped")}
    if "sew_recola_arousal" not in ok or "sew_recola_valence" not in ok:
        return None
    out = root / SEW_BOTH
    for name, (df, caption) in combine.combine(
        ok["sew_recola_arousal"], ok["sew_recola_valence"]
    ).items():
        eval_io.write_table(df, out / "results", name, caption=caption)
    return out


def _status(o: Outcome) -> str:
    if o.status == "ran":
        return f"ran ({_minutes(o.seconds)})"
    if o.status == "skipped":
        return "complete (verified; not rerun)"
    if o.status == "failed":
        return f"**failed** after {_minutes(o.seconds)}: {o.detail}"
    return f"**not run** ({o.detail or 'not complete'})"


def parts_table(outcomes: Sequence[Outcome], at: Path) -> pd.DataFrame:
    """Part × (paper, config, status, wall time and peak resident memory of the run that
    produced it, machine)."""
    rows = []
    for o in outcomes:
        marker = read_marker(o.workdir) or {}
        rows.append(
            {
                "part": f"[{o.part.name}]({_rel(o.workdir / 'report.md', at)})",
                "reproduces": o.part.title,
                "config": marker.get("command", f"configs/{o.part.config}"),
                "status": _status(o),
                "wall time": _minutes(marker.get("seconds")) if marker else "–",
                "peak memory": f"{marker['peak_rss_mib'] / 1024:.1f} GiB"
                if marker.get("peak_rss_mib")
                else "–",
                "finished": marker.get("finished", "–"),
                "machine": marker.get("machine", "–"),
            }
        )
    return pd.DataFrame(rows).set_index("part")


def _tables(folder: Path) -> list[Path]:
    return sorted((folder / "results").glob("*.md"))


def _figures(folder: Path) -> list[Path]:
    return sorted((folder / "figures").glob("*.png"))


def paper_section(paper: str, outcomes: Sequence[Outcome], at: Path, root: Path) -> list[str]:
    """The Markdown of one paper's section."""
    lines = [f"## {PAPERS[paper]}", ""]
    mine = [o for o in outcomes if o.part.paper == paper]
    folders = {o.part.name: o.workdir for o in mine if o.status in ("ran", "skipped")}
    if paper == "sew" and (root / SEW_BOTH / "results").is_dir():
        folders[SEW_BOTH] = root / SEW_BOTH
    lines += [
        "Parts: " + ", ".join(f"`{o.part.name}` ({o.status})" for o in mine) + ".",
        "",
    ]
    if not folders:
        return [*lines, "Nothing of this paper is complete yet.", ""]
    claims = claims_lib.claims(paper, folders)
    lines += ["### Claims of the paper, tested here", ""]
    if claims is None or claims.empty:
        lines += ["No claim could be tested (runs incomplete).", ""]
    else:
        holds = int((claims["holds here"] == "yes").sum())
        lines += [
            f"{holds} of {len(claims)} claims hold here (test and p-value per row; "
            "p from the run's own test, one-sided).",
            "",
            eval_io.to_markdown(claims),
            "",
        ]
    lines += ["### The paper's tables, ours beside the paper's values", ""]
    embedded = set()
    for name in HEADLINE.get(paper, ()):
        for part, folder in folders.items():
            md = folder / "results" / f"{name}.md"
            if md.is_file():
                text = md.read_text().strip()
                lines += [f"From `{part}` ([{name}]({_rel(md, at)})):", "", text, ""]
                embedded.add(md)
    lines += ["### Every table and figure", ""]
    for part, folder in folders.items():
        tabs = _tables(folder)
        figs = _figures(folder)
        links = ", ".join(f"[{t.stem}]({_rel(t, at)})" for t in tabs)
        lines += [f"- `{part}` tables: {links or '–'}"]
        if figs:
            lines += [f"- `{part}` figures: " + ", ".join(
                f"[{f.stem}]({_rel(f, at)})" for f in figs)]  # fmt: skip
    lines.append("")
    figs = [f for folder in folders.values() for f in _figures(folder)]
    for f in figs:
        lines += [f"![{f.stem}]({_rel(f, at)})", ""]
    return lines


def index_markdown(root: Path, outcomes: Sequence[Outcome], *, profile: str, seconds: float) -> str:
    """The whole ``index.md``."""
    at = root / "report"
    import jax

    devices = jax.devices()
    recorded = sum(float((read_marker(o.workdir) or {}).get("seconds", 0.0)) for o in outcomes)
    flag = "" if profile == "full" else f" --{profile}"
    lines = [
        f"# The five papers reproduced ({profile} profile)",
        "",
        f"Command: `python -m ddat_jax.reproduce{flag}` — written "
        f"{dt.datetime.now().isoformat(timespec='seconds')}.",
        "",
        f"Machine: {machine()}; JAX {jax.__version__}, backend {devices[0].platform} "
        f"({devices[0].device_kind}); Python {platform.python_version()}.",
        "",
        f"Wall time: {recorded / 60:.1f} min summed over the parts' recorded runs "
        f"(this invocation: {seconds / 60:.1f} min).",
        "",
        "The data are the embedded corpora (simulated, in the real corpora's on-disk "
        "formats) unless `--roots` named your copies: our numbers are measured on them, the "
        "papers' on the real corpora — read the comparison as 'does the effect appear', "
        "not as a replication of the values.",
        "",
        "## Parts",
        "",
        eval_io.to_markdown(parts_table(outcomes, at)),
        "",
    ]
    for paper in PAPERS:
        if any(o.part.paper == paper for o in outcomes):
            lines += paper_section(paper, outcomes, at, root)
    return "\n".join(lines) + "\n"


def to_html(markdown_text: str, title: str) -> str:
    """A standalone HTML page of the index (Python-Markdown, tables extension)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = (
        "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
    )
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_report(root: Path, outcomes: Sequence[Outcome], *, profile: str, seconds: float) -> Path:
    """Writes ``root/report/index.md`` and ``index.html``; returns the Markdown's path."""
    join_sew(root, outcomes)
    text = index_markdown(root, outcomes, profile=profile, seconds=seconds)
    path = atomic.write_text(root / "report" / "index.md", text)
    atomic.write_text(path.with_suffix(".html"), to_html(text, "ddat_jax: five papers"))
    return path


def console_summary(outcomes: Sequence[Outcome]) -> str:
    """The per-part status lines printed at the end."""
    lines = ["", "part                        status"]
    for o in outcomes:
        lines.append(f"{o.part.name:<28}{_status(o).replace('**', '')}")
    return "\n".join(lines)
