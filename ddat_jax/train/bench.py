"""Overhead of the driver (``fit``) against one fully jitted ``train``.

Usage::

    python -m ddat_jax.train.bench --grid 8 --epochs 20 --frames 750

Both run the same training (a GRU ``MultiTaskRNN`` on synthetic sequences,
vmapped over ``--grid`` learning rates, no early stopping so the work is
equal). The fully jitted one is timed after compilation; the driver is timed
on its second run (programs already compiled), writing metrics every
``log_every`` epochs and an orbax checkpoint every ``checkpoint_every``.
Prints one JSON line per setting.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from ddat_jax.models import build_model
from ddat_jax.train.config import default_train_config, hparams_from_config
from ddat_jax.train.engine import make_train, train_spec_from_config
from ddat_jax.train.loop import RunOptions, broadcast_hparams, fit
from ddat_jax.train.objectives import heads_objective


def _data(n: int, frames: int, features: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=features) / np.sqrt(features)

    def part(k):
        x = rng.normal(size=(k, frames, features)).astype(np.float32)
        y = np.tanh(np.cumsum(x @ w, axis=1) / np.sqrt(np.arange(1, frames + 1)))
        return {
            "inputs": x,
            "mask": np.ones((k, frames), bool),
            "targets": {"emotion": y[..., None]},
        }

    return {"train": part(n), "dev": part(n)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--frames", type=int, default=750)
    ap.add_argument("--features", type=int, default=88)
    ap.add_argument("--sequences", type=int, default=9)
    ap.add_argument("--hidden", type=int, default=40)
    args = ap.parse_args()

    data = _data(args.sequences, args.frames, args.features)
    model = build_model("mtl_rnn", cell="gru", hidden_size=args.hidden, heads={"emotion": 1})
    cfg = default_train_config()
    cfg.train.epochs = args.epochs
    cfg.train.patience = 0
    g = args.grid
    hp = broadcast_hparams(
        hparams_from_config(cfg, ("emotion",), learning_rate=jnp.geomspace(1e-4, 1e-2, g)), g
    )
    keys = jax.random.split(jax.random.key(0), g)

    spec = train_spec_from_config(cfg.train, model, heads_objective({"emotion": "mse"}))
    full = jax.jit(jax.vmap(make_train(spec, data)))
    t0 = time.perf_counter()
    compiled = full.lower(hp, keys).compile()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(hp, keys))
        times.append(time.perf_counter() - t0)
    full_s = min(times)
    print(
        json.dumps(
            {
                "setting": "jit(vmap(train))",
                "device": jax.devices()[0].device_kind,
                "grid": g,
                "epochs": args.epochs,
                "compile_s": round(compile_s, 3),
                "run_s": round(full_s, 4),
                "per_epoch_ms": round(1e3 * full_s / args.epochs, 3),
            }
        ),
        flush=True,
    )

    driver_s = {}
    for log_every, ckpt_every in ((1, 10), (5, 10), (args.epochs, args.epochs)):
        opts = RunOptions(log_every=log_every, checkpoint_every=ckpt_every)
        quiet = lambda line: None
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            fit(spec, data, hp, keys, workdir=f"{d}/warm", options=opts, progress=quiet)
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            fit(spec, data, hp, keys, workdir=f"{d}/timed", options=opts, progress=quiet)
            run_s = time.perf_counter() - t0
        driver_s[log_every] = run_s
        print(
            json.dumps(
                {
                    "setting": f"fit(log_every={log_every}, ckpt_every={ckpt_every})",
                    "grid": g,
                    "epochs": args.epochs,
                    "first_run_s": round(first_s, 3),
                    "run_s": round(run_s, 4),
                    "per_epoch_ms": round(1e3 * run_s / args.epochs, 3),
                    "overhead_vs_jit": round(run_s / full_s - 1.0, 4),
                    "overhead_per_epoch_ms": round(1e3 * (run_s - full_s) / args.epochs, 3),
                }
            ),
            flush=True,
        )
    # One chunk and one checkpoint vs the jitted train: the per-run cost (init, orbax
    # manager, the final checkpoint, which is waited for); 1-epoch chunks vs one chunk:
    # the cost of a chunk boundary (dispatch, metrics, progress line; 2 checkpoints).
    e = args.epochs
    print(
        json.dumps(
            {
                "setting": "summary",
                "fixed_per_run_s": round(driver_s[e] - full_s, 4),
                "per_chunk_ms": round(1e3 * (driver_s[1] - driver_s[e]) / max(e - 1, 1), 3),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
