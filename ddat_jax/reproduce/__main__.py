"""Every table and figure of the five papers from one command.

Usage::

    python -m ddat_jax.reproduce                 # the papers' protocols (an accelerator)
    python -m ddat_jax.reproduce --quick         # CPU-sized (each config's :quick variant)
    python -m ddat_jax.reproduce --smoke         # seconds per part (tests)
    python -m ddat_jax.reproduce --only=ddat,sew # some papers (and the parts they read)
    python -m ddat_jax.reproduce --only=implicit_omg  # one part
    python -m ddat_jax.reproduce --roots=recola=/data/AVEC2016,sewa=/data/SEWA

Parts (:data:`ddat_jax.reproduce.parts.PARTS`) run one after another, each in its own
process, in ``--workdir`` (default ``runs/reproduce[-quick|-smoke]``); a re-run skips the
parts that are complete and verified. Then ``report/index.md`` and ``report/index.html``
link every table and figure, put the papers' values beside ours and state which of each
paper's claims hold here, with the test.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # as ddat_jax.main (one per system)
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from absl import app, flags  # noqa: E402

_QUICK = flags.DEFINE_bool("quick", False, "CPU-sized protocol (each config's :quick variant).")
_SMOKE = flags.DEFINE_bool("smoke", False, "Seconds per part: the configs' :smoke variants.")
_ONLY = flags.DEFINE_list("only", [], "Papers to reproduce: ddat, soft_prediction, "
                          "implicit_fusion, cer_mtl, sew, or part names such as "
                          "sew_recola_valence (default: all).")  # fmt: skip
_ROOTS = flags.DEFINE_string(
    "roots", "", "Your copies of the corpora: recola=/path,sewa=/path,omg=/path,creativeit=/path "
    "(default: the embedded corpora)."
)  # fmt: skip
_WORKDIR = flags.DEFINE_string("workdir", None, "Default: runs/reproduce[-quick|-smoke].")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace part workdirs of another config.")
_CACHE = flags.DEFINE_bool("compilation_cache", True, "JAX's persistent compilation cache.")
_CONFIGS = flags.DEFINE_string("configs", None, "The configs/ folder (default: the checkout's).")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only rebuild the report.")


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import logging

    from absl import logging as absl_logging

    from ddat_jax.reproduce import parts as parts_lib

    if not flags.FLAGS["verbosity"].present:  # JAX's backend probing etc. stay off the console
        absl_logging.get_absl_handler().setLevel(logging.WARNING)
    from ddat_jax.reproduce import report, runner

    if _QUICK.value and _SMOKE.value:
        print("error: --quick and --smoke exclude each other", file=sys.stderr)
        return 2
    profile = "smoke" if _SMOKE.value else "quick" if _QUICK.value else "full"
    try:
        selected = parts_lib.select(_ONLY.value)
        roots = parts_lib.parse_roots(_ROOTS.value)
        configs = Path(_CONFIGS.value) if _CONFIGS.value else parts_lib.configs_dir()
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    root = Path(_WORKDIR.value or f"runs/reproduce{'' if profile == 'full' else '-' + profile}")
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"reproducing {len(selected)} parts ({profile} profile) in {root} on {runner.machine()}",
        flush=True,
    )
    t0 = time.perf_counter()
    if _REPORT_ONLY.value:
        outcomes = runner.outcomes_on_disk(selected, root, profile, configs, roots)
    else:
        outcomes = runner.run_parts(
            selected,
            root=root,
            profile=profile,
            configs=configs,
            roots=roots,
            compilation_cache=_CACHE.value,
            overwrite=_OVERWRITE.value,
            echo=lambda line: print(line, flush=True),
        )
    index = report.write_report(root, outcomes, profile=profile, seconds=time.perf_counter() - t0)
    print(report.console_summary(outcomes), flush=True)
    print(f"report: {index} (and {index.with_suffix('.html')})", flush=True)
    bad = [o for o in outcomes if o.status in ("failed", "not run")]
    return 1 if bad else 0


if __name__ == "__main__":
    app.run(main)
