"""The implicit-fusion method end to end (smoke config on the small embedded corpus), its
main-only predictor, its settings and its Table 2."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from ddat_jax import metrics
from ddat_jax.data import prepare, preprocess
from ddat_jax.experiment import run
from ddat_jax.experiment.settings import experiment_settings
from ddat_jax.experiment.systems import Context
from ddat_jax.methods import METHODS
from ddat_jax.methods.implicit_fusion import plan, settings, tables

REPO = Path(__file__).resolve().parents[1]


def load_config(arg: str | None = None):
    spec = importlib.util.spec_from_file_location("cfg", REPO / "configs" / "recola_implicit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.fixture(scope="module")
def smoke_config(small_corpus_root):
    """The smoke config with one direction (audio main): both are the same code path, and
    one compiled grid keeps the default tests fast (both: the slow test below)."""
    config = load_config("smoke")
    config.data.root = str(small_corpus_root)
    config.implicit.directions = ("audio",)
    return config


@pytest.fixture(scope="module")
def smoke_run(smoke_config, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("implicit")
    return workdir, run(smoke_config, workdir)


def _ccc(pred_list, gold_list) -> float:
    return float(metrics.ccc(np.concatenate(pred_list), np.concatenate(gold_list)))


def test_run_writes_the_paper_tables_grid_and_curves(smoke_run):
    workdir, results = smoke_run
    t1 = pd.read_csv(workdir / "results" / "table1_before_postprocessing.csv", index_col=0)
    assert list(t1.index) == ["RNN baseline (audio)", "RNN implicit fusion (audio)"]
    t2 = pd.read_csv(workdir / "results" / "table2_implicit_fusion.csv", index_col=0)
    assert list(t2.index) == list(tables.PAPER_ROWS)
    assert t2.loc["RNN (implicit fusion)", "video test (paper)"] == pytest.approx(0.413)
    assert t2.loc["DDAT (RE based)", "audio test (paper)"] == pytest.approx(0.694)
    assert t2.loc["MTL (RE based)", ["audio dev", "video test"]].isna().all()
    pp = pd.read_csv(workdir / "results" / "table2_after_postprocessing.csv", index_col=0)
    assert t2[["video dev", "video test"]].isna().all().all()
    for mod, col in (("audio", "audio"),):
        for part in ("dev", "test"):
            assert t2.loc["RNN (baseline)", f"{col} {part}"] == pytest.approx(
                pp.loc[f"RNN baseline ({mod})", f"{part} CCC"]
            )
    assert pp.loc["RNN implicit fusion (audio)", "vs stl"] == "RNN baseline (audio)"
    grid = pd.read_csv(workdir / "results" / "alpha_grid.csv", index_col=0)
    assert sorted(grid["alpha"].unique()) == [0.0, 0.5, 1.0]
    assert grid["selected"].sum() == 1 and set(grid["main"]) == {"audio"}
    assert (workdir / "figures" / "alpha_curves.png").is_file()
    # one compiled grid per direction: a single fit folder, 3 members in its metrics
    assert sorted(p.name for p in (workdir / "train").iterdir()) == ["fusion_audio"]
    metrics_rows = pd.read_json(
        workdir / "train" / "fusion_audio" / "default" / "metrics.jsonl", lines=True
    )
    assert sorted(set(metrics_rows["member"])) == [0, 1, 2] and len(metrics_rows) == 6


def test_dev_selection_and_predictions_use_the_main_modality_only(smoke_run, smoke_config):
    """The engine's dev score (dev aux view = zeros) equals the CCC of the main-only
    predictor; baseline = the α = 0 member; implicit fusion = the kept member."""
    workdir, results = smoke_run
    grid = pd.read_csv(workdir / "results" / "alpha_grid.csv", index_col=0)
    np.testing.assert_allclose(grid["dev score"], grid["dev CCC"], atol=2e-5)
    preds = results["predictions"]
    t1 = pd.read_csv(workdir / "results" / "table1_before_postprocessing.csv", index_col=0)
    for main in ("audio",):
        g = grid[grid["main"] == main]
        base = g[g["alpha"] == 0.0]["test CCC"].iloc[0]
        fused = g[g["selected"]]["test CCC"].iloc[0]
        assert t1.loc[f"RNN baseline ({main})", "test CCC"] == pytest.approx(base, abs=1e-5)
        assert t1.loc[f"RNN implicit fusion ({main})", "test CCC"] == pytest.approx(fused, abs=1e-5)
        gold = preds.gold("test")
        pred = preds.series(f"RNN baseline ({main})", "test", "pred")
        assert _ccc(pred, gold) == pytest.approx(base, abs=1e-5)


def _context(config, workdir):
    corpus = prepare.prepare_corpus(config.data)
    batches = {p: preprocess.to_batch(r) for p, r in corpus.partitions.items()}
    s = settings.settings_from_config(config)
    return Context(corpus, s, experiment_settings(config).train, 0, workdir, batches)


def test_auxiliary_features_replaced_by_nan_give_identical_predictions(smoke_config, tmp_path):
    ctx = _context(smoke_config, tmp_path)
    main, aux = "audio", "video_geometric"
    job = plan.fusion_job(main)(ctx, {})
    assert np.all(job.data["dev"]["inputs"]["aux"] == 0)  # selection cannot see it
    assert job.sweep == {"aux": (0.0, 0.5, 1.0)}
    model = job.model_fn(None)
    x = job.data["train"]["inputs"]
    keys = jax.random.split(jax.random.key(1), 3)
    params = jax.vmap(lambda k: model.init(k, jax.tree.map(lambda a: a[:1], x))["params"])(keys)
    device = jax.devices()[0]
    ref = plan.predict_members(ctx, model, params, main, device)
    start, stop = ctx.corpus.modality_slices[aux]
    nan_batches = {}
    for part, b in ctx.batches.items():
        xx = b["x"].copy()
        xx[..., start:stop] = np.nan
        nan_batches[part] = {**b, "x": xx}
    nan_ctx = dataclasses.replace(ctx, batches=nan_batches)
    got = plan.predict_members(nan_ctx, model, params, main, device)
    for r, g in zip(ref, got, strict=True):
        for part in ("dev", "test"):
            for a, b in zip(r[part]["main"], g[part]["main"], strict=True):
                assert np.isfinite(a).all()
                np.testing.assert_array_equal(a, b)


def test_settings_are_validated():
    s = settings.settings_from_config(load_config("smoke"))
    assert s.alphas == (0.0, 0.5, 1.0) and s.directions == ("audio", "video_geometric")
    full = settings.settings_from_config(load_config())
    assert full.alphas == settings.PAPER_ALPHAS and len(full.alphas) == 11
    assert (full.hidden_size, full.specific_layers, full.shared_layers) == (100, 2, 2)
    bad = load_config("smoke")
    bad.implicit.alphas = (0.1, 0.5)
    with pytest.raises(ValueError, match="must contain 0.0"):
        settings.settings_from_config(bad)
    bad = load_config("smoke")
    bad.implicit.loss = "xent"
    with pytest.raises(ValueError, match="implicit.loss"):
        settings.settings_from_config(bad)
    bad = load_config("smoke")
    bad.implicit.directions = ()
    with pytest.raises(ValueError, match="directions"):
        settings.settings_from_config(bad)


def test_check_corpus_needs_two_modalities(smoke_config):
    one = load_config("smoke")
    one.data.root = smoke_config.data.root
    one.data.modality = "audio"
    corpus = prepare.prepare_corpus(one.data)
    with pytest.raises(ValueError, match="two modalities"):
        METHODS["implicit_fusion"].check_corpus(corpus)


def test_ddat_rows_read_a_ddat_run_of_the_same_corpus_and_dimension(tmp_path):
    source = (("root", ""), ("preset", "small"), ("corpus_seed", 0))

    def ddat_run(name, modality, dimension, preset="small"):
        wd = tmp_path / name
        (wd / "results").mkdir(parents=True)
        data = {"modality": modality, "dimension": dimension, "root": "", "preset": preset}
        (wd / "config.json").write_text(json.dumps({"data": {**data, "corpus_seed": 0}}))
        df = pd.DataFrame(
            {"dev CCC": [0.5, 0.6, 0.7], "test CCC": [0.4, 0.45, 0.55]},
            index=pd.Index(["STL", "MTL-RE", "DDAT-RE sum"], name="system"),
        )
        df.to_csv(wd / "results" / "table2_after_postprocessing.csv")
        return str(wd)

    runs = [
        ddat_run("a", "audio", "arousal"),
        ddat_run("v", "video_geometric", "arousal"),
        ddat_run("val", "audio", "valence"),
        ddat_run("other", "audio", "arousal", preset="recola"),
    ]
    found, notes = tables.ddat_rows(runs, "arousal", source)
    assert found[("MTL (RE based)", "audio", "dev")] == 0.6
    assert found[("DDAT (RE based)", "video", "test")] == 0.55
    assert ("MTL (PU based)", "audio", "dev") not in found
    assert len(notes) == 2 and all("another dimension or corpus" in n for n in notes)


@pytest.mark.slow
def test_both_directions_in_one_run(small_corpus_root, tmp_path):
    config = load_config("smoke")
    config.data.root = str(small_corpus_root)
    results = run(config, tmp_path)
    t2 = results["tables"]["table2_implicit_fusion"]
    assert t2.loc[["RNN (baseline)", "RNN (implicit fusion)"]].notna().all().all()
    assert set(results["tables"]["alpha_grid"]["main"]) == {"audio", "video_geometric"}


def test_merge_table2_puts_dimensions_side_by_side(tmp_path):
    from ddat_jax.methods.implicit_fusion.table2 import merge_table2

    runs = []
    for dim, value in (("valence", 0.2), ("arousal", 0.7)):
        wd = tmp_path / dim
        (wd / "results").mkdir(parents=True)
        (wd / "config.json").write_text(json.dumps({"data": {"dimension": dim}}))
        cols = {f"{m} {p}": [value] * 8 for m in ("audio", "video") for p in ("dev", "test")}
        pd.DataFrame(cols, index=pd.Index(tables.PAPER_ROWS, name="system")).to_csv(
            wd / "results" / "table2_implicit_fusion.csv"
        )
        runs.append(wd)
    df = merge_table2(runs)
    assert list(df.columns[:2]) == ["arousal audio dev", "arousal audio test"]
    assert df["valence video test"].tolist() == [0.2] * 8
    with pytest.raises(ValueError, match="two runs of dimension"):
        merge_table2([runs[0], runs[0]])


def test_classification_run_writes_table1_and_fig2(tmp_path):
    """OMG-like smoke run (one direction): cross-entropy on class logits, macro-F1 on dev,
    Table 1 beside the paper's values, dev F1 vs α (Fig. 2)."""
    from ddat_jax.data import sim_omg

    spec = importlib.util.spec_from_file_location("omg", REPO / "configs" / "omg_implicit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("smoke")
    config.data.root = str(sim_omg.generate_corpus(tmp_path / "omg", preset="omg_small"))
    config.implicit.directions = ("video",)
    results = run(config, tmp_path / "run")
    t1 = results["tables"]["table1_implicit_fusion"]
    assert t1.loc["RNN (implicit fusion)", "video F1 (paper)"] == pytest.approx(42.1)
    grid = results["tables"]["alpha_grid"]
    np.testing.assert_allclose(grid["dev score"], grid["dev F1"], atol=1e-6)
    base = grid[grid["alpha"] == 0.0]["dev F1"].iloc[0]
    assert t1.loc["RNN (baseline)", "video F1"] == pytest.approx(100 * base, abs=1e-4)
    fused = grid[grid["selected"]]["dev F1"].iloc[0]
    assert t1.loc["RNN (implicit fusion)", "video F1"] == pytest.approx(100 * fused, abs=1e-4)
    assert (tmp_path / "run" / "figures" / "alpha_curves.png").is_file()
    md = (tmp_path / "run" / "results" / "table1_implicit_fusion.md").read_text()
    assert "Paired bootstrap over dev utterances" in md
