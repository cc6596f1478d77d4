"""Shared pieces of the experiment configs (big_vision style).

Config files in ``configs/`` are Python modules with ``get_config(arg=None)``; ``arg`` is a
string of comma-separated ``key=value`` pairs and bare flags, for example::

    python -m ddat_jax.main \
        --config=configs/recola_re.py:modality=video_geometric,dimension=valence,smoke

All defaults live here and in the config files; library functions take explicit keyword
arguments and never read a config.
"""

from __future__ import annotations

import ml_collections

# Keys accepted in the config-file string argument, and how to convert their values.
_ARG_TYPES = {
    "modality": str,
    "dimension": str,
    "preset": str,
    "seed": int,
    "smoke": bool,
    "aux": str,
}


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """Parses a big_vision-style config argument ``"k=v,k2=v2,flag"``.

    Args:
      arg: the string after ``:`` in ``--config=path.py:arg`` (``None`` or ``""`` for none).
      **defaults: the accepted keys with their default values; a bare ``flag`` sets a bool key.

    Returns:
      A ConfigDict with every key of ``defaults``, overridden by ``arg``.

    Raises:
      ValueError: an unknown key, or a value that does not convert to the default's type.
    """
    out = ml_collections.ConfigDict(defaults)
    if not arg:
        return out
    for item in arg.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if key not in defaults:
            raise ValueError(
                f"unknown config argument {key!r} in {arg!r}; valid: {sorted(defaults)}"
            )
        kind = type(defaults[key])
        if not sep:
            if kind is not bool:
                raise ValueError(f"config argument {key!r} needs a value ({key}=...)")
            out[key] = True
            continue
        if kind is bool:
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"config argument {key}={value!r}: expected true/false")
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            try:
                out[key] = kind(value)
            except ValueError as err:
                raise ValueError(
                    f"config argument {key}={value!r}: expected {kind.__name__}"
                ) from err
    return out


def variant_of(args: ml_collections.ConfigDict, **defaults) -> str:
    """The config arguments that differ from their defaults, canonically ordered
    (``"dimension=valence,smoke"``); names the default workdir of a variant."""
    parts = []
    for key in sorted(defaults):
        value = args[key]
        if value == defaults[key]:
            continue
        parts.append(key if value is True else f"{key}={value}")
    return ",".join(parts)


def data_config(*, modality: str = "audio", dimension: str = "arousal", preset: str = "recola"):
    """The ``config.data`` section: where the corpus is and how it is read.

    ``root=""`` means the embedded default corpus (generated once into the user cache
    with ``preset``); any other value is a path to an AVEC 2016 copy or a CSV-layout corpus.
    """
    c = ml_collections.ConfigDict()
    c.root = ""  # "" = embedded synthetic corpus; else /path/to/AVEC2016 or CSV layout.
    c.preset = preset  # embedded corpus preset: "recola" | "small".
    c.corpus_seed = 0  # seed of the embedded corpus (independent of the training seed).
    c.layout = "auto"  # "auto" | "avec2016" | "csv".
    c.modality = modality  # one of the AVEC modalities, or "audio+video_geometric".
    c.dimension = dimension  # "arousal" | "valence".
    c.gold = "provided"  # "provided" | "mean" | "ccc_centring" | "ewe".
    c.partitions = ("train", "dev", "test")  # ("train", "dev") for a corpus without test set.
    c.pu_ddof = 1  # ddof of the std over raters (perception uncertainty).
    c.delay_s = 2.4  # annotation delay compensation: labels shifted back by this many seconds.
    return c


def train_config() -> ml_collections.ConfigDict:
    """The ``config.train`` section: everything static about one training (a change means
    a new compilation). Loss kinds and weights are the method's (its objective)."""
    c = ml_collections.ConfigDict()
    c.epochs = 60  # maximum epochs (early stopping on the dev score may end sooner)
    c.batch_size = 4  # sequences per minibatch
    c.patience = 15  # epochs without a new best dev score before stopping; <= 0: never
    c.optimizer = "adam"  # "adam" | "sgd" (with momentum)
    c.momentum = 0.9  # of "sgd"
    c.nesterov = False  # of "sgd"
    c.eval_every = 1  # dev evaluation every this many epochs (and at the last)
    c.eval_batch_size = 0  # sequences per forward pass when predicting; 0 = all at once
    c.log_every = 1  # epochs per jitted chunk (progress line and metrics at chunk ends)
    c.checkpoint_every = 10  # epochs between orbax checkpoints (multiple of log_every)
    c.keep_checkpoints = 2  # checkpoints kept on disk
    c.on_nonfinite = "warn"  # a member whose loss goes NaN/Inf: "warn" (frozen) | "raise"
    return c


def hparams_config() -> ml_collections.ConfigDict:
    """The ``config.hparams`` section: the continuous knobs (traced: a grid is one vmap)."""
    c = ml_collections.ConfigDict()
    c.learning_rate = 1e-3
    c.noise_std = 0.0  # std of Gaussian noise added to training inputs
    c.l2 = 1e-6  # weight of the L2 penalty on weight matrices
    return c


