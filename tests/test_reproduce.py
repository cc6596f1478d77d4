"""python -m ddat_jax.reproduce: part selection, configs, resumable runs, claims, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ddat_jax.experiment import validate
from ddat_jax.reproduce import claims, parts, report, runner

ROOT = Path(__file__).resolve().parents[1]


def test_select_adds_the_parts_a_paper_reads():
    names = [p.name for p in parts.select(["sew"])]
    # SEW's Table 3 reads the DDAT cells and the implicit-fusion runs; run order kept
    assert names == [
        "ddat_paper",
        "implicit_recola_arousal",
        "implicit_recola_valence",
        "sew_recola_arousal",
        "sew_recola_valence",
    ]
    assert [p.name for p in parts.select([])] == [p.name for p in parts.PARTS]
    assert [p.name for p in parts.select(["implicit_recola_valence"])] == [
        "ddat_paper",
        "implicit_recola_valence",
    ]
    assert {p.paper for p in parts.PARTS} == set(parts.PAPERS)


def test_select_rejects_an_unknown_paper():
    with pytest.raises(ValueError, match=r"unknown paper\(s\) \['ddta'\]; valid: \['ddat'"):
        parts.select(["ddta"])


def test_parse_roots(tmp_path):
    assert parts.parse_roots(f"recola={tmp_path}, sewa={tmp_path}") == {
        "recola": str(tmp_path),
        "sewa": str(tmp_path),
    }
    assert parts.parse_roots("") == {}
    with pytest.raises(ValueError, match="expected <corpus>=<folder>"):
        parts.parse_roots("recola")
    with pytest.raises(ValueError, match="unknown corpus 'avec'"):
        parts.parse_roots(f"avec={tmp_path}")
    with pytest.raises(ValueError, match="is not a folder"):
        parts.parse_roots(f"recola={tmp_path / 'missing'}")


@pytest.mark.parametrize("profile", parts.PROFILES)
def test_every_part_config_resolves_and_validates(profile, tmp_path):
    wds = {p.name: tmp_path / p.name for p in parts.PARTS}
    for part in parts.PARTS:
        cfg = parts.part_config(parts.configs_dir(), part, profile, wds, {"recola": "/data/r"})
        validate(cfg)  # the whole config is checked before any data is loaded
        assert (profile in str(cfg.get("variant", ""))) == (profile != "full")
        assert cfg.data.root == ("/data/r" if part.corpus == "recola" else "")
    sew = next(p for p in parts.PARTS if p.name == "sew_recola_valence")
    cfg = parts.part_config(parts.configs_dir(), sew, profile, wds, {})
    assert dict(cfg.sew.compare_workdirs)["implicit fusion"] == str(
        tmp_path / "implicit_recola_valence"
    )
    imp = next(p for p in parts.PARTS if p.name == "implicit_recola_arousal")
    cfg = parts.part_config(parts.configs_dir(), imp, profile, wds, {})
    assert tuple(cfg.implicit.ddat_workdirs) == (
        str(tmp_path / "ddat_paper" / "cells" / "audio-arousal"),
        str(tmp_path / "ddat_paper" / "cells" / "video_geometric-arousal"),
    )


def test_set_field_names_a_missing_field():
    cfg = parts.load_config(parts.configs_dir(), parts.PARTS[1], "smoke")
    with pytest.raises(KeyError, match="no field 'data.rooot'"):
        parts.set_field(cfg, "data.rooot", "/x")


def _fake_child(calls, fail=()):
    """An in-process stand-in for the spawned experiment: writes a table and a report."""

    def run_child(cfg, wd: Path, *, compilation_cache: bool, overwrite: bool) -> int:
        calls.append(wd.name)
        if wd.name in fail:
            return -9
        (wd / "results").mkdir(parents=True, exist_ok=True)
        (wd / "results" / "t.csv").write_text(f"a,b\n1,{cfg.seed}\n")
        (wd / "report.md").write_text("# r\n")
        return 0

    return run_child


def test_run_parts_resumes_verified_parts_and_reruns_changed_ones(tmp_path):
    sel = parts.select(["soft_prediction", "cer_mtl"])
    calls, lines = [], []
    kw = dict(root=tmp_path, profile="smoke", configs=parts.configs_dir(), roots={})
    out = runner.run_parts(sel, run_child=_fake_child(calls), echo=lines.append, **kw)
    assert [o.status for o in out] == ["ran"] * 3 and calls == [p.name for p in sel]
    marker = json.loads((tmp_path / "soft_sewa" / runner.MARKER).read_text())
    assert set(marker["files"]) == {"results/t.csv", "report.md"}
    assert marker["config"]["method"] == "soft_prediction"
    assert any("ETA" in line for line in lines)

    calls.clear()
    out = runner.run_parts(sel, run_child=_fake_child(calls), echo=lines.append, **kw)
    assert [o.status for o in out] == ["skipped"] * 3 and calls == []

    (tmp_path / "cer_recola" / "results" / "t.csv").write_text("a,b\n1,99\n")  # edited
    out = runner.run_parts(sel, run_child=_fake_child(calls), echo=lines.append, **kw)
    assert [o.status for o in out] == ["skipped", "skipped", "ran"] and calls == ["cer_recola"]


def test_a_failed_part_does_not_stop_the_others_but_its_readers(tmp_path):
    sel = parts.select(["implicit_fusion"])  # ddat_paper + three implicit parts
    calls, lines = [], []
    out = runner.run_parts(
        sel,
        root=tmp_path,
        profile="smoke",
        configs=parts.configs_dir(),
        roots={},
        run_child=_fake_child(calls, fail={"ddat_paper"}),
        echo=lines.append,
    )
    status = {o.part.name: o.status for o in out}
    assert status == {
        "ddat_paper": "failed",
        "implicit_recola_arousal": "not run",
        "implicit_recola_valence": "not run",
        "implicit_omg": "ran",
    }
    failed = next(o for o in out if o.status == "failed")
    assert "signal 9" in failed.detail and "out of memory" in failed.detail
    assert not (tmp_path / "ddat_paper" / runner.MARKER).exists()


@pytest.mark.parametrize(
    ("deltas", "ps", "expected"),
    [
        ([0.1, 0.2], [0.01, 0.04], "yes"),
        ([0.1, 0.2, -0.1, 0.3], [0.01, 0.2, 0.9, 0.03], "yes"),  # 2 of 4 significant
        ([0.1, 0.2, -0.1], [0.01, 0.2, 0.9], "partly"),
        ([0.1, -0.2, -0.1], [0.01, 0.9, 0.9], "no"),
        ([-0.1], [0.01], "no"),  # a 'significant' p with the wrong sign is not support
        ([0.1], [np.nan], "partly"),
        ([], [], "untested"),
    ],
)
def test_verdict(deltas, ps, expected):
    assert claims.verdict(deltas, ps) == expected


def _results(folder: Path, name: str, df: pd.DataFrame, caption: str = "c") -> None:
    (folder / "results").mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "results" / f"{name}.csv")
    (folder / "results" / f"{name}.md").write_text(f"Table: {caption}\n\n| a |\n|---|\n| 1 |\n")


def test_cer_and_sew_claims_from_their_tables(tmp_path):
    cer = tmp_path / "cer_recola"
    _results(
        cer,
        "cer_claims",
        pd.DataFrame(
            {
                "claim": ["MTL > STL", "MTL > STL"],
                "dim": ["Act", "Val"],
                "ΔCCC (A−B)": [0.05, 0.02],
                "p (A > B)": [0.01, 0.30],
            }
        ).set_index("claim"),
    )
    t = claims.claims("cer_mtl", {"cer_recola": cer})
    assert t.loc["MTL > STL", "holds here"] == "yes"  # significant in 1 of 2 cells
    assert t.loc["MTL > STL", "where"] == "RECOLA, Act/Val"
    assert claims.claims("cer_mtl", {}) is None


def test_ddat_claims_use_the_permutation_p_and_the_paper_values(tmp_path):
    folder = tmp_path / "ddat_paper"
    cols = [f"{fs} {d} {p}" for fs in ("audio-eGeMAPS", "video-appearance", "video-geometric")
            for d in ("aro", "val") for p in ("dev", "test")]  # fmt: skip
    vals = pd.DataFrame(
        [[0.5] * 12, [0.4] * 12, [0.6] * 12],
        index=pd.Index(["STL", "MTL-PU", "DDAT-PU"], name="system"),
        columns=cols,
    )
    pcols = [c.replace(" dev", f" vs {w}") for c in cols if c.endswith(" dev")
             for w in ("MTL", "STL")]  # fmt: skip
    perm = pd.DataFrame([[0.01] * 12] * 3, index=vals.index, columns=pcols)
    _results(folder, "paper_table2_values", vals)
    _results(folder, "paper_table2_permutation_p", perm)
    t = claims.claims("ddat", {"ddat_paper": folder})
    assert list(t.index) == ["DDAT-PU > MTL-PU", "DDAT-PU > STL"]
    assert t.loc["DDAT-PU > MTL-PU", "holds here"] == "yes"
    assert t.loc["DDAT-PU > STL", "here"].startswith("Δ > 0 in 6/6, p < .05 in 6/6")
    # the paper's Table II: DDAT-PU above MTL-PU in 5 of 6 test cells
    assert t.loc["DDAT-PU > MTL-PU", "paper"].startswith("Δ > 0 in 5/6")


def test_report_links_tables_and_figures_and_renders_html(tmp_path):
    sel = parts.select(["cer_mtl"])
    calls = []
    out = runner.run_parts(
        sel,
        root=tmp_path,
        profile="smoke",
        configs=parts.configs_dir(),
        roots={},
        run_child=_fake_child(calls),
        echo=lambda s: None,
    )
    (tmp_path / "cer_recola" / "figures").mkdir()
    (tmp_path / "cer_recola" / "figures" / "fig2.png").write_bytes(b"\x89PNG")
    index = report.write_report(tmp_path, out, profile="smoke", seconds=3.0)
    text = index.read_text()
    assert "# The five papers reproduced (smoke profile)" in text
    assert "[t](../cer_recola/results/t.csv)" not in text  # Markdown tables are linked
    assert "![fig2](../cer_recola/figures/fig2.png)" in text
    assert "Köprü & Erzin" in text and "Han et al., From Hard" not in text
    html = index.with_suffix(".html").read_text()
    assert "<table>" in html and '<img alt="fig2" src="../cer_recola/figures/fig2.png"' in html


def test_cli_rejects_bad_flags_with_a_sentence():
    res = subprocess.run(
        [sys.executable, "-m", "ddat_jax.reproduce", "--smoke", "--only=nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 2
    assert "error: --only: unknown paper(s) ['nope']" in res.stderr
    assert "Traceback" not in res.stderr


def test_smoke_reproduction_of_one_part_end_to_end(tmp_path):
    """The real thing for one part (the OMG-like implicit fusion run, the quickest): a
    spawned experiment, its marker, the claims, the report; then a re-run skips it."""
    cmd = [sys.executable, "-m", "ddat_jax.reproduce", "--smoke", "--only=implicit_omg",
           f"--workdir={tmp_path}"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "implicit_omg: done in" in res.stdout and "INFO" not in res.stdout
    marker = json.loads((tmp_path / "implicit_omg" / runner.MARKER).read_text())
    assert marker["peak_rss_mib"] > 100  # the child's own peak resident memory
    text = (tmp_path / "report" / "index.md").read_text()
    assert "### Claims of the paper, tested here" in text
    assert "| implicit fusion > mono-modal RNN | OMG-like, audio main, dev macro-F1 |" in text
    assert "table1_implicit_fusion" in text and (tmp_path / "report" / "index.html").is_file()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0 and "skipped: complete and verified" in res.stdout


@pytest.mark.slow
def test_smoke_reproduction_of_all_five_papers(tmp_path):
    cmd = [sys.executable, "-m", "ddat_jax.reproduce", "--smoke", f"--workdir={tmp_path}"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = (tmp_path / "report" / "index.md").read_text()
    for title in parts.PAPERS.values():
        assert f"## {title}" in text
    assert text.count("### Claims of the paper, tested here") == 5
    assert (tmp_path / "sew_both" / "results" / "sew_table2_ablations_both.csv").is_file()
