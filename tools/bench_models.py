"""Benchmark of one training step of the recurrent models (not a test).

One step = forward + backward + Adam update (optax), jitted, MSE loss of a linear head
on a stacked GRU (default 3 × 120, 4 sequences × 1500 frames × 88 inputs, random data).
Reported: median wall time of ``--repeats`` steps after compilation, and the compile time.

Variants:

* ``custom``: :class:`ddat_jax.models.RNN` with the cuDNN-style custom VJP (default).
* ``autodiff``: the same module with plain autodiff of ``lax.scan``.
* ``flax_gru``: ``flax.linen.RNN(GRUCell)`` per layer, input projection inside the loop
  (what one would write naively).
* ``torch``: ``torch.nn.GRU`` + ``nn.Linear`` with ``torch.optim.Adam``,
  ``torch.set_num_threads(--torch-threads)``, default 2 (only if torch is importable).
* ``predict``: the forward pass alone of ``custom`` (what dev evaluation and
  :func:`ddat_jax.train.predict` run; it has no residuals to store, so its scan body
  differs from the training forward).
* ``custom_k`` / ``autodiff_k``: ``--members`` models (default 21) trained in one
  program, ``jax.vmap`` over parameters and optimizer states (a hyper-parameter grid).

Usage::

    python tools/bench_models.py --quick                 # seconds on a CPU
    python tools/bench_models.py --out bench_models.json  # full size, a few minutes

Timings on a shared machine are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flax.linen as nn  # noqa: E402

from ddat_jax.models import RNN  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    p.add_argument("--batch", type=int, default=None, help="sequences per step (4)")
    p.add_argument("--frames", type=int, default=None, help="frames per sequence (1500)")
    p.add_argument("--features", type=int, default=88, help="input features (88)")
    p.add_argument("--hidden", type=int, default=None, help="GRU units (120)")
    p.add_argument("--layers", type=int, default=None, help="GRU layers (3)")
    p.add_argument("--members", type=int, default=None, help="vmapped members (21)")
    p.add_argument("--repeats", type=int, default=7, help="timed steps per variant (>= 5)")
    p.add_argument(
        "--variants",
        default="custom,predict,autodiff,flax_gru,torch,custom_k,autodiff_k",
        help="comma-separated subset of the variants",
    )
    p.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads (2)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    quick = dict(batch=2, frames=200, hidden=32, layers=2, members=3)
    full = dict(batch=4, frames=1500, hidden=120, layers=3, members=21)
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.repeats = max(args.repeats, 5)
    return args


class GRUHead(nn.Module):
    """Stacked GRU + linear head; ``impl`` picks ddat_jax's RNN or flax's nn.RNN."""

    hidden: int
    layers: int
    impl: str

    @nn.compact
    def __call__(self, x):
        if self.impl in ("custom", "autodiff"):
            h = RNN(
                cell="gru", hidden_size=self.hidden, num_layers=self.layers, backward=self.impl
            )(x)
        else:
            h = x
            for _ in range(self.layers):
                h = nn.RNN(nn.GRUCell(features=self.hidden))(h)
        return nn.Dense(1)(h)


def _time(step, state, repeats):
    t0 = time.perf_counter()
    state = step(*state)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state = step(*state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t0)
    return compile_s, times


def bench_jax(impl, args, x, y, members=None):
    model = GRUHead(hidden=args.hidden, layers=args.layers, impl=impl)
    opt = optax.adam(1e-3)

    def init(key):
        params = model.init(key, x[:, :2])["params"]
        return params, opt.init(params)

    def step(params, opt_state):
        def loss_fn(p):
            return jnp.mean((model.apply({"params": p}, x) - y) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    if members is None:
        state = jax.jit(init)(jax.random.key(0))
        step = jax.jit(step, donate_argnums=(0, 1))
    else:
        state = jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), members))
        step = jax.jit(jax.vmap(step), donate_argnums=(0, 1))
    return _time(step, state, args.repeats)


def bench_predict(args, x):
    model = GRUHead(hidden=args.hidden, layers=args.layers, impl="custom")
    params = jax.jit(model.init)(jax.random.key(0), x[:, :2])
    fwd = jax.jit(model.apply)

    def step(params, x):
        fwd(params, x).block_until_ready()
        return params, x

    return _time(step, (params, x), args.repeats)


def bench_torch(args, x, y):
    import torch

    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    gru = torch.nn.GRU(args.features, args.hidden, num_layers=args.layers, batch_first=True)
    head = torch.nn.Linear(args.hidden, 1)
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    xt, yt = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))

    def step():
        opt.zero_grad()
        loss = torch.mean((head(gru(xt)[0]) - yt) ** 2)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return first, times


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((args.batch, args.frames, args.features)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((args.batch, args.frames, 1)), jnp.float32)
    variants = [v for v in args.variants.split(",") if v]
    results = {}
    for name in variants:
        if name == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                print("torch not importable: skipping the torch variant", file=sys.stderr)
                continue
            compile_s, times = bench_torch(args, x, y)
        elif name.endswith("_k"):
            compile_s, times = bench_jax(name[:-2], args, x, y, members=args.members)
        elif name == "predict":
            compile_s, times = bench_predict(args, x)
        elif name in ("custom", "autodiff", "flax_gru"):
            compile_s, times = bench_jax(name, args, x, y)
        else:
            raise ValueError(f"unknown variant {name!r}")
        results[name] = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "times_s": times,
            "first_call_s": compile_s,
        }
        print(f"{name:12s} {results[name]['median_s']:.4f} s", file=sys.stderr, flush=True)

    def ratio(a, b):
        if a in results and b in results:
            return results[a]["median_s"] / results[b]["median_s"]
        return None

    ratios = {
        "autodiff/custom": ratio("autodiff", "custom"),
        "flax_gru/custom": ratio("flax_gru", "custom"),
        "torch/custom": ratio("torch", "custom"),
        "autodiff_k/custom_k": ratio("autodiff_k", "custom_k"),
        "custom_k/(K*custom)": (
            results["custom_k"]["median_s"] / (args.members * results["custom"]["median_s"])
            if "custom_k" in results and "custom" in results
            else None
        ),
    }
    base = results.get("custom", {}).get("median_s")
    print(
        f"\nGRU {args.layers}x{args.hidden}, batch {args.batch} x {args.frames} frames x "
        f"{args.features} inputs, K={args.members}; median of {args.repeats} steps "
        f"(fwd+bwd+Adam)"
    )
    print(f"{'variant':14s} {'median s':>10s} {'min s':>10s} {'first s':>10s} {'/ custom':>9s}")
    for name, r in results.items():
        rel = f"{r['median_s'] / base:9.2f}" if base and not name.endswith("_k") else " " * 9
        if name == "autodiff_k" and "custom_k" in results:
            rel = f"{r['median_s'] / results['custom_k']['median_s']:9.2f}"
        if name == "custom_k":
            rel = f"{1.0:9.2f}"
        print(
            f"{name:14s} {r['median_s']:10.4f} {r['min_s']:10.4f} {r['first_call_s']:10.2f} {rel}"
        )
    for k, v in ratios.items():
        if v is not None:
            print(f"{k:22s} {v:.2f}")
    if args.out is not None:
        payload = {
            "config": {
                k: getattr(args, k)
                for k in (
                    "batch",
                    "frames",
                    "features",
                    "hidden",
                    "layers",
                    "members",
                    "repeats",
                    "torch_threads",
                )
            }
            | {"quick": args.quick},
            "results": results,
            "ratios": ratios,
            "machine": {
                "backend": jax.default_backend(),
                "devices": [str(d) for d in jax.devices()],
                "cpu_count": os.cpu_count(),
                "loadavg": os.getloadavg(),
                "platform": platform.platform(),
                "jax": jax.__version__,
            },
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
