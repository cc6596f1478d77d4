"""From a ``config.data`` section to model-ready, standardised, delay-compensated data.

This is the one place where the config meets the data layer: it resolves the corpus root
(the embedded corpus when ``root`` is empty), loads one modality set × dimension, shifts
the labels back by the annotation delay and standardises the features with train
statistics.
"""

from __future__ import annotations

import time
from pathlib import Path

from absl import logging

from ddat_jax.data import corpus as corpus_lib
from ddat_jax.data import delay, preprocess, sim_creativeit, sim_omg, sim_sewa, synthetic


def _recola_like(preset: str, seed: int) -> Path:
    return synthetic.ensure_corpus(preset=preset, seed=seed)


# Embedded corpus presets: name -> ``(preset, seed) -> root`` (generated once, cached).
PRESETS = {
    "recola": _recola_like,
    "small": _recola_like,
    **dict.fromkeys(sim_sewa.PRESETS, sim_sewa.ensure_corpus),  # SEWA-like, CSV layout
    **dict.fromkeys(sim_omg.PRESETS, sim_omg.ensure_corpus),  # OMG-like, CSV layout
    **dict.fromkeys(sim_creativeit.PRESETS, sim_creativeit.ensure_corpus),  # CER-MTL
}


def resolve_root(data_cfg) -> Path:
    """Returns the corpus root: ``data_cfg.root`` or the cached embedded corpus.

    Generates the embedded corpus (preset ``data_cfg.preset``) on first use.
    """
    if data_cfg.root:
        root = Path(data_cfg.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"config.data.root={data_cfg.root!r} is not a directory; give the folder that "
                "holds features_audio/, ratings_gold_standard/, ... (AVEC 2016) or the CSV "
                "layout described in the README, or leave it empty for the embedded corpus"
            )
        return root
    if data_cfg.preset not in PRESETS:
        raise ValueError(
            f"config.data.preset={data_cfg.preset!r} is not an embedded corpus; valid: "
            f"{sorted(PRESETS)}"
        )
    return PRESETS[data_cfg.preset](str(data_cfg.preset), int(data_cfg.corpus_seed))


def modalities_of(data_cfg) -> tuple[str, ...]:
    """Splits ``"audio+video_geometric"`` into its modalities."""
    return tuple(m for m in str(data_cfg.modality).split("+") if m)


def prepare_corpus(data_cfg) -> corpus_lib.Corpus:
    """Loads, delay-compensates and standardises the corpus named by ``data_cfg``.

    Returns:
      A Corpus whose features are standardised with train statistics (NaN → 0) and whose
      labels (gold standard, rater traces, PU) are shifted back by
      ``round(delay_s / frame_period)`` frames with last-value padding (AVEC 2016 rule).
    """
    root = resolve_root(data_cfg)
    t0 = time.perf_counter()
    corpus = corpus_lib.load_corpus(
        root,
        modality=modalities_of(data_cfg),
        dimension=data_cfg.dimension,
        layout=data_cfg.layout,
        gold=data_cfg.gold,
        pu_ddof=data_cfg.pu_ddof,
        partitions=tuple(data_cfg.partitions),
    )
    logging.info("loaded %s in %.2f s", root, time.perf_counter() - t0)
    delay_frames = int(round(_delay_s(data_cfg.delay_s, corpus) / corpus.frame_period))
    corpus = preprocess.shift_corpus_labels(corpus, delay_frames)
    if "train" not in corpus.partitions:
        # Leave-one-partition-out corpora (sessions, no train partition): the statistics of
        # every recording; a method re-standardises per fold (CER-MTL does).
        every = [r for recs in corpus.partitions.values() for r in recs]
        return preprocess.standardise(corpus, stats=preprocess.fit_standardiser(every))
    return preprocess.standardise(corpus)


def _delay_s(value, corpus: corpus_lib.Corpus) -> float:
    """``config.data.delay_s``: seconds (a number), or ``"auto"``: estimated from the data
    (:func:`ddat_jax.data.delay.estimate_delay`, a ridge baseline's best dev CCC over the
    shifts 0-8 s; the curve is logged)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        est = delay.estimate_delay(corpus)
        logging.info("delay_s='auto': dev CCC per shift\n%s", est.curve.to_string(index=False))
        print(f"annotation delay estimated from data: {est.delay_s:g} s", flush=True)
        return est.delay_s
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"config.data.delay_s={value!r}: expected seconds (a number) or 'auto'"
        ) from None
