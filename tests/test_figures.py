"""Tests for ddat_jax.evaluation.figures: PNGs are written, readable, non-blank, validated."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import image as mpimg

from ddat_jax.evaluation import figures
from ddat_jax.predictions import Predictions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T = 400


@pytest.fixture
def recording():
    rng = np.random.default_rng(0)
    times = np.arange(T) * 0.04
    gold = np.convolve(rng.standard_normal(T), np.ones(25) / 5.0, mode="same") * 0.3
    ratings = gold[:, None] + 0.1 * rng.standard_normal((T, 6))
    return times, gold, ratings, rng


def check_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    rgb = img[..., :3]
    assert rgb.std() > 0.01  # something is drawn, not a blank canvas
    # Only the PNG itself is left in the folder (the temporary file was renamed).
    assert [f for f in os.listdir(path.parent) if f.endswith(".tmp")] == []


def test_plot_predictions_writes_png(recording, tmp_path):
    times, gold, _, rng = recording
    preds = {
        "STL": gold + 0.2 * rng.standard_normal(T),
        "DDAT-RE sum": gold + 0.05 * rng.standard_normal(T),
    }
    out = figures.plot_predictions(
        tmp_path / "figs" / "fig3_test_9.png", times, gold, preds, title="test_9", ylabel="arousal"
    )
    assert out == tmp_path / "figs" / "fig3_test_9.png"
    check_png(out)


def test_plot_predictions_without_gold(recording, tmp_path):
    times, gold, _, _ = recording
    check_png(figures.plot_predictions(tmp_path / "p.png", times, None, {"DDAT": gold}, title="t"))


def test_plot_difficulty_writes_png(recording, tmp_path):
    times, gold, ratings, rng = recording
    out = figures.plot_difficulty(
        tmp_path / "difficulty.png",
        times,
        difficulty={"RE (E_t)": 50.0 * np.abs(rng.standard_normal(T)), "flat": np.ones(T)},
        ratings=ratings,
        pu=ratings.std(axis=1, ddof=1),
        title="dev_1 arousal",
    )
    check_png(out)


def test_plot_difficulty_without_ratings(recording, tmp_path):
    times, _, _, rng = recording
    out = figures.plot_difficulty(
        tmp_path / "d.png",
        times,
        difficulty={"RE": rng.standard_normal(T)},
        ratings=None,
        pu=None,
        title="no raters",
        normalize=False,
    )
    check_png(out)


def test_figures_reject_bad_input(recording, tmp_path):
    times, gold, ratings, _ = recording
    with pytest.raises(ValueError, match="frames"):
        figures.plot_predictions(tmp_path / "a.png", times, gold[:-1], {}, title="t")
    with pytest.raises(ValueError, match="frames"):
        figures.plot_predictions(tmp_path / "a.png", times, gold, {"x": gold[:-1]}, title="t")
    with pytest.raises(ValueError, match="nothing to plot"):
        figures.plot_predictions(tmp_path / "a.png", times, None, {}, title="t")
    with pytest.raises(ValueError, match=r"\.png"):
        figures.plot_predictions(tmp_path / "a.pdf", times, gold, {}, title="t")
    with pytest.raises(ValueError, match="ratings"):
        figures.plot_difficulty(
            tmp_path / "a.png", times, difficulty={}, ratings=ratings[:-1], pu=None, title="t"
        )
    with pytest.raises(ValueError, match="nothing to plot"):
        figures.plot_difficulty(
            tmp_path / "a.png", times, difficulty={}, ratings=None, pu=None, title="t"
        )
    assert not (tmp_path / "a.png").exists()


def test_figures_leave_pyplot_and_backend_alone(tmp_path):
    code = (
        "import sys, numpy as np, matplotlib\n"
        "before = matplotlib.rcParams._get('backend')\n"
        "from ddat_jax.evaluation import figures\n"
        "t = np.arange(10) * 0.04\n"
        f"figures.plot_predictions({str(tmp_path / 'x.png')!r}, t, t, {{'a': t}}, title='x')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.rcParams._get('backend') == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (tmp_path / "x.png").stat().st_size > 0


def small_predictions(rng, test_labels=False):
    gold = [np.cumsum(rng.standard_normal(n)) * 0.05 for n in (120, 90)]

    def system(noise, extras):
        parts = {}
        for p in ("dev", "test"):
            parts[p] = {
                "names": [f"{p}_1", f"{p}_2"],
                "pred": [g + noise * rng.standard_normal(g.size) for g in gold],
                "gold": gold if p == "dev" or test_labels else None,
                "extras": extras,
            }
        return parts

    re = {"difficulty": [np.abs(rng.standard_normal(g.size)) for g in gold]}
    return Predictions.from_arrays(
        {"STL": system(0.3, {}), "DDAT-RE sum": system(0.1, re)}, dims="arousal"
    )


def test_prediction_and_difficulty_traces_from_predictions(tmp_path):
    rng = np.random.default_rng(3)
    preds = small_predictions(rng)
    check_png(figures.prediction_traces(preds, tmp_path / "dev.png", partition="dev", recording=1))
    check_png(
        figures.prediction_traces(
            preds, tmp_path / "test.png", partition="test", recording="test_2", labels=["STL"]
        )
    )
    ratings = rng.standard_normal((90, 3))
    check_png(
        figures.difficulty_traces(
            preds,
            tmp_path / "d.png",
            partition="dev",
            recording="dev_2",
            signals={"RE (E_t)": ("DDAT-RE sum", "difficulty")},
            ratings=ratings,
        )
    )
    with pytest.raises(ValueError, match="no recording"):
        figures.prediction_traces(preds, tmp_path / "x.png", partition="dev", recording="dev_9")
    with pytest.raises(ValueError, match="out of range"):
        figures.prediction_traces(preds, tmp_path / "x.png", partition="dev", recording=2)
    with pytest.raises(ValueError, match="no system has partition"):
        figures.prediction_traces(preds, tmp_path / "x.png", partition="train")
