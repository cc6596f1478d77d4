"""Soft prediction: targets (EWE, scaled PU), settings, config, the paper's tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddat_jax.data import corpus as corpus_lib
from ddat_jax.data import targets
from ddat_jax.data.corpus import Corpus, Recording
from ddat_jax.experiment.systems import Context, Trained
from ddat_jax.methods import METHODS
from ddat_jax.methods.soft_prediction import evaluate, plan
from ddat_jax.methods.soft_prediction.settings import SoftSettings, settings_from_config

REPO = Path(__file__).resolve().parents[1]


def load_config(arg=None):
    spec = importlib.util.spec_from_file_location("sewa_soft", REPO / "configs" / "sewa_soft.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


# ------------------------------------------------------------------------------ targets


def ewe_reference(r: np.ndarray) -> np.ndarray:
    """The paper's Eq. 1-5 in plain NumPy, negative (or undefined) weights set to 0."""
    k = r.shape[1]
    mle = r.sum(axis=1) / k  # Eq. 5
    w = np.zeros(k)
    for j in range(k):
        a, b = r[:, j] - r[:, j].mean(), mle - mle.mean()  # Eq. 3, 4
        den = np.sqrt((a * a).sum()) * np.sqrt((b * b).sum())
        w[j] = max((a * b).sum() / den, 0.0) if den > 0 else 0.0  # Eq. 2
    if w.sum() == 0:
        w[:] = 1.0
    return (r * w).sum(axis=1) / w.sum()  # Eq. 1


def test_ewe_follows_the_paper_and_drops_a_contrary_rater():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 6, 300)
    truth = np.sin(t)
    r = np.stack([truth + 0.1 * rng.standard_normal(300) for _ in range(5)], axis=1)
    contrary = -truth + 0.1 * rng.standard_normal(300)
    r = np.concatenate([r, contrary[:, None]], axis=1)
    got = corpus_lib.gold_ewe(r)
    np.testing.assert_allclose(got, ewe_reference(r), atol=1e-6)
    np.testing.assert_allclose(got, r[:, :5] @ _weights(r)[:5] / _weights(r)[:5].sum(), atol=1e-6)
    pu = corpus_lib.perception_uncertainty(r)
    np.testing.assert_allclose(pu, r.std(axis=1, ddof=1), rtol=1e-6)


def _weights(r):
    mle = r.mean(axis=1)
    return np.array([max(np.corrcoef(r[:, j], mle)[0, 1], 0.0) for j in range(r.shape[1])])


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, (40, 4), elements=st.floats(-1, 1, allow_nan=False)))
def test_ewe_matches_the_reference_on_any_ratings(r):
    np.testing.assert_allclose(corpus_lib.gold_ewe(r), ewe_reference(r), atol=1e-5)


def test_pu_scalers():
    rng = np.random.default_rng(1)
    train = [rng.uniform(0.1, 0.6, 50), rng.uniform(0.05, 0.4, 30)]
    cat = np.concatenate(train)
    mm = targets.fit_pu_scaler(train, "minmax")
    scaled = mm(cat)
    assert scaled.min() == pytest.approx(0.0, abs=1e-6) and scaled.max() == pytest.approx(1.0)
    np.testing.assert_allclose(mm.inverse(scaled), cat, atol=1e-6)
    z = targets.fit_pu_scaler(train, "zscore")(cat)
    assert z.mean() == pytest.approx(0.0, abs=1e-6) and z.std() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(targets.fit_pu_scaler(train, "none")(cat), cat, rtol=1e-6)
    flat = targets.fit_pu_scaler([np.full(5, 0.3)], "minmax")
    assert np.isfinite(flat(np.full(5, 0.3))).all()
    with pytest.raises(ValueError, match="valid"):
        targets.fit_pu_scaler(train, "robust")


# ---------------------------------------------------------------------- config/settings


