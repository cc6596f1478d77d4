"""The DDAT paper driver (configs/ddat_paper.py): cells, resumption, the paper's tables."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sstats

from ddat_jax.experiment import run, validate
from ddat_jax.methods.ddat import paper, paper_outputs
from ddat_jax.methods.ddat import paper_values as pv

REPO = Path(__file__).resolve().parents[1]


def paper_config(arg="smoke", root=None, **paper_fields):
    spec = importlib.util.spec_from_file_location("ddat_paper", REPO / "configs/ddat_paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg)
    if root is not None:
        config.data.root = str(root)
    for k, v in paper_fields.items():
        config.paper[k] = v
    return config


def test_paper_values_typed_in_once():
    for table in (pv.TABLE1, pv.TABLE2):
        assert set(table) == {
            "stl", "mtl_re", "mtl_pu", "ddat_re_vector", "ddat_re_sum", "ddat_pu",
            "dnn", "cl_dnn", "cl_gru",
        }  # fmt: skip
        assert all(len(row) == 12 for row in table.values())
    assert pv.table_value(pv.TABLE2, "ddat_re_sum", "audio", "arousal", "test") == (0.694, True)
    assert pv.table_value(pv.TABLE1, "stl", "video_geometric", "valence", "test") == (0.403, False)
    assert pv.TABLE4["P_re,dt + P_pu,dt + P_bs"][3] == 0.660  # the paper's best valence test


def test_config_variants_and_arch_choice():
    quick = paper_config("quick")
    assert quick.method == "ddat_paper" and quick.paper.arch == "config"
    assert quick.model.arch == ((1, 32),)
    assert paper_config("arch=paper").paper.arch == "paper"
    assert paper.resolve_arch("paper", ((2, 64),)) == paper.PAPER_GRID
    assert len(paper.PAPER_GRID) == 15 and (9, 120) in paper.PAPER_GRID
    assert paper.resolve_arch("config", ((2, 64),)) == ((2, 64),)
    s = validate(paper_config())[2]
    assert s.cell.systems == (
        "stl", "mtl_re", "mtl_pu", "ddat_re_vector", "ddat_re_sum", "ddat_pu",
        "dnn", "cl_dnn", "cl_gru",
    )  # fmt: skip
    with pytest.raises(ValueError, match="config.paper.feature_sets"):
        validate(paper_config(feature_sets=("audio", "eeg")))
    with pytest.raises(ValueError, match="config.paper.arch"):
        validate(paper_config(arch="huge"))


def test_cell_config_is_a_ddat_experiment():
    c = paper.cell_config(paper_config(), "video_geometric", "valence", ((3, 40),))
    assert c.method == "ddat" and "paper" not in c
    assert (c.data.modality, c.data.dimension, c.model.arch) == (
        "video_geometric",
        "valence",
        ((3, 40),),
    )
    validate(c)


def _fisher_p(a, b, n):  # independent reference: scipy, the paper's formula
    z = (math.atanh(a) - math.atanh(b)) / math.sqrt(2 / (n - 3))
    return sstats.norm.sf(z)


@pytest.mark.parametrize("ddat,mtl,stl", [(0.60, 0.55, 0.50), (0.56, 0.555, 0.3), (0.4, 0.5, 0.6)])
def test_marks_follow_the_fisher_test(ddat, mtl, stl):
    df = pd.DataFrame({"test CCC": [stl, mtl, ddat]}, index=["STL", "MTL-PU", "DDAT-PU"])
    n = 2000
    want = ("*" if _fisher_p(ddat, mtl, n) < 0.05 else "") + (
        "†" if _fisher_p(ddat, stl, n) < 0.05 else ""
    )
    assert paper_outputs._marks(df, "DDAT-PU", "test", n) == want


@pytest.fixture(scope="module")
def one_cell(tmp_path_factory, small_corpus_root):
    """The paper driver on one feature set × one dimension (five systems)."""
    config = paper_config(root=small_corpus_root, feature_sets=("audio",), dimensions=("arousal",))
    config.ddat.systems = ("stl", "mtl_re", "ddat_re_sum", "mtl_pu", "ddat_pu")
    tmp_path = tmp_path_factory.mktemp("paper")
    return config, tmp_path, run(config, tmp_path)


def test_one_cell_paper_run_resumes_per_cell(one_cell):
    """One feature set × one dimension end to end; a re-run skips the verified cell and a
    modified cell file makes it run again."""
    config, tmp_path, out = one_cell
    assert out["cell_status"]["audio-arousal"].startswith("ran")
    t2 = out["tables"]["paper_table2"]
    assert list(t2.index) == ["STL", "MTL-RE", "MTL-PU", "DDAT-RE sum", "DDAT-PU"]
    assert list(t2.columns) == ["audio-eGeMAPS aro dev", "audio-eGeMAPS aro test"]
    vs = out["tables"]["paper_table2_vs_paper"]
    assert vs.loc["DDAT-RE sum", "audio-eGeMAPS aro test"].endswith("(0.694*)")
    t4 = out["tables"]["paper_table4"]
    assert list(t4.index) == list(paper_outputs.TABLE4_ROWS)
    assert np.isfinite(t4["aro test"].astype(float)).all()
    weights = json.loads((tmp_path / "results/fusion_weights.json").read_text())
    assert set(weights["arousal"]["rows"]["P_re + P_pu + P_bs"]["coefs"]) == {
        "audio/P_re",
        "audio/P_pu",
        "audio/P_bs",
    }
    assert (tmp_path / "figures/fig2_ccc_per_stream.png").is_file()
    assert (tmp_path / "cells/audio-arousal/predictions_original_timeline").is_dir()
    again = run(config, tmp_path)
    assert again["cell_status"]["audio-arousal"].startswith("skipped")
    pd.testing.assert_frame_equal(
        again["tables"]["paper_table2_values"], out["tables"]["paper_table2_values"]
    )
    report = tmp_path / "cells/audio-arousal/report.md"
    report.write_text(report.read_text() + "\n")
    assert not paper.cell_complete(
        paper.cell_config(config, "audio", "arousal", ((1, 16),)), tmp_path / "cells/audio-arousal"
    )


@pytest.mark.slow
def test_whole_paper_smoke(tmp_path, small_corpus_root):
    out = run(paper_config(root=small_corpus_root), tmp_path)
    assert out["tables"]["paper_table2"].shape == (9, 12)
    assert out["tables"]["paper_table4"].shape[0] == 9
    assert len(list((tmp_path / "figures").glob("*.png"))) == 4


@pytest.mark.slow
def test_cl_gru_searches_its_own_architecture(tmp_path, small_corpus_root):
    """arch=paper style: CL-GRU runs its curriculum per architecture, keeps the best on dev."""
    spec = importlib.util.spec_from_file_location("recola_re", REPO / "configs/recola_re.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("smoke")
    config.data.root = str(small_corpus_root)
    config.ddat.systems = ("cl_gru",)
    config.model.arch = ((1, 4), (1, 8))
    config.train.epochs = 1
    config.ddat.cl_epochs_per_stage = 1
    out = run(config, tmp_path)
    members = pd.read_csv(tmp_path / "results/members.csv")
    assert sorted(members["arch"].astype(str).unique()) == ["1x4", "1x8"]
    kept = members[members["selected"]]
    assert len(kept) == 1
    assert out["dev_score"]["CL-GRU"] == pytest.approx(members["best_dev_score"].max(), abs=1e-6)
    assert (tmp_path / "train/cl_gru/1x4").is_dir() and (tmp_path / "train/cl_gru/1x8").is_dir()


def test_stage2_only_with_stl_and_original_timeline(one_cell, tmp_path):
    """A stage-2-only run with STL completes (Table III reads stage1/), and its prediction
    files on the original timeline are the paper-protocol ones shifted forward by 2.4 s."""
    import shutil

    from ddat_jax.predictions import slugify

    paper_cfg, paper_dir, _ = one_cell
    config = paper.cell_config(paper_cfg, "audio", "arousal", paper_cfg.model.arch)
    shutil.copytree(paper_dir / "cells/audio-arousal/stage1", tmp_path / "alone/stage1")
    config.ddat.systems = ("stl", "ddat_re_sum", "ddat_pu")
    config.ddat.run_stage1 = False
    out = run(config, tmp_path / "alone")
    t3 = out["tables"]["table3_difficulty_analysis"]
    assert "PCC(ε (RE), Δc)" in t3.index and "PCC(µ (predicted PU), Δc)" in t3.index
    t4 = out["tables"]["table4_fusion"]
    assert {"DDAT-RE sum + dyn. tuning (RE)", "DDAT-PU + dyn. tuning (PU)"} <= set(t4.index)
    assert not any(i.startswith("STL + dyn") for i in t4.index)  # baselines are not tuned
    # One test recording on both timelines, checked with NumPy and the corpus files.
    slug = slugify("DDAT-PU")
    paper_file = pd.read_csv(tmp_path / f"alone/predictions/{slug}/test/test_1.csv")
    avec_file = pd.read_csv(
        tmp_path / f"alone/predictions_original_timeline/{slug}/test/test_1.csv"
    )
    d = 60  # 2.4 s at 40 ms
    p = paper_file["prediction_pp"].to_numpy()
    want = np.concatenate([np.full(d, p[0]), p[:-d]])
    np.testing.assert_allclose(avec_file["prediction_pp"].to_numpy(), want, rtol=1e-5, atol=1e-6)
    # Gold: the original file's values; the paper file's gold is them shifted back by d.
    g0 = avec_file["gold"].to_numpy()
    np.testing.assert_allclose(paper_file["gold"].to_numpy()[:-d], g0[d:], rtol=1e-5, atol=1e-6)
    sc = out["tables"]["avec_official_scoring"]
    ccc = lambda a, b: (
        2 * np.cov(a, b, bias=True)[0, 1] / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    )  # noqa: E731
    preds = out["predictions"]["DDAT-PU"]
    pp = [official_shift(x, d) for x in preds.series("test", "pred_pp")]
    gold = [
        pd.read_csv(f)["gold"].to_numpy()
        for f in sorted(
            (tmp_path / f"alone/predictions_original_timeline/{slug}/test").glob("*.csv")
        )
    ]
    assert sc.loc["DDAT-PU", "test CCC post-processed (AVEC official)"] == pytest.approx(
        ccc(np.concatenate(pp), np.concatenate(gold)), abs=1e-4
    )


def official_shift(x, d):
    return np.concatenate([np.full(d, x[0]), x[:-d]])


def test_table4_significance_is_the_recording_level_permutation_test():
    """Each fused row vs P_bs: Δ = CCC difference over the concatenated recordings and the
    exact one-tailed sign-flip p over recordings, computed here by enumeration."""
    import itertools
    from types import SimpleNamespace

    from ddat_jax.methods.ddat.paper_outputs import table4_significance
    from ddat_jax.predictions import Predictions

    rng = np.random.default_rng(3)
    gold = [rng.normal(size=40) for _ in range(4)]
    better = [g + 0.3 * rng.normal(size=40) for g in gold]
    worse = [g + 1.0 * rng.normal(size=40) for g in gold]
    names = [f"r{i}" for i in range(4)]

    def system(pred):
        return {p: {"names": names, "pred": pred, "gold": gold} for p in ("dev", "test")}

    preds = Predictions.from_arrays({"P_bs": system(worse), "P_re + P_pu": system(better)})
    df = table4_significance({"arousal": SimpleNamespace(predictions=preds)})

    def ccc(pred):
        x, y = np.concatenate(pred), np.concatenate(gold)
        cov = np.mean((x - x.mean()) * (y - y.mean()))
        return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)

    observed = ccc(better) - ccc(worse)
    null = []
    for flips in itertools.product((False, True), repeat=4):
        a = [w if f else b for b, w, f in zip(better, worse, flips, strict=True)]
        b = [b if f else w for b, w, f in zip(better, worse, flips, strict=True)]
        null.append(ccc(a) - ccc(b))
    p_ref = np.mean(np.asarray(null) >= observed - 1e-12)
    row = df.loc["P_re + P_pu"]
    assert row["aro test Δ vs P_bs"] == pytest.approx(observed, abs=1e-6)
    assert row["aro test perm. p"] == pytest.approx(p_ref)
    assert list(df.index) == ["P_re + P_pu"] and "aro dev perm. p" in df.columns
