"""The SEW method: settings, per-frame data, objectives of the ablations, the deployed
predictor (never reads the stronger modality), the one-time rank warning, the paper's
tables against independent NumPy scores, and (slow) the run end to end."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ddat_jax import losses
from ddat_jax.data import prepare, preprocess
from ddat_jax.experiment import run
from ddat_jax.experiment.settings import experiment_settings
from ddat_jax.experiment.systems import Context
from ddat_jax.methods import METHODS
from ddat_jax.methods.sew import plan, settings, tables
from ddat_jax.predictions import Predictions, SystemPredictions

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def load_config(arg=None):
    spec = importlib.util.spec_from_file_location("recola_sew", CONFIGS / "recola_sew.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


# ------------------------------------------------------------------- settings


def test_default_config_is_the_paper_setting():
    c = load_config()
    s = settings.settings_from_config(c)
    assert s.pairs == (("video_geometric", "audio"), ("video_appearance", "audio"))
    assert s.variants == ("sew", "no_sd2", "no_cca", "no_sd1", "no_cca_sd1")
    assert s.hidden["video_geometric"] == (512, 256) and s.hidden["audio"] == (108,)
    assert s.latent_of(("video_geometric", "audio")) == 128
    assert s.latent_of(("video_appearance", "audio")) == 168
    assert (s.alpha, s.beta, s.gamma, s.top_k) == (1.0, 1.0, 1.0, 10)
    t = experiment_settings(c).train
    assert t.train["optimizer"] == "sgd" and t.train["momentum"] == 0.7
    assert t.train["batch_size"] == 32 and t.hparams["learning_rate"] == 1e-3
    assert t.hparams["l2"] > 0
    v = settings.settings_from_config(load_config("dimension=valence"))
    assert v.pairs == (
        ("audio", "video_geometric"),
        ("video_appearance", "audio"),
        ("video_appearance", "video_geometric"),
    )
    assert METHODS["sew"].name == "sew"
    q = load_config("quick")
    assert q.train.optimizer == "adam" and q.sew.train_stride == 8  # documented deviation


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("variants", ("sew", "no_rnn"), "sew.variants"),
        ("pairs", ("audio+audio",), "sew.pairs"),
        ("pairs", ("audio+text",), "sew.pairs"),
        ("r1", 0.0, "sew.r1"),
        ("top_k", 0, "sew.top_k"),
    ],
)
def test_bad_settings_name_the_field(field, value, match):
    c = load_config()
    c.sew[field] = value
    with pytest.raises(ValueError, match=match):
        settings.settings_from_config(c)


def test_custom_pairs_parse():
    assert settings.parse_pairs(("audio+video_appearance",), "arousal") == (
        ("audio", "video_appearance"),
    )


# ----------------------------------------------------------------------- data


def test_frames_and_strided_partitions_match_numpy():
    rng = np.random.default_rng(0)
    mask = np.zeros((2, 7), bool)
    mask[0, :7], mask[1, :4] = True, True
    x = rng.normal(size=(2, 7, 3))
    y = rng.normal(size=(2, 7))
    batch = {"mask": mask}
    f = plan.frames_partition(batch, {"weak": x}, {"emotion": y}, stride=2)
    want = [x[0, t] for t in (0, 2, 4, 6)] + [x[1, t] for t in (0, 2)]
    np.testing.assert_array_equal(f["inputs"]["weak"][:, 0], np.stack(want))
    assert f["inputs"]["weak"].shape == (6, 1, 3) and f["mask"].shape == (6, 1)
    np.testing.assert_array_equal(
        f["targets"]["emotion"][:, 0], [y[0, 0], y[0, 2], y[0, 4], y[0, 6], y[1, 0], y[1, 2]]
    )
    s = plan.strided_partition(batch, {"weak": x}, {"emotion": y}, stride=3)
    np.testing.assert_array_equal(s["inputs"]["weak"], x[:, [0, 3, 6]])
    np.testing.assert_array_equal(s["mask"], [[True] * 3, [True, True, False]])


def test_objectives_of_the_ablations():
    s = settings.settings_from_config(load_config())
    names = {v: plan.objective(s, v).term_names for v in settings.VARIANTS}
    assert names == {
        "sew": ("pred", "translation", "autoencoder", "cca"),
        "no_sd2": ("pred", "translation", "cca"),
        "no_cca": ("pred", "translation"),
        "no_sd1": ("pred", "autoencoder", "cca"),
        "no_cca_sd1": ("pred",),
    }
    full = plan.objective(s, "sew")
    cca = full.terms[-1]
    assert (cca.loss, cca.output, cca.target) == ("dcca", "latent_w", "outputs/latent_s")
    assert dict(cca.options) == {"top_k": 10, "r1": 1e-3, "r2": 1e-3}
    assert full.weight_keys == ("alpha", "beta", "gamma", "pred")
    assert plan.objective(s, None).term_names == ("pred",)


@pytest.fixture(scope="module")
def smoke_ctx(small_corpus_root, tmp_path_factory):
    c = load_config("smoke")
    c.data.root = str(small_corpus_root)
    corpus = prepare.prepare_corpus(c.data)
    batches = {p: preprocess.to_batch(r) for p, r in corpus.partitions.items()}
    s = settings.settings_from_config(c)
    train = experiment_settings(c).train
    return Context(corpus, s, train, 0, tmp_path_factory.mktemp("sew"), batches)


def test_views_are_the_modality_columns(smoke_ctx):
    ctx = smoke_ctx
    x = ctx.batches["dev"]["x"]
    start, stop = ctx.corpus.modality_slices["audio"]
    np.testing.assert_array_equal(plan.view(ctx, x, "audio"), x[..., start:stop])
    assert [n.split("/")[0] for n in ctx.corpus.feature_names[start:stop]] == ["audio"] * (
        stop - start
    )
    data, lengths = plan.training_data(ctx, ("video_geometric", "audio"))
    assert set(data["train"]["inputs"]) == {"weak", "strong"}
    assert data["train"]["mask"].shape[1] == 1
    assert int(lengths["train"].sum()) == int(ctx.batches["train"]["mask"].sum())


def test_deployed_predictor_never_reads_the_strong_modality(smoke_ctx):
    import jax

    ctx = smoke_ctx
    pair = ("video_geometric", "audio")
    job = plan.make_job(pair, "sew")(ctx, {})
    model = job.model_fn(None)
    params = model.init(jax.random.key(0), {k: v[:1] for k, v in job.data["dev"]["inputs"].items()})
    params = params["params"]
    real = plan.deployed_outputs(ctx, job, model, params, "video_geometric")
    start, stop = ctx.corpus.modality_slices["audio"]
    nan_batches = {}
    for p, b in ctx.batches.items():
        x = b["x"].copy()
        x[..., start:stop] = np.nan
        nan_batches[p] = {**b, "x": x}
    nan_ctx = Context(ctx.corpus, ctx.settings, ctx.train, 0, ctx.workdir, nan_batches)
    nan = plan.deployed_outputs(nan_ctx, job, model, params, "video_geometric")
    for part in ("dev", "test"):
        for a, b in zip(real[part]["emotion"], nan[part]["emotion"], strict=True):
            np.testing.assert_array_equal(a, b)
            assert np.isfinite(a).all()
    assert set(real["dev"]) == {"emotion", "latent_w"}


def test_rank_warning_once_per_run(smoke_ctx):
    ctx = smoke_ctx  # smoke: batch 32, latents 8 -> no warning
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        plan.warn_rank(ctx)
    assert not w
    big = Context(
        ctx.corpus,
        settings.settings_from_config(load_config()),
        ctx.train,
        0,
        ctx.workdir,
        ctx.batches,
    )
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        plan.warn_rank(big)
    assert len(w) == 1 and "rank <= 31" in str(w[0].message) and "r1=0.001" in str(w[0].message)


# --------------------------------------------------------------------- tables


def _ccc(x, y):
    x, y = np.concatenate(x), np.concatenate(y)
    c = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * c / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_tables_against_numpy(smoke_ctx):
    full = settings.settings_from_config(load_config())  # every unimodal row and variant
    ctx = Context(smoke_ctx.corpus, full, smoke_ctx.train, 0, smoke_ctx.workdir, {})
    rng = np.random.default_rng(1)
    gold = {p: [rng.normal(size=40) for _ in range(3)] for p in ("dev", "test")}
    pair = ("video_geometric", "audio")
    labels = [plan.uni_label(m) for m in ctx.settings.unimodal]
    labels += [plan.pair_label(v, pair) for v in ctx.settings.variants]
    preds_of, systems = {}, {}
    for i, label in enumerate(labels):
        parts = {}
        for p in ("dev", "test"):
            pred = [g * (0.2 + 0.1 * i) + rng.normal(size=40) for g in gold[p]]
            preds_of[(label, p)] = pred
            parts[p] = {"names": ["a", "b", "c"], "pred": pred, "gold": gold[p]}
        systems[label] = SystemPredictions.from_arrays(label, ("arousal",), parts)
    preds = Predictions(systems)
    t1, c1 = tables.table1(ctx, preds)
    assert "Strongest on dev here" in c1 and "pairs trained: video-geo(+audio)" in c1
    uni_audio = preds_of[(plan.uni_label("audio"), "dev")]
    assert t1.loc["Arousal", "audio dev CCC"] == pytest.approx(_ccc(uni_audio, gold["dev"]))
    want_acc = 100 * np.mean((np.concatenate(uni_audio) > 0) == (np.concatenate(gold["dev"]) > 0))
    assert t1.loc["Arousal", "audio dev Acc"] == pytest.approx(want_acc)
    assert t1.loc["Arousal", "video-geo paper CCC"] == 0.482
    t2, caption = tables.table2(ctx, preds)
    sew = preds_of[(plan.pair_label("sew", pair), "test")]
    assert t2.loc["SEW", "video-geo(+audio) test CCC"] == pytest.approx(_ccc(sew, gold["test"]))
    assert t2.loc["-CCA", "video-geo(+audio) paper CCC"] == 0.512
    assert t2.loc["uni-modal", "video-geo(+audio) paper Acc"] == 66.4
    assert "1 in 1 frames" in caption
    sig, _ = tables.significance(ctx, preds)
    assert list(sig["SEW vs"]) == ["-SD2", "-CCA", "-SD1", "-(CCA & SD1)", "uni-modal"]
    assert sig["p (CCC)"].between(0, 1).all()
    t3, _ = tables.table3(ctx, preds)
    assert t3.loc["SEW (ours)", "arousal video-geo"] == pytest.approx(
        _ccc(preds_of[(plan.pair_label("sew", pair), "dev")], gold["dev"])
    )
    assert t3.loc["EmoBed [9]", "valence video-app"] == 0.564


def test_paper_values_cover_the_five_pairs():
    for dim, pairs in settings.PAPER_PAIRS.items():
        for pair in pairs:
            assert set(tables.paper_t2(dim, pair)) == set(tables._ROWS)
    assert tables.paper_t2("valence", ("video_appearance", "audio"))["sew"] == (0.554, 72.2)
    assert tables.paper_t2("arousal", ("video_appearance", "audio"))["sew"] == (0.544, 73.6)


# ----------------------------------------------------------------- end to end


@pytest.mark.slow
def test_smoke_run_end_to_end(small_corpus_root, tmp_path):
    c = load_config("smoke")
    c.data.root = str(small_corpus_root)
    c.sew.latent = 40  # > batch 32: the rank warning, once
    c.train.batch_size = 32
    losses._RANK_WARNED.clear()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = run(c, tmp_path)
    rank = [x for x in w if "rank" in str(x.message) or "dcca" in str(x.message)]
    assert len([x for x in rank if "SEW:" in str(x.message)]) == 1
    assert len([x for x in rank if issubclass(x.category, losses.RankDeficientWarning)]) <= 1
    t2 = pd.read_csv(tmp_path / "results" / "sew_table2_ablations.csv", index_col=0)
    assert list(t2.index) == ["SEW", "-(CCA & SD1)", "uni-modal"]
    assert t2["video-geo(+audio) dev CCC"].between(-1, 1).all()
    assert (tmp_path / "results" / "sew_table1_unimodal.md").is_file()
    assert (tmp_path / "results" / "sew_table3_comparison.md").is_file()
    assert set(res["dev_score"]) == {
        "uni-modal video-geo",
        "SEW video-geo(+audio)",
        "-(CCA & SD1) video-geo(+audio)",
    }


def test_combine_joins_an_arousal_and_a_valence_run(tmp_path):
    from ddat_jax.evaluation import io as eval_io
    from ddat_jax.methods.sew import combine

    for dim, value in (("arousal", 0.1), ("valence", 0.2)):
        res = tmp_path / dim / "results"
        col1 = "audio dev CCC"
        eval_io.write_table(
            pd.DataFrame({col1: [value]}, index=pd.Index([dim.capitalize()], name="dimension")),
            res,
            "sew_table1_unimodal",
            caption="Table 1: x. Per-frame y",
        )
        pair = "video-geo(+audio)" if dim == "arousal" else "audio(+video-geo)"
        eval_io.write_table(
            pd.DataFrame({f"{pair} dev CCC": [value, value / 2]}, index=["SEW", "uni-modal"]),
            res,
            "sew_table2_ablations",
            caption=f"Table 2 ({dim}): x. Per-frame y",
        )
        t3 = pd.DataFrame(
            {"arousal video-geo": [0.5, np.nan], "valence audio": [0.4, np.nan]},
            index=["EmoBed [9]", "SEW (ours)"],
        )
        t3.loc["SEW (ours)", f"{dim} {'video-geo' if dim == 'arousal' else 'audio'}"] = value
        eval_io.write_table(t3, res, "sew_table3_comparison", caption="Table 3: x. Per-frame y")
    out = combine.combine(tmp_path / "arousal", tmp_path / "valence")
    t1 = out["sew_table1_unimodal_both"][0]
    assert list(t1.index) == ["Arousal", "Valence"] and list(t1["audio dev CCC"]) == [0.1, 0.2]
    t2 = out["sew_table2_ablations_both"][0]
    assert t2.loc["SEW", "valence audio(+video-geo) dev CCC"] == 0.2
    assert t2.loc["uni-modal", "arousal video-geo(+audio) dev CCC"] == 0.05
    t3 = out["sew_table3_comparison_both"][0]
    assert t3.loc["SEW (ours)", "arousal video-geo"] == 0.1
    assert t3.loc["SEW (ours)", "valence audio"] == 0.2
    assert t3.loc["EmoBed [9]", "valence audio"] == 0.4
