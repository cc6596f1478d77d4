"""Command-line entry point: ``python -m ddat_jax.main --config=configs/recola_re.py``.

Thin on purpose (flax examples style): it only defines the flags and hands the config to
``ddat_jax.run.run``, which returns its results so that tests can call it directly.
"""

from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from ddat_jax import run as run_lib
from ddat_jax.train.grid import configure_host_devices

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (configs/*.py[:args]).", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (default: runs/<config name>).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # One XLA device per CPU core, so that grids shard over the cores (no effect on GPU/TPU
    # runs; a user's XLA_FLAGS device count wins).
    configure_host_devices()
    config = _CONFIG.value
    workdir = _WORKDIR.value or f"runs/{config.name}"
    logging.info("workdir: %s", workdir)
    run_lib.run(config, workdir)


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    app.run(main)
