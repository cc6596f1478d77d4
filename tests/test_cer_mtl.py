"""CER-MTL method: chunked data, settings, plan, paper tables and a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddat_jax.data.corpus import Corpus, Recording
from ddat_jax.methods.cer_mtl import data as cer_data
from ddat_jax.methods.cer_mtl import plan as cer_plan
from ddat_jax.methods.cer_mtl import tables as cer_tables
from ddat_jax.methods.cer_mtl.settings import CERSettings, settings_from_config
from ddat_jax.models.cer import context_frames, gather_windows

REPO = Path(__file__).resolve().parents[1]


def load_config(arg=None):
    spec = importlib.util.spec_from_file_location("recola_cer", REPO / "configs/recola_cer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_chunks_by_hand():
    x = np.arange(10.0)[:, None]
    chunks = cer_data.chunk_array(x, 4, 3, 1)
    assert chunks.shape == (3, 8, 1)
    np.testing.assert_array_equal(chunks[0, :, 0], [0, 0, 0, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(chunks[2, :, 0], [5, 6, 7, 8, 9, 9, 9, 9])
    mask = cer_data.chunk_mask(10, 4, 3, 1)
    np.testing.assert_array_equal(mask[2], [0, 0, 0, 1, 1, 0, 0, 0])
    assert mask.sum() == 10


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(1, 23), min_size=1, max_size=3),
    st.integers(1, 7),
    st.integers(0, 5),
    st.integers(0, 3),
)
def test_unchunk_inverts_chunking(lengths, chunk, left, right):
    rng = np.random.default_rng(0)
    recs = [rng.normal(size=(t, 2)) for t in lengths]
    part = cer_data.chunk_partition(recs, recs, chunk=chunk, left=left, right=right)
    assert part["mask"].sum() == sum(lengths)
    back = cer_data.unchunk(list(part["targets"]["emotion"]), lengths, chunk, left)
    for a, b in zip(back, recs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="chunks given"):
        cer_data.unchunk(list(part["inputs"]) + [part["inputs"][0]], lengths, chunk, left)


@pytest.mark.parametrize("causal", [True, False])
def test_windows_from_chunks_equal_windows_of_the_recording(causal):
    """Gathered from chunks == built from the whole recording with repeated edge frames."""
    rng = np.random.default_rng(1)
    n, t, chunk, frames = 5, 3, 7, 30
    x = rng.normal(size=(frames, 2)).astype(np.float32)
    left, right = context_frames(n, t, causal)
    part = cer_data.chunk_partition([x], None, chunk=chunk, left=left, right=right)
    images = np.asarray(gather_windows(jnp.asarray(part["inputs"]), n, t, causal))
    got = images.reshape(-1, n, 2)[:frames]  # target frames in order (last chunk padded)
    offsets = [(j - n + 1) * t if causal else (j - n // 2 + 1) * t for j in range(n)]
    for frame in range(frames):
        idx = np.clip([frame + o for o in offsets], 0, frames - 1)
        np.testing.assert_array_equal(got[frame], x[idx])


def test_settings_validate_fields():
    c = load_config()
    s = settings_from_config(c)
    assert s.dims == ("arousal", "valence") and s.window == 20
    assert s.variants[0] == ("audio", "video_appearance")
    assert len(cer_plan.specs(s)) == 3 * 3 + 2 + 2
    for field, value, match in (
        ("cer.losses", ("ccc", "huber"), "cer.losses"),
        ("cer.variants", ("audio", "video_geometric", "audio"), "does not load"),
        ("cer.windows", (20, 20), "distinct"),
        ("cer.paper", "avec", "cer.paper"),
        ("data.delay_s", 2.4, "delay_s"),
    ):
        bad = load_config()
        section, name = field.split(".")
        bad[section][name] = value
        with pytest.raises(ValueError, match=match):
            settings_from_config(bad)


def _toy(rng, s: CERSettings):
    """A corpus with 3 dev recordings and 'trained' systems whose outputs are chunked."""
    recs = []
    for i in range(3):
        t = 40 + 7 * i
        g = {d: rng.normal(size=t).astype(np.float32) for d in s.dims}
        recs.append(
            Recording(
                name=f"dev_{i}",
                times=np.arange(t) * 0.04,
                features=rng.normal(size=(t, 3)).astype(np.float32),
                gold=g[s.dims[0]],
                other_gold={d: g[d] for d in s.dims[1:]},
            )
        )
    corpus = Corpus(
        partitions={"dev": recs},
        feature_names=["a/0", "a/1", "b/0"],
        rater_names=[],
        frame_period=0.04,
        modalities=("a", "b"),
        dimension=s.dims[0],
        root=Path("."),
        modality_slices={"a": (0, 2), "b": (2, 3)},
        other_dimensions=s.dims[1:],
    )
    ctx = SimpleNamespace(corpus=corpus, settings=s, seed=0)
    trained, preds = {}, {}
    for k, spec in enumerate(cer_plan.specs(s)):
        left, right = context_frames(spec.window, s.stride, s.causal)
        noise = 0.3 * (k + 1)
        per = [
            np.stack([cer_plan.gold_of(r, corpus, d) for d in spec.dims], 1)
            + noise * rng.normal(size=(r.num_frames, len(spec.dims)))
            for r in recs
        ]
        part = cer_data.chunk_partition(per, per, chunk=s.chunk, left=left, right=right)
        out = list(part["targets"]["emotion"])
        trained[spec.name] = SimpleNamespace(outputs={"dev": {"emotion": out}}, label=spec.label)
        preds[spec.name] = per
    return ctx, trained, preds


def test_paper_tables_score_every_dimension():
    from ddat_jax import metrics

    s = CERSettings(
        dims=("activation", "valence", "dominance"),
        variants=(("a", "b"), ("a",)),
        variant_labels=("Multimodal", "Speech"),
        losses=("ccc", "mse"),
        windows=(20, 40),
        stride=2,
        chunk=8,
        paper="creativeit",
        significance_resamples=99,
    )
    ctx, trained, preds = _toy(np.random.default_rng(2), s)
    out = cer_tables.paper_tables(ctx, None, trained)
    recs = ctx.corpus.partitions["dev"]

    def ref(name, j, d):
        p = np.concatenate([x[:, j] for x in preds[name]])
        g = np.concatenate([cer_plan.gold_of(r, ctx.corpus, d) for r in recs])
        return metrics.ccc(p, g)

    losses = out["cer_table_losses"][0]
    assert list(losses.index) == ["Multimodal", "Speech"]
    assert losses.loc["Speech", "MSE loss Dom"] == pytest.approx(
        ref("mtl_speech_mse_n20", 2, "dominance"), abs=1e-6
    )
    assert losses.loc["Multimodal", "CCC loss Act paper"] == 0.38
    t3 = out["cer_table3_mtl_stl"][0]
    assert t3.loc["STL", "Val"] == pytest.approx(ref("stl_valence_n20", 0, "valence"), abs=1e-6)
    assert t3.loc["STL", "Val paper"] == 0.10
    t4 = out["cer_table4_window"][0]
    assert list(t4.index) == [20, 40] and t4.loc[40, "Act paper"] == 0.42
    claims = out["cer_claims"][0]
    assert isinstance(claims, pd.DataFrame) and claims["p (A > B)"].between(0, 1).all()
    row = claims[
        (claims["A"] == trained["mtl_multimodal_ccc_n20"].label) & (claims["dim"] == "Val")
    ]
    expected = ref("mtl_multimodal_ccc_n20", 1, "valence") - ref(
        "mtl_multimodal_mse_n20", 1, "valence"
    )
    assert row["ΔCCC (A−B)"].iloc[0] == pytest.approx(expected, abs=1e-6)


def test_rolling_ccc_matches_a_loop():
    from ddat_jax import metrics

    rng = np.random.default_rng(3)
    p, g = rng.normal(size=50), rng.normal(size=50)
    r = cer_tables.rolling_ccc(p, g, 10)
    assert np.isnan(r[:9]).all()
    assert r[30] == pytest.approx(metrics.ccc(p[21:31], g[21:31]))


def test_tiny_run_end_to_end(tmp_path, small_corpus_root):
    from ddat_jax.experiment import run

    c = load_config("smoke")
    c.data.root = str(small_corpus_root)
    c.cer.variants = ("audio+video_appearance",)
    c.cer.variant_labels = ("Multimodal",)
    c.cer.windows = (6,)
    c.cer.losses = ("ccc",)
    c.cer.stl = False
    c.train.epochs = 1
    c.train.checkpoint_every = 1
    c.run.parallel = 1
    result = run(c, tmp_path)
    t = result["tables"]["cer_table_losses"]
    assert list(t.index) == ["Multimodal"]
    assert t[["CCC loss Act", "CCC loss Val"]].abs().le(1).all(axis=None)
    assert t.loc["Multimodal", "CCC loss Act paper"] == 0.66
    assert len(result["tables"]["cer_claims"]) == 0  # one system: nothing to compare
    assert (tmp_path / "figures" / "cer_fig2_predictions.png").is_file()
    assert (tmp_path / "results" / "cer_claims.md").is_file()


def test_fold_job_trains_on_the_other_partitions_with_their_statistics():
    from ddat_jax.experiment.systems import Job

    rng = np.random.default_rng(4)
    data, lengths = {}, {}
    for k, part in enumerate(("s1", "s2", "s3")):
        x = rng.normal(loc=k, scale=k + 1, size=(4, 6, 2)).astype(np.float32)
        mask = np.zeros((4, 6), bool)
        mask[:, 2:] = True
        data[part] = {"inputs": x, "mask": mask, "targets": {"emotion": x[..., :1]}}
        lengths[part] = np.full(4, 6)
    job = Job(data, lengths, None, (None,), None, {}, None)
    fold = cer_plan._fold_job(job, "s2")
    assert set(fold.data) == {"train", "dev"}
    raw = np.concatenate([data["s1"]["inputs"], data["s3"]["inputs"]])
    valid = np.concatenate([data["s1"]["mask"], data["s3"]["mask"]])
    mean, std = raw[valid].mean(0), raw[valid].std(0, ddof=1)
    np.testing.assert_allclose(
        fold.data["train"]["inputs"], (raw - mean) / std, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        fold.data["dev"]["inputs"], (data["s2"]["inputs"] - mean) / std, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(fold.data["dev"]["mask"], data["s2"]["mask"])
    assert len(fold.lengths["train"]) == 8
    thinned = cer_plan._fold_job(job, "s2", every=3)
    np.testing.assert_array_equal(
        thinned.data["train"]["mask"], np.concatenate([data["s1"]["mask"], data["s3"]["mask"]])[::3]
    )
    assert len(thinned.lengths["train"]) == 3


@pytest.mark.slow
def test_leave_one_session_out_run(tmp_path):
    """configs/creativeit_cer.py:smoke end to end (5 folds per system)."""
    from ddat_jax.experiment import run

    spec = importlib.util.spec_from_file_location("cit", REPO / "configs/creativeit_cer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config("smoke")
    c.data.root = str(sim_creativeit_root(tmp_path))
    c.cer.losses = ("ccc",)
    result = run(c, tmp_path / "run")
    t = result["tables"]["cer_table_losses"]
    assert t.loc["Multimodal", "CCC loss Dom paper"] == 0.18
    assert np.isfinite(t.loc["Multimodal", ["CCC loss Act", "CCC loss Val", "CCC loss Dom"]]).all()
    members = pd.read_csv(tmp_path / "run" / "results" / "members.csv")
    assert sorted(members["fold"].unique()) == [f"session{i}" for i in range(1, 6)]


def sim_creativeit_root(tmp_path):
    from ddat_jax.data import sim_creativeit

    return sim_creativeit.generate_corpus(tmp_path / "cit", preset="creativeit_small", seed=0)
