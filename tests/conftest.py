"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_corpus_root(tmp_path_factory):
    """The embedded corpus, preset ``small`` (seed 0), generated once per test session.

    A simulated RECOLA-shaped corpus in the AVEC 2016 layout with its answer key in
    ``answer_key/`` (see :mod:`ddat_jax.data.synthetic`). Treat it as read-only.
    """
    from ddat_jax.data import synthetic

    return synthetic.generate_corpus(
        tmp_path_factory.mktemp("corpus") / "small", preset="small", seed=0
    )
