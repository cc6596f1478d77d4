"""Feature images gathered in the step vs materialised: frames/s and peak memory.

CER-MTL's input at frame l is N feature vectors with stride t. Two ways to train on them:

* ``gathered`` (what ``ddat_jax`` does): the corpus is stored as context-padded chunks
  ``[K, left + C, P]`` (:mod:`ddat_jax.methods.cer_mtl.data`) and each step gathers the
  ``[B, C, N, P]`` windows of its minibatch inside the jitted step
  (:class:`ddat_jax.models.cer.FeatureImageCER`);
* ``materialised`` (the naive way): every frame's window is built once on the host,
  ``[frames, N, P]``, and a step takes 256 of them.

Each (mode, N) runs in a fresh subprocess so its peak resident memory (``ru_maxrss``; on
a GPU also the device's ``peak_bytes_in_use``) is its own. A step is one Adam update of
the MTL network (3 tasks) with the CCC loss on 256 target frames; frames/s is the median
over ``--repeats`` timed blocks of ``--steps`` steps (one compiled ``lax.scan``), after a
warm-up block that compiles.

Usage::

    python tools/bench_feature_image.py                      # N = 20, 40, 60, both modes
    python tools/bench_feature_image.py --recordings 40      # the full CreativeIT-like size
    python tools/bench_feature_image.py --out bench.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

MODES = ("gathered", "materialised")


def _corpus(recordings: int, frames: int, features: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = [rng.normal(size=(frames, features)).astype(np.float32) for _ in range(recordings)]
    y = [rng.normal(size=(frames, 3)).astype(np.float32) for _ in range(recordings)]
    return x, y


def _materialise(x, y, window: int, stride: int):
    """``[frames, N, P]`` windows (causal, first frame repeated) and ``[frames, 3]`` targets."""
    import numpy as np

    offsets = (np.arange(window) - window + 1) * stride
    images, targets = [], []
    for xr, yr in zip(x, y, strict=True):
        idx = np.clip(np.arange(len(xr))[:, None] + offsets[None, :], 0, len(xr) - 1)
        images.append(xr[idx])
        targets.append(yr)
    return np.concatenate(images), np.concatenate(targets)


def _loss(pred, target, mask):
    import jax.numpy as jnp

    from ddat_jax import losses

    where = jnp.broadcast_to(mask[..., None], pred.shape)
    axes = tuple(range(pred.ndim - 1))
    return jnp.mean(losses.ccc_loss(pred, target, axis=axes, where=where))


def _runner(mode: str, args, window: int):
    """``(run(params, opt, key) -> (params, opt, loss), params, opt, data bytes)``."""
    import jax
    import numpy as np
    import optax

    from ddat_jax.methods.cer_mtl import data as cer_data
    from ddat_jax.models.cer import CERNet, FeatureImageCER, context_frames

    x, y = _corpus(args.recordings, args.frames, args.features, args.seed)
    opt = optax.adam(5e-5)
    if mode == "gathered":
        left, right = context_frames(window, args.stride)
        part = cer_data.chunk_partition(x, y, chunk=args.chunk, left=left, right=right)
        arrays = (part["inputs"], part["mask"], part["targets"]["emotion"])
        model = FeatureImageCER(tasks=3, window=window, stride=args.stride)
        batch = max(1, 256 // args.chunk)
        rows = arrays[0].shape[0]
    else:
        images, targets = _materialise(x, y, window, args.stride)
        arrays = (images, np.ones(len(images), bool), targets)
        model = CERNet(tasks=3)
        batch = 256
        rows = len(images)
    nbytes = int(sum(a.nbytes for a in arrays))
    del x, y
    data = tuple(jax.device_put(a) for a in arrays)
    del arrays
    params = model.init(jax.random.key(0), data[0][:1])["params"]

    def apply(p, xb):
        out = model.apply({"params": p}, xb)
        return out["emotion"] if isinstance(out, dict) else out

    def step(carry, key):
        p, o = carry
        idx = jax.random.randint(key, (batch,), 0, rows)
        xb, mb, yb = (a[idx] for a in data)
        loss, grads = jax.value_and_grad(lambda q: _loss(apply(q, xb), yb, mb))(p)
        updates, o = opt.update(grads, o, p)
        return (optax.apply_updates(p, updates), o), loss

    @jax.jit
    def run(p, o, key):
        (p, o), losses = jax.lax.scan(step, (p, o), jax.random.split(key, args.steps))
        return p, o, losses[-1]

    return run, params, opt.init(params), nbytes


def measure(mode: str, window: int, args) -> dict:
    """One (mode, N): frames/s (median over repeats), peak memory, data bytes."""
    import jax

    run, params, opt_state, nbytes = _runner(mode, args, window)
    key = jax.random.key(1)
    t0 = time.perf_counter()
    params, opt_state, loss = run(params, opt_state, key)
    jax.block_until_ready(loss)
    compile_s = time.perf_counter() - t0
    rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        params, opt_state, loss = run(params, opt_state, jax.random.fold_in(key, r))
        jax.block_until_ready(loss)
        rates.append(args.steps * 256 / (time.perf_counter() - t0))
    dev = jax.devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    return {
        "mode": mode,
        "N": window,
        "frames_per_s": statistics.median(rates),
        "frames_per_s_runs": rates,
        "compile_s": compile_s,
        "data_MiB": nbytes / 2**20,
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device_peak_MiB": (stats or {}).get("peak_bytes_in_use", 0) / 2**20 or None,
        "device": dev.platform,
        "final_loss": float(loss),
    }


def _table(rows: list[dict], args) -> str:
    by = {(r["mode"], r["N"]): r for r in rows}
    head = (
        f"{args.recordings} recordings x {args.frames} frames x {args.features} features, "
        f"stride {args.stride}, 256 frames per step, median of {args.repeats} x {args.steps} "
        f"steps ({rows[0]['device'] if rows else '?'})\n\n"
        "| N | gathered frames/s | materialised frames/s | gathered data MiB | materialised "
        "data MiB | gathered peak RSS MiB | materialised peak RSS MiB |\n"
        "|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for n in args.windows:
        g, m = by.get(("gathered", n)), by.get(("materialised", n))
        cell = lambda r, k, f: f"{r[k]:{f}}" if r else "failed"  # noqa: E731
        lines.append(
            f"| {n} | {cell(g, 'frames_per_s', ',.0f')} | {cell(m, 'frames_per_s', ',.0f')} | "
            f"{cell(g, 'data_MiB', '.0f')} | {cell(m, 'data_MiB', '.0f')} | "
            f"{cell(g, 'peak_rss_MiB', '.0f')} | {cell(m, 'peak_rss_MiB', '.0f')} |"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--windows", type=int, nargs="+", default=[20, 40, 60])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--recordings", type=int, default=8)
    p.add_argument("--frames", type=int, default=12600, help="3.5 min at 60 fps")
    p.add_argument("--features", type=int, default=63, help="speech 39 + body 24")
    p.add_argument("--stride", type=int, default=10)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="")
    p.add_argument("--one", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    return p


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    if args.one:  # child process: one measurement, JSON on the last line
        print(json.dumps(measure(args.one[0], int(args.one[1]), args)))
        return
    rows = []
    passthrough = []
    for name in ("recordings", "frames", "features", "stride", "chunk", "steps", "repeats", "seed"):
        passthrough += [f"--{name}", str(getattr(args, name))]
    for n in args.windows:
        for mode in args.modes:
            cmd = [sys.executable, __file__, *passthrough, "--one", mode, str(n)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                print(f"{mode} N={n} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{mode:>12} N={n}: {row['frames_per_s']:,.0f} frames/s, data "
                f"{row['data_MiB']:.0f} MiB, peak RSS {row['peak_rss_MiB']:.0f} MiB",
                flush=True,
            )
            rows.append(row)
    print(_table(rows, args))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
