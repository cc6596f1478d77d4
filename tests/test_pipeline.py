"""End to end: the DDAT main job on the embedded corpus (smoke config), and stage 2 alone."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ddat_jax import run as run_lib
from ddat_jax.ddat import artifacts

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def load_config(name: str, arg: str):
    spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, small_corpus_root):
    config = load_config("recola_re", "smoke")
    config.data.root = str(small_corpus_root)
    config.ddat.systems = ("stl", "mtl_re", "ddat_re_sum")
    workdir = tmp_path_factory.mktemp("run")
    return config, workdir, run_lib.run(config, workdir)


def test_main_job_writes_tables_predictions_figures(smoke_run):
    config, workdir, results = smoke_run
    t1 = pd.read_csv(workdir / "results" / "table1_before_postprocessing.csv", index_col=0)
    assert list(t1.index) == ["STL", "MTL-RE", "DDAT-RE sum"]
    assert t1["dev CCC"].between(-1, 1).all() and t1["test CCC"].between(-1, 1).all()
    assert (
        (workdir / "results" / "table2_after_postprocessing.md")
        .read_text()
        .startswith("Table: Table II")
    )
    assert (workdir / "results" / "table4_fusion.csv").is_file()
    pred = pd.read_csv(workdir / "predictions" / "stl" / "test" / "test_1.csv")
    assert list(pred.columns) == ["time", "prediction", "prediction_pp", "gold"]
    assert len(pred) == 2501 and pred["prediction"].notna().all()
    assert list((workdir / "figures").glob("*.png"))
    metrics = pd.read_json(workdir / "train" / "stl" / "1x16" / "metrics.jsonl", lines=True)
    assert len(metrics) == config.train.epochs
    assert json.loads((workdir / "config.json").read_text())["name"] == "recola_re"


def test_stage2_alone_reads_stage1_and_refuses_other_config(smoke_run, tmp_path):
    config, workdir, results = smoke_run
    manifest = artifacts.read_manifest(workdir / "stage1" / "re_sum")
    assert manifest["difficulty_names"] == ["re_sum"]
    # Stage 2 alone on the existing stage1/ folder gives the same DDAT model.
    alone = load_config("recola_re", "smoke")
    alone.data.root = config.data.root
    alone.ddat.systems = ("ddat_re_sum",)
    alone.ddat.run_stage1 = False
    # A fresh workdir holding only stage1/ (copied), so nothing else is reused.
    shutil.copytree(workdir / "stage1", tmp_path / "stage1")
    res = run_lib.run(alone, tmp_path)
    assert res["dev_ccc"]["DDAT-RE sum"] == pytest.approx(results["dev_ccc"]["DDAT-RE sum"])
    # A different stage-1 setting must be refused.
    other = load_config("recola_re", "smoke")
    other.data.root = config.data.root
    other.ddat.systems = ("ddat_re_sum",)
    other.ddat.run_stage1 = False
    other.ddat.w_aux = 0.5
    shutil.copytree(workdir / "stage1", tmp_path / "other" / "stage1")
    with pytest.raises(artifacts.ManifestError, match="config hash"):
        run_lib.run(other, tmp_path / "other")


@pytest.mark.slow
def test_every_system_smoke(tmp_path, small_corpus_root):
    config = load_config("recola_re", "smoke,aux=both")
    config.data.root = str(small_corpus_root)
    results = run_lib.run(config, tmp_path)
    t2 = results["tables"]["table2_after_postprocessing"]
    assert len(t2) == 8


def test_fusion_across_modalities_script(smoke_run, tmp_path):
    """experiments/fusion_across_modalities.py reads two runs' outputs and fits Table IV."""
    config, workdir, _ = smoke_run
    other = tmp_path / "video_run"
    shutil.copytree(workdir, other, ignore=lambda d, names: ["train"] if Path(d) == workdir else [])
    cfg = json.loads((other / "config.json").read_text())
    cfg["data"]["modality"] = "video_geometric"
    (other / "config.json").write_text(json.dumps(cfg))
    spec = importlib.util.spec_from_file_location(
        "fusion_script", CONFIGS.parent / "experiments" / "fusion_across_modalities.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.main([str(workdir), str(other), "--out", str(tmp_path / "fusion")])
    assert "P_DDAT-RE sum + P_STL" in table.index
    assert table.loc["P_DDAT-RE sum + P_STL", "streams"] == 4
    assert (tmp_path / "fusion" / "table4_fusion_across_modalities.md").is_file()


def test_architecture_grid_runs_as_one_program(tmp_path, small_corpus_root):
    """Several architectures: trained by ddat_jax.train.grid, the best on dev is kept."""
    config = load_config("recola_re", "smoke")
    config.data.root = str(small_corpus_root)
    config.ddat.systems = ("stl",)
    config.model.arch = ((1, 8), (2, 16))
    results = run_lib.run(config, tmp_path)
    grid = pd.read_csv(tmp_path / "train" / "stl" / "results" / "grid.csv")
    assert sorted(zip(grid["layers"], grid["units"], strict=True)) == [(1, 8), (2, 16)]
    best = grid.loc[grid["best_dev_score"].idxmax()]
    assert bool(best["selected"])
    assert results["dev_ccc"]["STL"] == pytest.approx(best["best_dev_score"], abs=1e-6)


def test_withheld_test_labels_like_avec(tmp_path):
    """AVEC 2016 ships no test labels: the pipeline trains, predicts test, tests on dev."""
    from ddat_jax.data import synthetic

    root = synthetic.generate_corpus(
        tmp_path / "corpus", preset="small", seed=0, withhold_test_labels=True
    )
    config = load_config("recola_re", "smoke")
    config.data.root = str(root)
    config.ddat.systems = ("stl", "ddat_re_sum")
    results = run_lib.run(config, tmp_path / "run")
    t2 = results["tables"]["table2_after_postprocessing"]
    assert t2["test CCC"].isna().all() and t2["dev CCC"].notna().all()
    assert t2.loc["DDAT-RE sum", "sig. partition"] == "dev"
    pred = pd.read_csv(tmp_path / "run" / "predictions" / "stl" / "test" / "test_1.csv")
    assert pred["prediction"].notna().all() and pred["gold"].isna().all()
