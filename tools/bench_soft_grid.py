"""The soft-prediction w_E grid as ONE program vs the same settings trained one by one.

Builds the E-primary grid job of ``configs/sewa_soft.py`` (one dimension, one modality,
the config's BLSTM) with :func:`ddat_jax.methods.soft_prediction.plan.grid_job`, then

* ``grid``: every ``w_E`` a member of one compiled program (``Job.sweep``), as the
  method trains it;
* ``loop``: the same settings one after another (one single-member job per ``w_E``;
  equal shapes, so they share one compiled program after the first),

both for a fixed number of epochs (no early stopping, no member predictions), and prints
wall times and their ratio (compilation included: it is part of what a user waits for;
the first loop training holds the loop's one compilation).

Usage::

    python tools/bench_soft_grid.py --config=quick --epochs=3 --modality=video
    python tools/bench_soft_grid.py --config=smoke --grid=21      # seconds, tiny corpus
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ddat_jax import train as train_lib  # noqa: E402
from ddat_jax.data import prepare, preprocess  # noqa: E402
from ddat_jax.experiment import training  # noqa: E402
from ddat_jax.experiment.settings import experiment_settings  # noqa: E402
from ddat_jax.experiment.systems import Context  # noqa: E402
from ddat_jax.methods.soft_prediction import plan  # noqa: E402
from ddat_jax.methods.soft_prediction.settings import settings_from_config  # noqa: E402


def load_config(arg: str):
    spec = importlib.util.spec_from_file_location("cfg", REPO / "configs" / "sewa_soft.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def make_job(args):
    """The E-primary grid job of one dimension and modality, fixed epochs."""
    c = load_config(args.config)
    c.soft.w_grid = tuple(round(2.0 * k / (args.grid - 1), 6) for k in range(args.grid))
    c.train.epochs, c.train.patience = args.epochs, 0
    c.train.checkpoint_every = args.epochs
    c.soft.dimensions = (c.data.dimension,)
    c.grid.strategy = args.strategy
    settings, msettings = experiment_settings(c), settings_from_config(c)
    corpus = prepare.prepare_corpus(c.data)
    batches = {p: preprocess.to_batch(r) for p, r in corpus.partitions.items()}
    ctx = Context(corpus, msettings, settings.train, 0, Path(tempfile.mkdtemp()), batches)
    job = plan.grid_job(c.data.dimension, args.modality, "E")(ctx, {})
    return dataclasses.replace(job, predict_members=False), c


def timed(name, job, workdir, device):
    t0 = time.perf_counter()
    training.train_job(
        name,
        name,
        job,
        key=train_lib.system_key(0, "bench"),
        workdir=workdir,
        device=device,
        progress=lambda line: None,
    )
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default="quick", help="sewa_soft.py argument (quick, smoke)")
    p.add_argument("--grid", type=int, default=21, help="w_E values, 0 ... 2")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--modality", default="video", choices=("audio", "video"))
    p.add_argument("--strategy", default="auto", help="config.grid.strategy (auto, vmap, map)")
    p.add_argument("--out", default="", help="JSON file for the result")
    args = p.parse_args(argv)
    job, c = make_job(args)
    device = jax.local_devices()[0]
    work = Path(tempfile.mkdtemp(prefix="bench_soft_grid-"))
    grid_s = timed("grid", job, work / "grid", device)
    loop = []
    for i, w in enumerate(job.sweep["emotion"]):
        one = dataclasses.replace(job, sweep={"emotion": (w,)})
        loop.append(timed(f"w{i}", one, work / f"loop{i}", device))
    out = {
        "device": f"{device.platform} ({len(jax.local_devices())} local)",
        "config": args.config,
        "strategy": args.strategy,
        "arch": list(c.model.arch),
        "modality": args.modality,
        "settings": args.grid,
        "epochs": args.epochs,
        "grid_s": round(grid_s, 2),
        "loop_s": round(sum(loop), 2),
        "loop_first_s": round(loop[0], 2),
        "loop_rest_mean_s": round(sum(loop[1:]) / max(1, len(loop) - 1), 2),
        "loop_over_grid": round(sum(loop) / grid_s, 2),
    }
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
