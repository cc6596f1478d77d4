"""The α grid of implicit fusion as one compiled program vs one training per α.

    python tools/bench_implicit_grid.py [--variant smoke|quick] [--epochs 4] [--out DIR]

Builds the audio-main job of ``configs/recola_implicit.py:<variant>`` (its corpus, model,
objective) with the paper's 11 α values and times, on this machine's first device:

* ``grid/vmap``: the 11 members vmapped in one program (one ``fit``);
* ``grid/map``: the 11 members in one program, one after another (``lax.map``);
* ``sequential``: 11 separate ``fit`` calls of one member each, as 11 separate runs
  would be (each ``fit`` traces and compiles its own program).

Every α starts from the same PRNG key (as in the method), so the best dev scores of the
grid and of the sequential trainings agree up to float reassociation.

Each is timed from a cold start (a fresh process per strategy would be cleaner but
costs another corpus load; the tool clears JAX's caches between strategies instead).
Prints a Markdown table (wall s, process CPU s — robust to other jobs on a shared
machine —, compile s, ratios to sequential) and writes
``bench_implicit_grid.csv`` to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pandas as pd

from ddat_jax import train as train_lib
from ddat_jax.data import prepare, preprocess
from ddat_jax.evaluation import io as eval_io
from ddat_jax.experiment import training
from ddat_jax.experiment.settings import experiment_settings
from ddat_jax.experiment.systems import Context
from ddat_jax.methods.implicit_fusion import plan, settings

REPO = Path(__file__).resolve().parents[1]
ALPHAS = settings.PAPER_ALPHAS


def load_job(variant: str, epochs: int):
    """The audio-main α-grid job of the config variant, and its train settings."""
    spec = importlib.util.spec_from_file_location("cfg", REPO / "configs" / "recola_implicit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(variant)
    config.implicit.alphas = ALPHAS
    config.train.epochs = epochs
    config.train.patience = 0
    config.train.checkpoint_every = epochs
    config.train.log_every = epochs
    corpus = prepare.prepare_corpus(config.data)
    batches = {p: preprocess.to_batch(r) for p, r in corpus.partitions.items()}
    ctx = Context(
        corpus,
        settings.settings_from_config(config),
        experiment_settings(config).train,
        0,
        Path("."),
        batches,
    )
    return plan.fusion_job("audio")(ctx, {}), config


def fit_members(job, weights, strategy: str, workdir: Path):
    """One ``fit`` of the members with the given loss-weight settings; returns it."""
    cfg = SimpleNamespace(**job.settings.train)
    model = job.model_fn(None)
    spec = train_lib.train_spec_from_config(cfg, model, job.objective)
    # every α starts from the same key, as in the method (common random numbers), so the
    # sequential trainings reproduce the grid's members
    one = np.asarray(jax.random.key_data(train_lib.member_keys(jax.random.key(0), 1)))
    keys = jax.random.wrap_key_data(np.tile(one, (len(weights), 1)))
    return train_lib.fit(
        spec,
        job.data,
        training.member_hparams(job, weights, 1),
        keys,
        workdir=workdir,
        options=train_lib.run_options_from_config(
            cfg, strategy=strategy, devices=(jax.devices()[0],), label=strategy
        ),
        progress=lambda line: None,
    )


def bench(job, tmp: Path) -> pd.DataFrame:
    """Wall and compile seconds of every way to train the grid."""
    weights = training.weight_settings(job)
    rows = []
    for strategy in ("vmap", "map"):
        jax.clear_caches()
        t0, c0 = time.perf_counter(), time.process_time()
        res = fit_members(job, weights, strategy, tmp / f"grid_{strategy}")
        rows.append(
            {
                "way": f"grid/{strategy}",
                "programs": 1,
                "wall s": time.perf_counter() - t0,
                "cpu s": time.process_time() - c0,
                "compile s": float(res.compile_seconds),
                "best dev": float(np.max(res.best_score)),
            }
        )
    jax.clear_caches()
    t0, c0, compile_s, best = time.perf_counter(), time.process_time(), 0.0, -np.inf
    for i, w in enumerate(weights):
        res = fit_members(job, [w], "loop", tmp / f"seq_{i}")
        compile_s += float(res.compile_seconds)
        best = max(best, float(np.max(res.best_score)))
    rows.append(
        {
            "way": "sequential",
            "programs": len(weights),
            "wall s": time.perf_counter() - t0,
            "cpu s": time.process_time() - c0,
            "compile s": compile_s,
            "best dev": best,
        }
    )
    df = pd.DataFrame(rows).set_index("way")
    df["train s"] = df["wall s"] - df["compile s"]
    df["ratio to sequential"] = df["wall s"] / df.loc["sequential", "wall s"]
    df["train ratio"] = df["train s"] / df.loc["sequential", "train s"]
    df["cpu ratio"] = df["cpu s"] / df.loc["sequential", "cpu s"]
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="smoke", help="config variant: smoke | quick")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    job, config = load_job(args.variant, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        df = bench(job, Path(tmp))
    n = job.data["train"]["mask"].shape
    print(
        f"{jax.devices()[0].platform}: {len(ALPHAS)} α members, {args.epochs} epochs, train "
        f"[{n[0]} × {n[1]}] frames, GRU {config.model.hidden_size} "
        f"({config.model.specific_layers}+{config.model.shared_layers} layers)"
    )
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        df.to_csv(Path(args.out) / "bench_implicit_grid.csv")
    print(eval_io.to_markdown(df, formats={c: ".3g" for c in df.columns}))


if __name__ == "__main__":
    main()