def grid_config() -> ml_collections.ConfigDict:
    """The ``config.grid`` section: members of every system (``model.arch`` x seeds).

    Each architecture is one program whose seeds are its members (same shapes).
    """
    c = ml_collections.ConfigDict()
    c.seeds = 1  # trainings per architecture; > 1 reports mean ± std over seeds
    c.select = "mean_over_seeds"  # "mean_over_seeds" | "best_member"
    c.strategy = "auto"  # members in one program: "auto" | "vmap" | "map" | "chunked" | "loop"
    c.chunk_size = 4  # members per vmapped chunk of "chunked"
    return c


def run_config() -> ml_collections.ConfigDict:
    """The ``config.run`` section: how the run uses the machine."""
    c = ml_collections.ConfigDict()
    c.parallel = 0  # systems trained at once: 0 = one per local device; 1 = one at a time
    return c


def postprocess_config() -> ml_collections.ConfigDict:
    """The ``config.postprocess`` section (fitted on dev, applied to every partition)."""
    c = ml_collections.ConfigDict()
    c.enabled = True
    c.grids = "ddat"  # "ddat" | "avec2016"
    c.per_recording = True  # median filter per recording (True) or over the partition
    return c


def base_config(
    name: str, method: str, *, seed: int, smoke: bool, data, variant: str = ""
) -> ml_collections.ConfigDict:
    """Every generic section of an experiment config, declared (so any field can be
    overridden with ``--config.<section>.<field>=...``)."""
    c = ml_collections.ConfigDict()
    c.name = name
    c.variant = variant  # the config arguments (default workdir runs/<name>-<variant>)
    c.method = method
    c.seed = seed
    c.smoke = smoke
    c.data = data
    c.train = train_config()
    c.hparams = hparams_config()
    c.grid = grid_config()
    c.run = run_config()
    c.postprocess = postprocess_config()
    return c


def ddat_config(arg: str | None, *, aux: str, name: str) -> ml_collections.ConfigDict:
    """The full DDAT experiment config, shared by the recola_* configs.

    Args:
      arg: the config-file argument (``modality=...,dimension=...,preset=...,seed=...,
        aux=re|pu|none|both,smoke``).
      aux: default auxiliary task: ``"re"`` (stage 1 reconstructs the input), ``"pu"``
        (stage 1 predicts perception uncertainty), ``"none"`` (baselines only) or
        ``"both"`` (every row of the paper's tables).
      name: the config's name (default workdir ``runs/<name>``).
    """
    defaults = dict(
        modality="audio", dimension="arousal", preset="recola", seed=0, smoke=False, aux=aux
    )
    a = parse_arg(arg, **defaults)
    data = data_config(modality=a.modality, dimension=a.dimension, preset=a.preset)
    c = base_config(
        name, "ddat", seed=a.seed, smoke=a.smoke, data=data, variant=variant_of(a, **defaults)
    )

    # GRU-RNN of every recurrent system. ``arch`` lists (layers, units) to try, best on dev;
    # the paper's grid is {1,3,5,7,9} x {40,80,120} (see README: runtime).
    c.model = ml_collections.ConfigDict()
    c.model.cell = "gru"  # "gru" | "lstm"
    c.model.arch = ((2, 64),)
    c.model.bidirectional = False
    c.model.init_scale = 0.0  # 0 = torch's default init; a > 0 = uniform(-a, a).

    c.ddat = ml_collections.ConfigDict()
    c.ddat.aux = a.aux  # "re" | "pu" | "none" | "both": picks the default systems.
    c.ddat.systems = ()  # () = the systems of ``aux`` (README: DDAT systems).
    c.ddat.loss = "mse"  # loss of every head: "mse" | "ccc"
    c.ddat.run_stage1 = True  # False: stage 2 reads an existing workdir/stage1/.
    c.ddat.w_emotion = 1.0  # w1 of the stage-1 joint loss.
    c.ddat.w_aux = 1.0  # w2 of the stage-1 joint loss.
    c.ddat.re_reduce = "squared"  # RE scalar: "squared" | "abs" | "signed" (paper's sum).
    c.ddat.pu_source_train = "predicted"  # or "annotated" (train partition only).
    c.ddat.cl_parts = 5
    c.ddat.cl_segment_s = 10.0
    c.ddat.cl_epochs_per_stage = 12
    c.ddat.cl_dnn_hidden = (1024, 1024)
    c.ddat.significance_resamples = 9999

    if a.smoke:
        c.data.preset = "small"
        c.model.arch = ((1, 16),)
        c.train.epochs = 3
        c.train.patience = 0
        c.train.checkpoint_every = 3
        c.ddat.cl_parts = 2
        c.ddat.cl_epochs_per_stage = 2
        c.ddat.cl_segment_s = 8.0
        c.ddat.cl_dnn_hidden = (32, 32)
        c.ddat.significance_resamples = 199
    return c
