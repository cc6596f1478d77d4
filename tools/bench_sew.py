"""Benchmark of SEW's training step: throughput (frames/s) and the share of the DCCA term.

One step = the engine's own ``train_step`` (forward + backward + SGD with momentum, L2)
on a minibatch of ``--batch`` frames (length-1 sequences, as the paper), at the paper's
sizes for a pair (default weak video-geometric 632 → encoder [512, 256, 128], strong
audio 88 → [108, 128], regressor 4 GRU × 120), random data. ``--steps`` steps run in one
jitted ``lax.scan`` (as in an epoch), timed after compilation, median of ``--repeats``.

Objectives timed (the DCCA share = 1 − no-DCCA / full):

* ``full``: L_pred + translation + autoencoder + DCCA (SEW);
* ``no_dcca``: the same without the DCCA term (everything else identical);
* ``dcca_only``: value and gradient of the DCCA term alone on two ``[batch, 1, d]``
  latents (its own cost, without the networks).

Usage::

    python tools/bench_sew.py                 # paper sizes, a minute on a 2-core CPU
    python tools/bench_sew.py --pair video_appearance+audio --latent 168
    python tools/bench_sew.py --quick         # tiny, seconds

Timings on a shared machine are noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ddat_jax import losses  # noqa: E402
from ddat_jax import train as train_lib  # noqa: E402
from ddat_jax.models.sew import SEW  # noqa: E402

FEATURES = {"audio": 88, "video_geometric": 632, "video_appearance": 168}
HIDDEN = {"audio": (108,), "video_geometric": (512, 256), "video_appearance": ()}


def objective(with_dcca: bool, top_k: int) -> train_lib.Objective:
    """SEW's objective, with or without the DCCA term."""
    t = train_lib.Term
    terms = [
        t("mse", "emotion", "targets/emotion", name="pred"),
        t("mse", "strong_from_weak", "targets/strong", name="translation"),
        t("mse", "strong_from_strong", "targets/strong", name="autoencoder"),
    ]
    if with_dcca:
        opts = (("top_k", top_k), ("r1", 1e-3), ("r2", 1e-3))
        terms.append(t("dcca", "latent_w", "outputs/latent_s", name="cca", options=opts))
    return train_lib.Objective(tuple(terms), train_lib.Score("ccc", "emotion", "targets/emotion"))


def _batches(steps: int, batch: int, fw: int, fs: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    f32 = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)
    strong = f32(steps, batch, 1, fs)
    return {
        "inputs": {"weak": f32(steps, batch, 1, fw), "strong": strong},
        "mask": jnp.ones((steps, batch, 1), bool),
        "targets": {"emotion": f32(steps, batch, 1, 1), "strong": strong},
    }


def time_steps(model, obj, batches, repeats: int) -> tuple[float, float]:
    """``(compile seconds, median seconds per scan of all steps)``."""
    spec = train_lib.TrainSpec(
        model=model, objective=obj, epochs=1, batch_size=1, optimizer="sgd", momentum=0.7
    )
    hp = {
        "learning_rate": jnp.float32(1e-3),
        "noise_std": jnp.float32(0.0),
        "l2": jnp.float32(5e-5),
        "loss_weights": {k: jnp.float32(1.0) for k in obj.weight_keys},
    }
    first = jax.tree.map(lambda a: a[0], batches)
    params = model.init(jax.random.key(0), first["inputs"])["params"]
    opt = train_lib.engine.make_optimizer(spec, hp["learning_rate"]).init(params)
    keys = jax.random.split(jax.random.key(1), batches["mask"].shape[0])

    @jax.jit
    def run(params, opt, batches):
        def step(carry, xs):
            b, k = xs
            return train_lib.train_step(spec, carry, b, k, hp)

        (p, o, ok), (loss, _) = jax.lax.scan(step, (params, opt, jnp.array(True)), (batches, keys))
        return p, loss

    t0 = time.perf_counter()
    jax.block_until_ready(run(params, opt, batches))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(params, opt, batches))
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times)


def time_dcca(steps: int, batch: int, latent: int, top_k: int, repeats: int) -> float:
    """Median seconds of ``steps`` DCCA value-and-gradients on ``[batch, 1, latent]``."""
    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.normal(size=(steps, batch, 1, latent)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(steps, batch, 1, latent)), jnp.float32)
    vg = jax.value_and_grad(
        lambda x, y: losses.dcca_loss(x, y, top_k=top_k, axis=(0, 1), r1=1e-3, r2=1e-3),
        argnums=(0, 1),
    )

    @jax.jit
    def run(a, b):
        def step(c, xs):
            v, (ga, gb) = vg(*xs)
            return c + v + jnp.sum(ga) + jnp.sum(gb), None

        return jax.lax.scan(step, jnp.float32(0), (a, b))[0]

    jax.block_until_ready(run(a, b))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(a, b))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(pair: str, batch: int, steps: int, repeats: int, latent: int, top_k: int, tiny: bool):
    """Every measurement of one pair; returns a JSON-able dict."""
    weak, strong = pair.split("+")
    fw, fs = FEATURES[weak], FEATURES[strong]
    hidden = {k: tuple(max(2, h // 16) for h in v) for k, v in HIDDEN.items()} if tiny else HIDDEN
    units, layers = (8, 2) if tiny else (120, 4)
    model = SEW(
        weak_hidden=hidden[weak],
        strong_hidden=hidden[strong],
        latent=latent,
        gru_layers=layers,
        gru_units=units,
    )
    batches = _batches(steps, batch, fw, fs)
    out = {"pair": pair, "batch": batch, "steps": steps, "latent": latent, "top_k": top_k}
    for name, with_dcca in (("full", True), ("no_dcca", False)):
        c, t = time_steps(model, objective(with_dcca, top_k), batches, repeats)
        out[name] = {
            "compile_s": round(c, 2),
            "step_ms": round(1000 * t / steps, 3),
            "frames_per_s": round(steps * batch / t, 1),
        }
    t = time_dcca(steps, batch, latent, top_k, repeats)
    out["dcca_only"] = {"step_ms": round(1000 * t / steps, 3)}
    full, rest = out["full"]["step_ms"], out["no_dcca"]["step_ms"]
    out["dcca_share"] = round(max(0.0, 1.0 - rest / full), 3)
    out["dcca_only_share"] = round(out["dcca_only"]["step_ms"] / full, 3)
    out["machine"] = f"{platform.node()} {jax.devices()[0].platform} x{jax.device_count()}"
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="video_geometric+audio", help="weak+strong")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--latent", type=int, default=128)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="tiny networks, 20 steps")
    ap.add_argument("--out", default="", help="also write the JSON here")
    a = ap.parse_args(argv)
    if a.pair.count("+") != 1 or any(m not in FEATURES for m in a.pair.split("+")):
        ap.error(f"--pair must be weak+strong of {sorted(FEATURES)}")
    steps = 20 if a.quick else a.steps
    res = bench(a.pair, a.batch, steps, a.repeats, a.latent, a.top_k, a.quick)
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return res


if __name__ == "__main__":
    main()
