"""Tests for ddat_jax.evaluation.report: the run's Markdown report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddat_jax.evaluation import report


def table():
    df = pd.DataFrame(
        {"dev CCC": [0.51234, np.nan], "marks": ["*", ""]},
        index=pd.Index(["DDAT", "STL"], name="system"),
    )
    df.attrs["legend"] = "CCC over the concatenation."
    df.attrs["formats"] = {"dev CCC": ".3f"}
    return df


def test_write_report_renders_tables_figures_and_notes(tmp_path):
    fig = tmp_path / "figures" / "predictions_dev_1.png"
    fig.parent.mkdir()
    fig.write_bytes(b"png")
    path = report.write_report(
        tmp_path,
        "DDAT, arousal, audio",
        {
            "Results": [("Table I: CCC before post-processing.", table()), table()],
            "Figures": [fig],
            "Notes": "Smoke run: numbers are not meaningful.",
        },
    )
    assert path == tmp_path / "report.md"
    md = path.read_text(encoding="utf-8")
    assert md.startswith("# DDAT, arousal, audio\n")
    assert md.index("## Results") < md.index("## Figures") < md.index("## Notes")
    assert "Table: Table I: CCC before post-processing." in md
    assert md.count("| DDAT | 0.512 | * |") == 2
    assert md.count("CCC over the concatenation.") == 2
    assert "![predictions_dev_1](figures/predictions_dev_1.png)" in md
    assert "Smoke run" in md
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_figure_outside_the_folder_gets_a_relative_link(tmp_path):
    md = report.render_report("t", {"F": [tmp_path / "other" / "a.png"]}, tmp_path / "run")
    assert "![a](../other/a.png)" in md


def test_report_rejects_bad_items(tmp_path):
    with pytest.raises(ValueError, match="report items"):
        report.write_report(tmp_path, "t", {"S": [42]})
    with pytest.raises(ValueError, match="title"):
        report.write_report(tmp_path, " ", {})
    with pytest.raises(ValueError, match="report name"):
        report.write_report(tmp_path, "t", {}, name="../r.md")
