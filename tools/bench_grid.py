"""Benchmark of grid execution: one config, K configs as one program, K configs in a loop.

Every variant runs in a fresh subprocess (so its peak memory is its own and the CPU
host-device count can differ), trains the same GRU multi-task model (``--layers`` ×
``--units``, 88 inputs, heads emotion + uncertainty, MSE, Adam) with the engine of
``ddat_jax.train`` on random data (``--train-seqs`` sequences of ``--frames`` frames,
minibatches of 4, ``--dev-seqs`` dev sequences scored after every epoch) for
``--epochs`` epochs, and reports the median of ``--repeats`` runs after compilation and
one untimed warm-up run.

Variants:

* ``one``: one config (``jax.jit(train)``).
* ``one_1core`` (CPU): ``one`` pinned to a single core. ``one_1core / one`` is how much
  one training already gains from the other cores (XLA runs the big non-recurrent
  matmuls multi-threaded); a grid cannot do better than every core busy with one
  member each, so ``one_1core / (cores × one)`` is about the lowest ``grid / loop``
  this machine allows (``lax.map`` inside one program saves a little more, see
  ``grid_map / loop``), and ``grid / (K × one_1core / cores)`` near or below 1 says the
  grid keeps every core busy.
* ``loop``: the K configs (``w_E`` grid ``0, 0.1, …``) one after another, a Python loop
  over the same compiled ``train``.
* ``grid``: the K configs as one program with ``--strategy`` (default ``auto``: ``map``
  sharded over host devices on CPU, ``vmap`` on GPU/TPU); on CPU the host is split into
  ``nproc`` devices (:func:`ddat_jax.train.grid.configure_host_devices`).
* ``grid_vmap`` / ``grid_map``: the K configs as one program on one device (CPU only,
  for the strategy choice).
* ``torch``: one config trained with ``torch.nn.GRU`` (same shapes, steps, Adam),
  the reference a user would otherwise pick (if torch is importable).
* ``arch_all`` / ``arch_loop`` (``--arch``): the architecture grid
  ``{1,3,5,7,9} × {40,80,120}`` as one padded vmapped program vs the 15 unpadded
  shapes one after another (run time only; compile time reported apart). CPU also
  runs ``arch_depth`` (one padded program per depth).

Per-step time = training time / (epochs × minibatches per epoch); it includes the
amortised dev evaluation. Peak memory: ``ru_maxrss`` of the variant's process on CPU,
``peak_bytes_in_use`` of the device on GPU/TPU.

Usage::

    python tools/bench_grid.py --quick                 # seconds to a minute on a CPU
    python tools/bench_grid.py                          # full size (GRU 3x120, 1500 frames)
    python tools/bench_grid.py --device-report          # same; the device line is always printed
    python tools/bench_grid.py --k 21 --frames 1500 --strategy map --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCH_GRID = tuple((d, u) for d in (1, 3, 5, 7, 9) for u in (40, 80, 120))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    p.add_argument("--k", type=int, default=21, help="configs in the grid (w_E values)")
    p.add_argument("--frames", type=int, default=None, help="frames per sequence (1500)")
    p.add_argument("--strategy", default="auto", help="grid strategy of the 'grid' variant")
    p.add_argument("--out", default="bench_grid.json", help="JSON output path")
    p.add_argument(
        "--device-report",
        action="store_true",
        help="print the device line (always printed; kept for scripts that pass it)",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--units", type=int, default=120)
    p.add_argument("--features", type=int, default=88)
    p.add_argument("--train-seqs", type=int, default=4)
    p.add_argument("--dev-seqs", type=int, default=2)
    p.add_argument(
        "--arch",
        choices=("auto", "on", "off"),
        default="auto",
        help="architecture-grid variants (auto: on for GPU/TPU, off on CPU)",
    )
    p.add_argument(
        "--arch-frames",
        type=int,
        default=None,
        help="frames per sequence for the architecture grid (default --frames)",
    )
    p.add_argument("--variants", default="", help="comma-separated subset of variants")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--variant", default="", help=argparse.SUPPRESS)  # internal: child mode
    args = p.parse_args(argv)
    if args.frames is None:
        args.frames = 300 if args.quick else 1500
    if args.epochs is None:
        args.epochs = 2 if args.quick else 3
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.arch_frames is None:
        args.arch_frames = args.frames
    return args


# ------------------------------------------------------------------------- child side


def _peak_memory_mib(jax):
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**20, "device peak_bytes_in_use"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process maxrss"


def _make_data(np, args, frames):
    rng = np.random.default_rng(0)

    def part(n):
        x = rng.normal(size=(n, frames, args.features)).astype(np.float32)
        y = np.tanh(x[..., :3].sum(-1, keepdims=True) / 2)
        return {"inputs": x, "targets": {"emotion": y, "uncertainty": 0.3 + 0.1 * y}}

    return {"train": part(args.train_seqs), "dev": part(args.dev_seqs)}


def _config(args):
    import ml_collections

    from ddat_jax.train import default_train_config
    from ddat_jax.train import grid as G

    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.update(default_train_config())
    cfg.train.epochs = args.epochs
    cfg.train.batch_size = 4
    cfg.train.patience = 0
    cfg.grid = G.default_grid_config()
    cfg.grid.w_e = tuple(round(0.1 * i, 10) for i in range(args.k))
    cfg.grid.w_total = max(2.0, 0.1 * (args.k - 1))
    return cfg


def _child(args):
    name = args.variant
    if name == "one_1core":
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if name in ("grid", "arch_all", "arch_depth"):
        from ddat_jax.train.grid import configure_host_devices

        configure_host_devices()
    import tempfile

    import jax
    import numpy as np

    from ddat_jax.models import MultiTaskRNN
    from ddat_jax.models.padded import padding_for
    from ddat_jax.train import (
        RunOptions,
        fit,
        objective_from_config,
        train_spec_from_config,
    )
    from ddat_jax.train import grid as G

    heads = {"emotion": 1, "uncertainty": 1}
    result = {"variant": name, "backend": jax.default_backend(), "devices": len(jax.devices())}
    steps_per_epoch = -(-args.train_seqs // 4)

    if name == "torch":
        result.update(_torch_child(args, np))
        result["per_step_s"] = result["run_s"] / (args.epochs * steps_per_epoch)
        result["per_epoch_s"] = result["run_s"] / args.epochs
        if "peak_mib" not in result:
            result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            result["memory"] = "process maxrss"
        return result

    cfg = _config(args)
    if name.startswith("arch"):
        frames = args.arch_frames
        cfg.grid.w_e = (1.0,)
        cfg.grid.arch = ARCH_GRID
    else:
        frames = args.frames
    data = _make_data(np, args, frames)
    table = G.expand_grid(cfg)
    hparams = G.member_hparams(cfg, table)
    keys = G.table_keys(jax.random.key(0), table)
    take = lambda tree, idx: jax.tree.map(lambda a: np.asarray(a)[idx], tree)
    objective = objective_from_config(cfg.train, heads)

    def build(num_layers=args.layers, hidden_size=args.units):
        return MultiTaskRNN(hidden_size=hidden_size, num_layers=num_layers, heads=heads)

    def fitter(model, idx, strategy, devices, init=None):
        """One fit of the members ``idx`` as one chunk (one program, one checkpoint)."""
        spec = train_spec_from_config(cfg.train, model, objective)
        e = int(cfg.train.epochs)
        opts = RunOptions(log_every=e, checkpoint_every=e, strategy=strategy, devices=devices)

        def run():
            with tempfile.TemporaryDirectory() as d:
                return fit(
                    spec,
                    data,
                    take(hparams, idx),
                    keys[idx],
                    workdir=d,
                    options=opts,
                    member_params=init,
                    progress=lambda line: None,
                )

        return run

    def timed(run):
        # The first run compiles (and warms page faults, allocator growth); then timed runs.
        first = run()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return first.compile_seconds, statistics.median(times), times

    if name in ("one", "one_1core", "loop", "grid", "grid_vmap", "grid_map"):
        idx = np.arange(1 if name.startswith("one") else len(table))
        strategy = {
            "one": "loop",
            "one_1core": "loop",
            "loop": "loop",
            "grid": args.strategy,
            "grid_vmap": "vmap",
            "grid_map": "map",
        }[name]
        devices = tuple(jax.devices()) if name == "grid" else tuple(jax.devices()[:1])
        result.update(strategy=G.choose_strategy(strategy), program_devices=len(devices))
        result["compile_s"], result["run_s"], result["runs_s"] = timed(
            fitter(build(), idx, strategy, devices)
        )
        result["members"] = len(idx)
    elif name in ("arch_all", "arch_loop", "arch_depth"):
        grouping = {"arch_all": "all", "arch_loop": "none", "arch_depth": "depth"}[name]
        groups = G.group_shapes(ARCH_GRID, grouping)
        strategy = "loop" if name == "arch_loop" else "auto"
        devices = tuple(jax.devices()[:1] if strategy == "loop" else jax.devices())
        runs = []
        for shapes in groups:
            idx = np.array(
                [i for i in range(len(table)) if (table.layers[i], table.units[i]) in shapes]
            )
            if len(shapes) > 1:
                padding = padding_for(build(), shapes)
                member_shapes = [(table.layers[i], table.units[i]) for i in idx]
                init = G.padded_init_params(
                    build, padding, member_shapes, keys[idx], data["train"]["inputs"]
                )
                runs.append(fitter(padding.model, idx, strategy, devices, init))
            else:
                runs.append(fitter(build(*shapes[0]), idx, strategy, devices))
        result["strategy"] = G.choose_strategy(strategy)
        compiled = [r() for r in runs]
        result["compile_s"] = sum(c.compile_seconds for c in compiled)
        _, result["run_s"], result["runs_s"] = timed(lambda: [r() for r in runs][-1])
        result["members"] = len(table)
        result["programs"] = len(groups)
    else:
        raise ValueError(f"unknown variant {name!r}")
    result["per_epoch_s"] = result["run_s"] / args.epochs
    result["per_step_s"] = result["run_s"] / (args.epochs * steps_per_epoch)
    result["peak_mib"], result["memory"] = _peak_memory_mib(jax)
    return result


def _torch_child(args, np):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    # On a GPU machine the reference is torch.nn.GRU on the GPU (cuDNN), as a user would run it.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    data = _make_data(np, args, args.frames)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(args.features, args.units, args.layers, batch_first=True)
            self.emotion = torch.nn.Linear(args.units, 1)
            self.uncertainty = torch.nn.Linear(args.units, 1)

        def forward(self, x):
            h, _ = self.rnn(x)
            return self.emotion(h), self.uncertainty(h)

    net = Net().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    tr = {"x": torch.from_numpy(data["train"]["x"]).to(device)}
    y_e = torch.from_numpy(data["train"]["targets"]["emotion"]).to(device)
    y_u = torch.from_numpy(data["train"]["targets"]["uncertainty"]).to(device)
    dev_x = torch.from_numpy(data["dev"]["x"]).to(device)
    dev_y = torch.from_numpy(data["dev"]["targets"]["emotion"]).to(device)

    def train():
        for _epoch in range(args.epochs):
            perm = torch.randperm(args.train_seqs, device=device)
            for b in range(0, args.train_seqs, 4):
                idx = perm[b : b + 4]
                e, u = net(tr["x"][idx])
                loss = torch.mean((e - y_e[idx]) ** 2) + torch.mean((u - y_u[idx]) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                p, _ = net(dev_x)
                p, t = p.flatten(), dev_y.flatten()
                cov = torch.mean((p - p.mean()) * (t - t.mean()))
                _ccc = (
                    2
                    * cov
                    / (p.var(unbiased=False) + t.var(unbiased=False) + (p.mean() - t.mean()) ** 2)
                )

    t0 = time.perf_counter()
    train()  # warm-up (allocator, oneDNN / cuDNN kernels)
    sync()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        train()
        sync()
        times.append(time.perf_counter() - t0)
    where = (
        torch.cuda.get_device_name()
        if device.type == "cuda"
        else f"{torch.get_num_threads()} threads"
    )
    out = {
        "run_s": statistics.median(times),
        "runs_s": times,
        "compile_s": warm,
        "members": 1,
        "strategy": f"torch {torch.__version__} {where}",
    }
    if device.type == "cuda":
        out["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["memory"] = "torch.cuda.max_memory_allocated"
    return out


# ------------------------------------------------------------------------ parent side


def _device_report():
    import jax

    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", dev.platform)
    return (
        f"device-report: backend={jax.default_backend()} devices={len(jax.devices())} "
        f"kind={kind} jax={jax.__version__} cpus={os.cpu_count()} "
        f"load={os.getloadavg()[0]:.1f}"
    )


def _run_variant(name, argv):
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(REPO))
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--variant", name]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"variant": name, "error": proc.stderr[-2000:], "wall_s": wall}
    out = json.loads(line[len("RESULT ") :])
    out["wall_s"] = wall
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.variant:
        print("RESULT " + json.dumps(_child(args)), flush=True)
        return 0
    # The parent only asks JAX which backend it has; it must not grab accelerator memory.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    report = _device_report()
    print(report, flush=True)
    import jax

    backend = jax.default_backend()
    try:
        import torch  # noqa: F401

        have_torch = not args.no_torch
    except ImportError:
        have_torch = False
    variants = ["one", "loop", "grid"]
    if backend == "cpu":
        variants += ["grid_map", "grid_vmap", "one_1core"]
    if have_torch:
        variants.append("torch")
    if args.arch == "on" or (args.arch == "auto" and backend != "cpu"):
        variants += ["arch_all", "arch_loop"] + (["arch_depth"] if backend == "cpu" else [])
    if args.variants:
        variants = args.variants.split(",")
    child_argv = list(argv)
    results = {}
    for name in variants:
        r = _run_variant(name, child_argv)
        results[name] = r
        status = "error" if "error" in r else f"{r['run_s']:.3f} s"
        print(f"  {name:10s} {status}  (wall {r['wall_s']:.0f} s)", flush=True)
        if "error" in r:
            print(r["error"], file=sys.stderr)

    ok = {k: v for k, v in results.items() if "error" not in v}

    def ratio(a, b):
        if a in ok and b in ok and ok[b]["run_s"] > 0:
            return ok[a]["run_s"] / ok[b]["run_s"]
        return None

    ratios = {
        "grid / loop (K configs)": ratio("grid", "loop"),
        "grid / one": ratio("grid", "one"),
        "one_1core / one (gain of one config from all cores)": ratio("one_1core", "one"),
        "grid_map / loop": ratio("grid_map", "loop"),
        "grid_vmap / loop": ratio("grid_vmap", "loop"),
        "torch / one (speed-up of JAX over torch)": ratio("torch", "one"),
        "arch_loop / arch_all (speed-up of one padded program)": ratio("arch_loop", "arch_all"),
        "arch_depth / arch_all": ratio("arch_depth", "arch_all"),
        "arch_loop / arch_depth": ratio("arch_loop", "arch_depth"),
    }
    gain = ratio("one_1core", "one")
    if gain is not None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        label = f"grid / loop if {cores} cores ran one member each (one_1core / ({cores} x one))"
        ratios[label] = gain / cores
        if "grid" in ok:
            ideal = ok["grid"]["members"] * ok["one_1core"]["run_s"] / cores
            ratios[f"grid / (K x one_1core / {cores} cores) (<= 1: every core busy)"] = (
                ok["grid"]["run_s"] / ideal
            )
    mem = {}
    if "one" in ok:
        for name in ("grid", "grid_map", "grid_vmap", "loop"):
            if name in ok:
                mem[f"{name} peak / one peak"] = ok[name]["peak_mib"] / ok["one"]["peak_mib"]

    print()
    print(report)
    print(
        f"GRU {args.layers}x{args.units}, {args.features} inputs, {args.train_seqs} train x "
        f"{args.frames} frames (batch 4), {args.dev_seqs} dev, {args.epochs} epochs, "
        f"K={args.k}, median of {args.repeats}"
        + (
            f"; architecture grid at {args.arch_frames} frames"
            if any(n.startswith("arch") for n in results)
            else ""
        )
    )
    header = (
        f"| {'variant':10s} | {'strategy':40s} | {'members':>7s} | {'train s':>8s} | "
        f"{'per epoch s':>11s} | {'per step s':>10s} | {'compile s':>9s} | {'peak MiB':>8s} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name:10s} | error: see stderr")
            continue
        print(
            f"| {name:10s} | {str(r.get('strategy', ''))[:40]:40s} | {r['members']:7d} | "
            f"{r['run_s']:8.3f} | {r['per_epoch_s']:11.4f} | {r['per_step_s']:10.4f} | "
            f"{r['compile_s']:9.1f} | {r['peak_mib']:8.0f} |"
        )
    print()
    for k, v in {**ratios, **mem}.items():
        if v is not None:
            print(f"{k}: {v:.3f}")
    out = {
        "device_report": report,
        "args": {k: v for k, v in vars(args).items() if k != "variant"},
        "results": results,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "memory_ratios": mem,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