def test_config_variants_and_settings():
    c = load_config()
    s = settings_from_config(c)
    assert s.arch == (2, 240) and s.cell == "lstm" and s.bidirectional and s.init_scale == 0.1
    assert s.w_grid == tuple(round(0.1 * k, 1) for k in range(21)) and s.total == 2.0
    assert c.hparams.noise_std == 0.2 and c.train.epochs == 150 and c.train.patience == 20
    assert s.modalities == ("audio", "video") and s.dimensions == ("arousal", "valence")
    assert c.data.gold == "ewe" and c.data.delay_s == 4.0 and c.data.preset == "sewa"
    assert load_config("smoke").data.preset == "sewa_small"
    assert load_config("quick").model.arch == (1, 32)
    assert load_config("delay=auto").data.delay_s == "auto"
    assert load_config("dimension=valence").variant == "dimension=valence"
    assert "soft_prediction" in METHODS


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("soft.w_grid", (0.5, 1.0), "must hold 0 and 2"),
        ("soft.w_grid", (0.0, 2.5, 2.0), "distinct values"),
        ("soft.dimensions", ("valence",), "including"),
        ("soft.pu_scaling", "rank", "valid"),
        ("model.arch", (2,), "layers, units"),
    ],
)
def test_settings_refuse_bad_values(field, value, match):
    c = load_config()
    section, name = field.split(".")
    c[section][name] = value
    with pytest.raises(ValueError, match=match):
        settings_from_config(c)


# ------------------------------------------------------------------- tables on fakes


