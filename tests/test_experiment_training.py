"""The standard training of a job: loss-weight sweeps as members, selection on dev."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddat_jax.experiment.systems import Job, TrainSettings
from ddat_jax.experiment.training import member_hparams, select_member, weight_settings

SETTINGS = TrainSettings(
    train={"epochs": 1}, hparams={"learning_rate": 1e-3, "noise_std": 0.0, "l2": 0.0}, seeds=2
)


def job(**kw):
    base = dict(
        data={},
        lengths={},
        model_fn=None,
        archs=(None,),
        objective=None,
        loss_weights={"emotion": 1.0, "sigma": 1.0},
        settings=SETTINGS,
    )
    return Job(**(base | kw))


def test_tied_sweep_gives_every_setting_and_its_complement():
    j = job(sweep={"emotion": (0.0, 0.5, 2.0)}, tied={"sigma": ("emotion", 2.0)})
    settings = weight_settings(j)
    assert [(w["emotion"], w["sigma"]) for w in settings] == [(0.0, 2.0), (0.5, 1.5), (2.0, 0.0)]
    hp = member_hparams(j, settings, seeds=2)
    # settings x seeds, seeds innermost
    np.testing.assert_array_equal(hp["loss_weights"]["emotion"], [0, 0, 0.5, 0.5, 2, 2])
    np.testing.assert_array_equal(hp["loss_weights"]["sigma"], [2, 2, 1.5, 1.5, 0, 0])
    assert hp["learning_rate"].shape == (6,)


def test_no_sweep_is_one_setting_of_the_fixed_weights():
    assert weight_settings(job()) == [{"emotion": 1.0, "sigma": 1.0}]


def test_two_swept_weights_are_a_product():
    assert len(weight_settings(job(sweep={"emotion": (1, 2), "sigma": (0, 1, 2)}))) == 6


def members(scores):
    rows = [
        {"arch": a, "setting": s, "seed": k, "best_dev_score": v} for (a, s, k), v in scores.items()
    ]
    return pd.DataFrame(rows)


def test_selection_by_mean_over_seeds_then_best_seed():
    m = members(
        {
            ("1x8", 0, 0): 0.9,
            ("1x8", 0, 1): 0.1,  # mean 0.5, best single member
            ("1x8", 1, 0): 0.6,
            ("1x8", 1, 1): 0.7,  # mean 0.65: kept setting
            ("2x8", 0, 0): np.nan,
            ("2x8", 0, 1): 0.8,  # NaN never wins
        }
    )
    assert select_member(m, "mean_over_seeds") == 3
    assert select_member(m, "best_member") == 0
    with pytest.raises(ValueError, match="unknown selection"):
        select_member(m, "median")
