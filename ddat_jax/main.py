"""Runs one experiment: ``python -m ddat_jax.main --config=configs/recola_re.py[:args]``.

Config arguments (after ``:``, comma-separated) pick a variant, e.g.
``configs/recola_re.py:modality=video_geometric,dimension=valence`` or ``...:smoke``.
The DDAT configs (recola_re, recola_pu, recola_baseline) take:
  modality=audio|video_appearance|video_geometric (or several joined with +)
  dimension=arousal|valence     preset=recola|small (embedded corpus)     seed=N
  aux=re|pu|none|both (which systems)     smoke (tiny corpus and model: about 20 s)

Common overrides (any field: --config.<section>.<field>=value):
  --config.data.root=/path/to/AVEC2016     your own copy instead of the embedded corpus
  --config.train.epochs=30    --config.grid.seeds=3 (mean ± std over seeds)
  --config.model.arch='((1,40),(3,80))'    architectures to try, best on dev
  --config.ddat.systems='("stl","ddat_re_sum")'    --config.run.parallel=1 (one at a time)

Outputs go to ``--workdir`` (default ``runs/<config name>[-<variant>]``); a workdir holding
a run with another config is refused before anything is written (``--overwrite``
replaces it). The console shows progress and the results; other libraries' logs go to
``<workdir>/log.txt`` (``--verbosity=0`` shows them on the console too). Compiled programs
are kept in ``~/.cache/ddat_jax/jax-compilation-cache`` (``--nocompilation_cache`` to turn
that off), so a second run skips most compilation.

Several hosts (one ``jax.distributed`` job; the workdir on a shared file system): every
process runs the same command plus ``--coordinator_address=host:port --num_processes=N
--process_id=i`` (or ``--distributed``: JAX detects them on SLURM, Open MPI, TPU pods).
Independent systems and DDAT-paper cells are split over the processes (a grid's members
stay in one process); process 0 writes the predictions and tables
(:mod:`ddat_jax.experiment.distributed`).
"""

from __future__ import annotations

import os

# LAPACK calls (jnp.linalg.eigh/svd on CPU, e.g. the Deep-CCA term) go through OpenBLAS,
# whose own thread pool fights the systems that already run one per core: a 128x128 eigh
# took 242 ms instead of 1.7 ms on a loaded 2-core machine. One BLAS thread per process
# unless the user chose otherwise (set before numpy/scipy load).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Experiment config: configs/<name>.py[:key=value,...,smoke]. See README: Configs.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder (default: runs/<config name>[-<variant>])."
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace a workdir that holds a run with a different config."
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    None,
    "Several processes (jax.distributed): host:port of process 0's coordination service.",
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Several processes: how many (with --coordinator_address)."
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "Several processes: this one's id, 0..num_processes-1 (0 = coordinator)."
)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Several processes, detected by jax.distributed.initialize() (SLURM, Open MPI, TPU pods).",
)
_DISTRIBUTED_TIMEOUT = flags.DEFINE_float(
    "distributed_timeout",
    24 * 3600.0,
    "Several processes: the longest wait (seconds) for another process's systems or cells.",
)
_COMPILATION_CACHE = flags.DEFINE_bool(
    "compilation_cache",
    True,
    "Keep compiled XLA programs in the user cache (<cache>/jax-compilation-cache), so a "
    "second run does not compile them again.",
)


def enable_compilation_cache(folder: Path) -> None:
    """JAX's persistent compilation cache in ``folder`` (every program, however quick to
    compile: a run compiles dozens of small ones)."""
    import jax

    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def default_workdir(config) -> Path:
    """``runs/<name>`` plus the config's variant arguments, e.g. ``runs/recola_re-smoke``."""
    variant = str(config.get("variant", "") or "")
    safe = "".join(ch if ch.isalnum() or ch in "=._-" else "_" for ch in variant.replace(",", "-"))
    return Path("runs") / (f"{config.name}-{safe}" if safe else config.name)


def route_logs(workdir: Path, name: str = "log.txt") -> None:
    """Other libraries' INFO logs go to ``workdir/<name>``; the console keeps warnings,
    unless ``--verbosity`` was given explicitly."""
    from ddat_jax.experiment.console import route_library_logs

    route_library_logs(workdir, console=flags.FLAGS["verbosity"].present, name=name)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from ddat_jax.train.grid import configure_host_devices

    # One XLA device per CPU core, so that independent systems (and grids) run side by
    # side on the cores (no effect on GPU/TPU runs; a user's XLA_FLAGS device count wins).
    configure_host_devices()
    from ddat_jax.experiment import distributed

    cluster = distributed.initialize(
        _COORDINATOR.value,
        _NUM_PROCESSES.value,
        _PROCESS_ID.value,
        auto=_DISTRIBUTED.value,
        timeout_s=_DISTRIBUTED_TIMEOUT.value,
    )
    distributed.prefix_console(cluster)
    if _COMPILATION_CACHE.value:
        from ddat_jax.data.synthetic import cache_base

        enable_compilation_cache(cache_base() / "jax-compilation-cache")
    from ddat_jax.experiment import run as run_fn
    from ddat_jax.experiment import validate, workdirs

    config = _CONFIG.value
    workdir = Path(_WORKDIR.value) if _WORKDIR.value else default_workdir(config)
    try:
        validate(config)
        if not cluster.is_coordinator:  # the coordinator checks (or replaces) it first
            cluster.wait(f"prepare:{workdir}", {"workdir": 0}, "the coordinator's workdir")
        state = workdirs.prepare(config, workdir, overwrite=_OVERWRITE.value)
        cluster.publish(f"prepare:{workdir}", "workdir")
    except ValueError as err:  # config mistakes and WorkdirError: a sentence, no traceback
        cluster.fail(str(err))
        print(f"{cluster.prefix}error: {err}", file=sys.stderr)
        return 2
    route_logs(workdir, "log.txt" if cluster.is_coordinator else f"log.p{cluster.process_id}.txt")
    print(f"workdir: {workdir} ({state})", flush=True)
    distributed.reporting(cluster, "run", run_fn, config, workdir)
    return 0


def precheck(argv: list[str]) -> str | None:
    """A sentence for the config mistakes that flag parsing would report as a traceback:
    a bad config argument (``:foo=1``) or an override of a field that does not exist.

    Returns:
      The message, or None when the config file loads and every override names a field.
    """
    import importlib.util

    values = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    if not values:
        return None
    path, _, arg = values[-1].partition(":")
    spec = importlib.util.spec_from_file_location("_ddat_config", path)
    if spec is None or not Path(path).is_file():
        return f"--config={values[-1]}: no config file {path!r} (e.g. configs/recola_re.py)"
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        config = module.get_config(arg or None)
    except ValueError as err:
        return f"--config={values[-1]}: {err}"
    for a in argv:
        if not a.startswith("--config."):
            continue
        field = a[len("--config.") :].split("=", 1)[0]
        node, walked = config, []
        for part in field.split("."):
            if not hasattr(node, "keys") or part not in node:
                where = "config" + "".join(f".{w}" for w in walked)
                have = sorted(node.keys()) if hasattr(node, "keys") else []
                return f"{a}: {where} has no field {part!r}; its fields: {have}"
            node, walked = node[part], [*walked, part]
    return None


if __name__ == "__main__":
    problem = precheck(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    flags.mark_flag_as_required("config")
    app.run(main)
