"""End to end: the experiment layer with the DDAT method on the embedded corpus (smoke)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ddat_jax.experiment import run
from ddat_jax.methods.ddat import artifacts
from ddat_jax.predictions import read_predictions

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def load_config(name: str, arg: str | None = None):
    spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def smoke_config(root, systems, **changes):
    config = load_config("recola_re", "smoke")
    config.data.root = str(root)
    config.ddat.systems = tuple(systems)
    for field, value in changes.items():
        section, name = field.split(".")
        config[section][name] = value
    return config


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, small_corpus_root):
    config = smoke_config(small_corpus_root, ("stl", "mtl_re", "ddat_re_sum"))
    workdir = tmp_path_factory.mktemp("run")
    return config, workdir, run(config, workdir)


def test_main_job_writes_tables_predictions_figures_report(smoke_run):
    config, workdir, results = smoke_run
    t1 = pd.read_csv(workdir / "results" / "table1_before_postprocessing.csv", index_col=0)
    assert list(t1.index) == ["STL", "MTL-RE", "DDAT-RE sum"]
    assert t1["dev CCC"].between(-1, 1).all() and t1["test CCC"].between(-1, 1).all()
    md = (workdir / "results" / "table2_after_postprocessing.md").read_text()
    assert "CCC after post-processing" in md
    assert (workdir / "results" / "table4_fusion.csv").is_file()
    assert (workdir / "results" / "table3_difficulty_analysis.csv").is_file()
    preds = read_predictions(workdir / "predictions")
    assert preds.labels == ("STL", "MTL-RE", "DDAT-RE sum")
    stl = pd.read_csv(workdir / "predictions" / "stl" / "test" / "test_1.csv")
    assert list(stl.columns[:4]) == ["time", "prediction", "prediction_pp", "gold"]
    assert len(stl) == 2501 and stl["prediction"].notna().all()
    assert list((workdir / "figures").glob("*.png"))
    members = pd.read_csv(workdir / "results" / "members.csv")
    assert set(members["system"]) == {"STL", "MTL-RE", "DDAT-RE sum"}
    metrics = pd.read_json(workdir / "train" / "stl" / "1x16" / "metrics.jsonl", lines=True)
    assert len(metrics) == config.train.epochs
    assert json.loads((workdir / "config.json").read_text())["name"] == "recola_re"
    report = (workdir / "report.md").read_text()
    assert "CCC before post-processing" in report and "figures/" in report


def test_rerun_resumes_and_gives_the_same_tables(smoke_run):
    config, workdir, results = smoke_run
    again = run(config, workdir)
    pd.testing.assert_frame_equal(
        again["tables"]["table1_before_postprocessing"],
        results["tables"]["table1_before_postprocessing"],
    )


def test_stage2_alone_reads_stage1_and_refuses_other_settings(smoke_run, tmp_path):
    config, workdir, results = smoke_run
    manifest = artifacts.read_manifest(workdir / "stage1" / "re_sum")
    assert manifest["difficulty_names"] == ["re_sum"]
    alone = smoke_config(config.data.root, ("ddat_re_sum",), **{"ddat.run_stage1": False})
    shutil.copytree(workdir / "stage1", tmp_path / "alone" / "stage1")
    res = run(alone, tmp_path / "alone")
    assert res["dev_score"]["DDAT-RE sum"] == pytest.approx(results["dev_score"]["DDAT-RE sum"])
    other = smoke_config(
        config.data.root, ("ddat_re_sum",), **{"ddat.run_stage1": False, "ddat.w_aux": 0.5}
    )
    shutil.copytree(workdir / "stage1", tmp_path / "other" / "stage1")
    with pytest.raises(artifacts.ManifestError, match="config hash"):
        run(other, tmp_path / "other")


def test_fusion_across_modalities_script(smoke_run, tmp_path):
    """experiments/fusion_across_modalities.py reads two runs' outputs and fits Table IV."""
    config, workdir, _ = smoke_run
    other = tmp_path / "video_run"
    shutil.copytree(workdir, other, ignore=lambda d, n: ["train"] if Path(d) == workdir else [])
    cfg = json.loads((other / "config.json").read_text())
    cfg["data"]["modality"] = "video_geometric"
    (other / "config.json").write_text(json.dumps(cfg))
    spec = importlib.util.spec_from_file_location(
        "fusion_script", REPO / "experiments" / "fusion_across_modalities.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.main([str(workdir), str(other), "--out", str(tmp_path / "fusion")])
    assert table.loc["P_DDAT-RE sum + P_STL", "streams"] == 4
    assert (tmp_path / "fusion" / "table4_fusion_across_modalities.md").is_file()


def test_architectures_and_seeds_best_on_dev(tmp_path, small_corpus_root):
    """Several architectures x 2 seeds: the best architecture by its mean dev score is kept,
    and the seeds table reports mean ± std beside the best-by-dev member."""
    config = smoke_config(small_corpus_root, ("stl",), **{"grid.seeds": 2})
    config.model.arch = ((1, 8), (2, 16))
    results = run(config, tmp_path)
    members = pd.read_csv(tmp_path / "results" / "members.csv")
    assert sorted(zip(members["arch"], members["seed"], strict=True)) == [
        ("1x8", 0),
        ("1x8", 1),
        ("2x16", 0),
        ("2x16", 1),
    ]
    means = members.groupby("arch")["best_dev_score"].mean()
    kept = members[members["selected"]].iloc[0]
    assert kept["arch"] == means.idxmax()
    assert (
        kept["best_dev_score"] == members[members["arch"] == kept["arch"]]["best_dev_score"].max()
    )
    assert results["dev_score"]["STL"] == pytest.approx(kept["best_dev_score"], abs=1e-6)
    seeds = results["tables"]["seeds"]
    assert seeds.loc["STL", "seeds"] == 2 and np.isfinite(seeds.loc["STL", "test CCC std"])


def test_withheld_test_labels_like_avec(tmp_path):
    """AVEC 2016 ships no test labels: the run trains, predicts test, tests on dev."""
    from ddat_jax.data import synthetic

    root = synthetic.generate_corpus(
        tmp_path / "corpus", preset="small", seed=0, withhold_test_labels=True
    )
    results = run(smoke_config(root, ("stl", "ddat_re_sum")), tmp_path / "run")
    t2 = results["tables"]["table2_after_postprocessing"]
    assert t2["test CCC"].isna().all() and t2["dev CCC"].notna().all()
    assert t2.loc["DDAT-RE sum", "sig. partition"] == "dev"
    pred = pd.read_csv(tmp_path / "run" / "predictions" / "stl" / "test" / "test_1.csv")
    assert pred["prediction"].notna().all() and pred["gold"].isna().all()


_SCHEDULED = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    from tests.test_experiment import smoke_config
    from ddat_jax.experiment import run
    assert len(jax.local_devices()) == 2, jax.local_devices()
    root, out = sys.argv[2], sys.argv[3]
    side = run(smoke_config(root, ("stl", "mtl_re", "ddat_re_sum", "cl_gru")), out + "/side")
    alone = run(smoke_config(root, ("stl",), **{"run.parallel": 1}), out + "/alone")
    a, b = side["predictions"]["STL"], alone["predictions"]["STL"]
    same = all(np.array_equal(x, y) for p in ("dev", "test")
               for x, y in zip(a.series(p), b.series(p)))
    print("REPORT" + json.dumps({"same": same}))
    """
)


def test_results_do_not_depend_on_the_schedule(tmp_path, small_corpus_root):
    """STL trained alone equals STL trained beside three other systems on two devices."""
    script = tmp_path / "scheduled.py"
    script.write_text(_SCHEDULED)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(script), str(REPO), str(small_corpus_root), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.split("REPORT")[-1])
    assert report["same"]


@pytest.mark.slow
def test_every_system_smoke(tmp_path, small_corpus_root):
    config = load_config("recola_re", "smoke,aux=both")
    config.data.root = str(small_corpus_root)
    results = run(config, tmp_path)
    assert len(results["tables"]["table2_after_postprocessing"]) == 8
