"""AVEC-official scoring of the DDAT method: the forward shift and the delay inference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ddat_jax.data import preprocess
from ddat_jax.methods.ddat import official, tables


def _reference_forward(p, d):
    # AVEC 2016 baseline, final step: [repmat(pred(1), d, 1); pred(1:end-d)]
    return np.array([p[0]] * d + list(p[: len(p) - d]))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.integers(0, 12), st.integers(0, 10_000))
def test_shift_forward_matches_reference(t, d, seed):
    p = np.random.default_rng(seed).normal(size=t)
    d = min(d, t - 1)
    np.testing.assert_array_equal(official.shift_forward(p, d), _reference_forward(p, d))


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 60), st.integers(0, 4), st.integers(0, 10_000))
def test_delay_is_inferred_from_the_label_shift(t, d, seed):
    g = np.random.default_rng(seed).normal(size=t).astype(np.float32)
    shifted = preprocess.shift_labels(g, d)
    assert official.infer_delay_frames(g, shifted) == d
    # Back then forward: the original timeline except the first d frames.
    np.testing.assert_allclose(official.shift_forward(shifted, d)[d:], g[d:])


def test_own_difficulty_per_system():
    """Eq. 12: RE systems are tuned with RE, PU systems with predicted PU, baselines never."""
    assert tables.OWN_SIGNAL["ddat_re_sum"] == tables.OWN_SIGNAL["ddat_re_vector"] == "re"
    assert tables.OWN_SIGNAL["ddat_pu"] == "pu"
    assert "stl" not in tables.OWN_SIGNAL and "cl_gru" not in tables.OWN_SIGNAL


def test_difficulty_legend_names_only_what_is_drawn():
    legend = tables.difficulty_legend({"re": 0}, "STL", "abs")
    assert list(legend) == ["ε: RE (abs sum, MTL-RE)"]
    assert not any("PU" in k for k in legend)
