"""The methods an experiment can run: ``METHODS = {name: Method}``.

A method is a plain :class:`Method` record of functions; the experiment layer
(:func:`ddat_jax.experiment.run`) does everything else. Adding one: a module under
``ddat_jax/methods/`` defining ``METHOD``, one entry here, a config file in ``configs/``
and its tests (README: "Adding a method").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def _no_tables(ctx, preds, trained) -> dict:
    return {}


def _no_figures(ctx, preds, trained, folder) -> list:
    return []


def _any_corpus(corpus) -> None:
    return None


def require_labels(corpus, parts: Sequence[str], purpose: str) -> None:
    """Raises ``ValueError`` unless every recording of each partition has a gold standard.

    Args:
      corpus: the prepared corpus.
      parts: the partitions that need labels, e.g. ``("train", "dev")``.
      purpose: what they are needed for, for the message (e.g. "training and model
        selection").
    """
    for part in parts:
        recs = corpus.partitions.get(part) or []
        if not recs or not all(r.has_labels for r in recs):
            raise ValueError(
                f"partition {part!r} needs recordings with labels (gold standard) for {purpose}"
            )


@dataclasses.dataclass(frozen=True)
class Method:
    """What a method contributes to an experiment.

    Attributes:
      name: the ``config.method`` value.
      settings: ``config -> frozen settings`` (the only reader of the method's config
        sections; validates them before any data is loaded).
      plan: ``context -> tuple[System, ...]`` (the table rows and their dependencies).
      prediction: ``(context, trained systems, system name, outputs of one partition,
        partition) -> (per-recording [T, D] predictions, extras dict or None)``; extras
        are per-recording per-frame signals (e.g. a difficulty signal) for the tables.
      comparisons: ``row labels -> {row: {role: baseline label}}`` for significance.
      tables: ``(context, predictions, trained) -> {name: (DataFrame, caption)}``: the
        paper's tables beyond the generic CCC tables.
      figures: ``(context, predictions, trained, folder) -> [paths]``.
      check_corpus: ``corpus -> None``; raises ``ValueError`` when the corpus lacks
        what the method needs.
      row_order: system names in table order.
      n_resamples: ``context -> int``: permutation-test resamples of the significance
        columns.
      dims: ``context -> tuple of dimension names`` of the predictions' columns
        (default: the corpus's one dimension).
    """

    name: str
    settings: Callable[[Any], Any]
    plan: Callable[[Any], Sequence[Any]]
    prediction: Callable[..., tuple]
    comparisons: Callable[[Sequence[str]], Mapping[str, Mapping[str, str]]]
    tables: Callable[..., dict] = _no_tables
    figures: Callable[..., list] = _no_figures
    check_corpus: Callable[[Any], None] = _any_corpus
    row_order: tuple[str, ...] = ()
    n_resamples: Callable[[Any], int] = lambda ctx: 9999
    dims: Callable[[Any], tuple[str, ...]] = lambda ctx: (ctx.corpus.dimension,)
    run: Callable[..., dict] | None = None  # replaces the whole experiment (a driver of several)


def _methods() -> dict[str, Method]:
    from ddat_jax.methods import cer_mtl, ddat, implicit_fusion, sew, soft_prediction

    return {
        "cer_mtl": cer_mtl.METHOD,
        "ddat": ddat.METHOD,
        "ddat_paper": ddat.PAPER_METHOD,
        "implicit_fusion": implicit_fusion.METHOD,
        "sew": sew.METHOD,
        "soft_prediction": soft_prediction.METHOD,
    }


METHODS: dict[str, Method] = _methods()
