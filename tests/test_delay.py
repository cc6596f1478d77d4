"""Annotation delay estimated from data (``ddat_jax.data.delay``, ``delay_s="auto"``)."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest
from scipy import signal

from ddat_jax.data import delay, prepare, sim_sewa, synthetic
from ddat_jax.data.corpus import Corpus, Recording


def _toy_corpus(lag: int, *, n_rec=3, n=600, seed=0) -> Corpus:
    """Features observe a smooth latent now; the gold is the latent ``lag`` frames late."""
    rng = np.random.default_rng(seed)
    parts = {}
    for part in ("train", "dev"):
        recs = []
        for i in range(n_rec):
            z = signal.lfilter([0.1], [1, -0.9], rng.standard_normal(n + lag))
            x = np.stack([z[lag:], z[lag:] ** 2, rng.standard_normal(n)], axis=1)
            x[:, :2] += 0.3 * rng.standard_normal((n, 2))
            gold = z[:n]  # gold(t) = z(t - lag) in the features' frame time
            recs.append(
                Recording(
                    f"{part}_{i}", np.arange(n) * 0.1, x.astype(np.float32), gold.astype(np.float32)
                )
            )
        parts[part] = recs
    return Corpus(parts, ["a", "b", "c"], [], 0.1, ("toy",), "arousal", None)


@pytest.mark.parametrize("lag", [0, 7, 23])
def test_recovers_a_known_lag(lag):
    est = delay.estimate_delay(_toy_corpus(lag), max_s=4.0)
    assert est.frames == lag and est.delay_s == pytest.approx(lag * 0.1)
    curve = est.curve
    assert list(curve.columns) == ["shift_s", "frames", "dev_ccc", "alpha"]
    assert len(curve) == 41 and curve["dev_ccc"].idxmax() == lag
    coarse = delay.estimate_delay(_toy_corpus(lag), max_s=4.0, step_s=0.5)
    assert len(coarse.curve) == 9 and abs(coarse.frames - lag) <= 2


def test_ridge_matches_a_direct_solve():
    """One shift, one penalty: the eigendecomposition path equals ``solve``."""
    c = _toy_corpus(5)
    got = delay.delay_curve(c, [5], alphas=[10.0])["dev_ccc"].iloc[0]
    from ddat_jax.data import preprocess

    s = preprocess.standardise(c)
    x = np.concatenate([r.features[:-5] for r in s.partitions["train"]]).astype(np.float64)
    y = np.concatenate([r.gold[5:] for r in s.partitions["train"]]).astype(np.float64)
    xd = np.concatenate([r.features[:-5] for r in s.partitions["dev"]]).astype(np.float64)
    yd = np.concatenate([r.gold[5:] for r in s.partitions["dev"]]).astype(np.float64)
    mu = x.mean(0)
    w = np.linalg.solve((x - mu).T @ (x - mu) + 10 * np.eye(3), (x - mu).T @ (y - y.mean()))
    p = (xd - mu) @ w + y.mean()
    ref = 2 * np.cov(p, yd, bias=True)[0, 1] / (p.var() + yd.var() + (p.mean() - yd.mean()) ** 2)
    assert got == pytest.approx(ref, rel=1e-9)


def _data_cfg(root, delay_s, **kw):
    cfg = dict(
        root=str(root),
        preset="",
        corpus_seed=0,
        layout="auto",
        modality="video",
        dimension="arousal",
        gold="ewe",
        partitions=("train", "dev", "test"),
        pu_ddof=1,
        delay_s=delay_s,
    )
    return ml_collections.ConfigDict({**cfg, **kw})


def test_prepare_auto_and_numeric_delays(tmp_path):
    root = sim_sewa.generate_corpus(tmp_path / "c", preset="sewa_small")
    raw = prepare.corpus_lib.load_corpus(root, modality="video", dimension="arousal", gold="ewe")
    est = delay.estimate_delay(raw)
    auto = prepare.prepare_corpus(_data_cfg(root, "auto"))
    numeric = prepare.prepare_corpus(_data_cfg(root, est.delay_s))
    text = prepare.prepare_corpus(_data_cfg(root, str(est.delay_s)))
    for a, b, c in zip(
        auto.partitions["dev"], numeric.partitions["dev"], text.partitions["dev"], strict=True
    ):
        np.testing.assert_array_equal(a.gold, b.gold)
        np.testing.assert_array_equal(a.gold, c.gold)
    r0 = raw.partitions["dev"][0]
    np.testing.assert_array_equal(
        numeric.partitions["dev"][0].gold[: -est.frames], r0.gold[est.frames :]
    )
    with pytest.raises(ValueError, match="'auto'"):
        prepare.prepare_corpus(_data_cfg(root, "four seconds"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset,modality,dimension,expected",
    [
        ("sewa", "audio+video", "arousal", 4.0),
        ("sewa", "audio+video", "valence", 4.0),
        ("recola", "audio", "arousal", 2.4),
        pytest.param(
            "recola",
            "video_geometric",
            "valence",
            2.4,
            marks=pytest.mark.xfail(
                reason="measured 3.0 s (gold vs latent peaks at 2.4 s; the 8 s geometric "
                "functionals flatten the ridge curve)",
                strict=False,
            ),
        ),
    ],
)
def test_answer_keys(preset, modality, dimension, expected):
    """Within 0.2 s of the raters' mean delay of the answer key, with the modality that
    carries the dimension (a weak one gives a flat curve: RECOLA audio -> valence peaks at
    3.4 s, video_geometric -> arousal at 3.7 s; measured, not asserted)."""
    if preset == "sewa":
        root, gold = sim_sewa.ensure_corpus("sewa", 0, progress=None), "ewe"
    else:
        root, gold = synthetic.ensure_corpus("recola", 0, progress=None), "provided"
    raw = prepare.corpus_lib.load_corpus(
        root, modality=modality.split("+"), dimension=dimension, gold=gold
    )
    est = delay.estimate_delay(raw)
    assert abs(est.delay_s - expected) <= 0.2, est.delay_s