def _ccc(p, g):
    return 2 * np.cov(p, g, bias=True)[0, 1] / (p.var() + g.var() + (p.mean() - g.mean()) ** 2)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A context and trained grid systems with known outputs (no training)."""
    rng = np.random.default_rng(3)
    parts = {}
    for p, n in (("train", 3), ("dev", 4), ("test", 5)):
        recs = []
        for i in range(n):
            t = 120 + 10 * i
            gold = np.sin(np.linspace(0, 4 + i, t)) * 0.5
            pu = 0.2 + 0.1 * np.cos(np.linspace(0, 3 + i, t))
            x = rng.standard_normal((t, 4)).astype(np.float32)
            recs.append(Recording(f"{p}_{i}", np.arange(t) * 0.1, x, gold, None, pu))
        parts[p] = recs
    corpus = Corpus(
        parts,
        list("abcd"),
        [],
        0.1,
        ("audio", "video"),
        "arousal",
        None,
        modality_slices={"audio": (0, 2), "video": (2, 4)},
    )
    s = SoftSettings(
        dimensions=("arousal",),
        modalities=("audio", "video"),
        w_grid=(0.0, 1.0, 2.0),
        postprocess=False,
        significance_resamples=99,
    )
    ctx = Context(corpus, s, None, 0, tmp_path_factory.mktemp("run"), {})
    trained = {}
    for mod, base in (("audio", 0.6), ("video", 0.3)):
        for target in ("E", "sigma"):
            gold = {
                p: plan.gold_of(ctx, "arousal", t, p)
                for t in ("E", "sigma")
                for p in ("dev", "test")
            }
            outs = []
            for m in range(3):
                noise = base * (1.0 + 0.3 * m)
                outs.append(
                    {
                        p: {
                            head: [
                                (g + noise * rng.standard_normal(g.size))[:, None]
                                for g in plan.gold_of(ctx, "arousal", t, p)
                            ]
                            for head, t in (("emotion", "E"), ("sigma", "sigma"))
                        }
                        for p in ("dev", "test")
                    }
                )
            members = pd.DataFrame(
                {"w/emotion": [0.0, 1.0, 2.0], "best_dev_score": [0.2, 0.5, 0.4]}
            )
            name = plan.system_name("arousal", mod, target)
            trained[name] = Trained(
                name, name, None, None, None, 0.5, outs[1], 0.0, members, (), tuple(outs)
            )
            del gold
    return ctx, trained


def test_member_rows_single_ends_multi_best_interior(fake_run):
    _, trained = fake_run
    assert evaluate.member_rows(trained["arousal_audio_E"], 2.0) == {"single": 2, "multi": 1}
    assert evaluate.member_rows(trained["arousal_audio_sigma"], 2.0) == {"single": 0, "multi": 1}


def test_tables_against_numpy(fake_run):
    ctx, trained = fake_run
    out = evaluate.paper_tables(ctx, None, trained)
    t1, t2 = out["soft_table1_ccc"][0], out["soft_table2_rmse"][0]
    assert list(t1.index) == [
        "audio / single",
        "audio / multi",
        "video / single",
        "video / multi",
        "audio+video / single",
        "audio+video / multi",
    ]
    gold = {p: np.concatenate(plan.gold_of(ctx, "arousal", "E", p)) for p in ("dev", "test")}
    sig = {p: np.concatenate(plan.gold_of(ctx, "arousal", "sigma", p)) for p in ("dev", "test")}
    pred = lambda mod, t, row, head, p: np.concatenate(  # noqa: E731
        [o[:, 0] for o in trained[f"arousal_{mod}_{t}"].member_outputs[row][p][head]]
    )
    audio_single_e = pred("audio", "E", 2, "emotion", "test")
    assert t1.loc["audio / single", "arousal test E"] == pytest.approx(
        _ccc(audio_single_e, gold["test"])
    )
    video_multi_s = pred("video", "sigma", 1, "sigma", "dev")
    assert t1.loc["video / multi", "arousal dev σ"] == pytest.approx(
        _ccc(video_multi_s, sig["dev"])
    )
    rmse = np.sqrt(np.mean((audio_single_e - gold["test"]) ** 2))
    assert t2.loc["audio / single", "arousal test E"] == pytest.approx(rmse)
    # SLR late fusion: least squares on dev, applied to test.
    dev = np.stack([pred(m, "E", 1, "emotion", "dev") for m in ("audio", "video")], axis=1)
    test = np.stack([pred(m, "E", 1, "emotion", "test") for m in ("audio", "video")], axis=1)
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(dev)), dev], gold["dev"], rcond=None)
    fused = np.c_[np.ones(len(test)), test] @ coef
    got = t1.loc["audio+video / multi", "arousal test E"]
    assert got == pytest.approx(_ccc(fused, gold["test"]), abs=1e-6)
    assert t1.loc["audio / single", "arousal test E (paper)"] == 0.234
    assert t2.loc["audio+video / multi", "arousal dev σ (paper)"] == 0.173
    effects = out["soft_effects"][0]
    assert set(effects.index) == {"multi > single", "fusion > best modality", "E easier than σ"}
    grid = out["soft_grid_dev_ccc"][0]
    assert len(grid) == 12 and set(grid["w_E"]) == {0.0, 1.0, 2.0}


def test_figures(fake_run, tmp_path):
    from ddat_jax.methods.soft_prediction import figures

    ctx, trained = fake_run
    paths = figures.paper_figures(ctx, None, trained, tmp_path)
    assert [p.name for p in paths] == [
        "w_grid_arousal_audio.png",
        "w_grid_arousal_video.png",
        "fig4_soft_predictions.png",
    ]
    assert all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.slow
def test_smoke_run_end_to_end(tmp_path, monkeypatch):
    """``configs/sewa_soft.py:smoke`` through the experiment layer (minutes on 2 cores)."""
    from ddat_jax.experiment.run import run

    monkeypatch.setenv("DDAT_JAX_CACHE", str(tmp_path / "cache"))
    c = load_config("smoke")
    c.soft.dimensions = ("arousal",)
    res = run(c, tmp_path / "run")
    t1 = res["tables"]["soft_table1_ccc"]
    assert t1.shape == (6, 8) and np.isfinite(t1.filter(like="test E").iloc[:, 0]).all()
    assert (tmp_path / "run" / "figures" / "fig4_soft_predictions.png").is_file()
    members = pd.read_csv(tmp_path / "run" / "results" / "members.csv")
    assert len(members) == 4 * 3  # 2 modalities x 2 primary targets x 3 settings
