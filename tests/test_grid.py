"""Tests of ddat_jax.train.grid and the driver's strategies: expansion, strategies,
sharding, run_grid outputs.

References are independent runs: every member is compared with its own
``make_train(spec, data)(hparams, key)`` call (unpadded model, solo program), never
with another strategy of the driver. The sharded-vs-unsharded check runs in a
subprocess that starts JAX with 4 host-platform devices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pandas as pd
import pytest
from absl import flags
from ml_collections import config_flags

from ddat_jax.models import MultiTaskRNN
from ddat_jax.train import (
    RunOptions,
    default_train_config,
    fit,
    make_train,
    objective_from_config,
    system_key,
    train_spec_from_config,
)
from ddat_jax.train import grid as G

F, T = 4, 16
HEADS = {"emotion": 1, "uncertainty": 1}
REPO = Path(__file__).resolve().parents[1]


def make_data(seed=0, n_train=5, n_dev=3, n_test=3):
    rng = np.random.default_rng(seed)

    def part(n):
        x = rng.normal(size=(n, T, F)).astype(np.float32)
        y = np.tanh(x @ np.array([0.8, -0.4, 0.2, 0.1]))
        y = np.cumsum(y, axis=1) / np.sqrt(np.arange(1, T + 1))
        mask = np.ones((n, T), bool)
        mask[0, T - 5 :] = False
        return {
            "inputs": x,
            "mask": mask,
            "targets": {"emotion": y[..., None], "uncertainty": (0.2 + 0.1 * np.abs(y))[..., None]},
        }

    return {"train": part(n_train), "dev": part(n_dev), "test": part(n_test)}


def make_config(**grid):
    cfg = ml_collections.ConfigDict()
    cfg.seed = 3
    cfg.update(default_train_config())
    cfg.train.epochs = 3
    cfg.train.batch_size = 2
    cfg.train.patience = 0
    cfg.hparams.learning_rate = 1e-2
    cfg.grid = G.default_grid_config()
    cfg.grid.update(grid)
    return cfg


def build(num_layers=1, hidden_size=6):
    return MultiTaskRNN(hidden_size=hidden_size, num_layers=num_layers, heads=HEADS)


def spec_of(cfg, model):
    return train_spec_from_config(cfg.train, model, objective_from_config(cfg.train, HEADS))


_SOLO = {}


def solo(cfg, data, table, i, model):
    """Member i trained alone with the engine's make_train (the reference).

    The jitted ``train`` is cached per model (the test data and ``cfg.train`` are the
    same in every test), so each shape compiles once per session.
    """
    hp = jax.tree.map(lambda a: a[i], G.member_hparams(cfg, table))
    key = G.table_keys(jax.random.key(int(cfg.seed)), table)[i]
    if model not in _SOLO:
        _SOLO[model] = jax.jit(make_train(spec_of(cfg, model), data))
    return _SOLO[model](hp, key)


@pytest.fixture(scope="module")
def data():
    return make_data()


# ----------------------------------------------------------------------- expansion


def test_expand_grid_product_order_and_columns():
    cfg = make_config(w_e=(0.0, 0.5, 2.0), learning_rate=(1e-3, 1e-2), seeds=2)
    table = G.expand_grid(cfg)
    assert len(table) == 3 * 2 * 2
    assert list(table.columns) == [
        "member",
        "setting",
        "seed",
        "w_e",
        "w_sigma",
        "learning_rate",
    ]
    np.testing.assert_array_equal(table.member, np.arange(12))
    np.testing.assert_array_equal(table.seed, [0, 1] * 6)
    np.testing.assert_array_equal(table.setting, np.repeat(np.arange(6), 2))
    np.testing.assert_allclose(table.w_e + table.w_sigma, 2.0)
    np.testing.assert_allclose(table.w_e[::4], [0.0, 0.5, 2.0])
    hp = G.member_hparams(cfg, table)
    np.testing.assert_allclose(hp["loss_weights"]["uncertainty"], table.w_sigma)
    np.testing.assert_allclose(hp["learning_rate"], table.learning_rate)
    np.testing.assert_allclose(hp["l2"], 0.0)


def test_expand_grid_paper_grids_and_arch():
    cfg = make_config(w_e=G.frange(0, 2, 0.1))
    assert len(G.expand_grid(cfg)) == 21
    cfg = make_config(alpha=G.frange(0, 1, 0.1), alpha_head="uncertainty")
    table = G.expand_grid(cfg)
    assert len(table) == 11 and table.alpha.iloc[-1] == 1.0
    arch = tuple((d, u) for d in (1, 3, 5, 7, 9) for u in (40, 80, 120))
    table = G.expand_grid(make_config(arch=arch, seeds=2))
    assert len(table) == 30 and table.layers.iloc[-1] == 9 and table.units.iloc[-1] == 120
    empty = G.expand_grid(make_config())
    assert len(empty) == 1 and list(empty.columns) == ["member", "setting", "seed"]


def test_expand_grid_command_line_override():
    cfg = make_config()
    argv = [
        "prog",
        "--config.grid.w_e=(0.0,1.0,2.0)",
        "--config.grid.arch=((1,40),(3,80))",
        "--config.grid.seeds=2",
    ]
    fv = flags.FlagValues()
    config_flags.DEFINE_config_dict("config", cfg, flag_values=fv, sys_argv=argv)
    fv(argv)
    table = G.expand_grid(fv.config)
    assert len(table) == 2 * 3 * 2
    assert set(zip(table.layers, table.units, strict=True)) == {(1, 40), (3, 80)}


def test_validation_errors():
    with pytest.raises(ValueError, match="valid"):
        G.expand_grid(make_config(strategy="pmap"))
    with pytest.raises(ValueError, match="valid"):
        G.group_shapes([(1, 4)], "rows")
    with pytest.raises(ValueError, match="layers"):
        G.expand_grid(make_config(arch=((0, 4),)))
    with pytest.raises(ValueError, match="valid"):
        RunOptions(strategy="pmap")
    assert G.choose_strategy("auto", "cpu") == "map"
    assert G.choose_strategy("auto", "gpu") == "vmap"
    assert G.choose_strategy("auto", "tpu") == "vmap"


def test_group_shapes():
    shapes = [(d, u) for d in (1, 3) for u in (40, 80)]
    assert G.group_shapes(shapes, "all") == [sorted(shapes)]
    assert G.group_shapes(shapes, "none") == [[s] for s in sorted(shapes)]
    assert G.group_shapes(shapes, "depth") == [[(1, 40), (1, 80)], [(3, 40), (3, 80)]]
    assert G.group_shapes(shapes, "width") == [[(1, 40), (3, 40)], [(1, 80), (3, 80)]]
    assert G.group_shapes(shapes, "auto", backend="cpu") == [[s] for s in sorted(shapes)]
    assert G.group_shapes(shapes, "auto", backend="gpu") == [sorted(shapes)]


# ----------------------------------------------------------------------- strategies


def _assert_member_equal(out, i, ref, rtol=2e-4, atol=2e-5):
    np.testing.assert_allclose(out.best_score[i], ref.best_score, rtol=rtol, atol=atol)
    assert int(out.best_epoch[i]) == int(ref.best_epoch)
    for a, b in zip(
        jax.tree.leaves(jax.tree.map(lambda x: x[i], out.best_params)),
        jax.tree.leaves(ref.best_params),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
    np.testing.assert_allclose(
        out.history.train_loss[i], ref.history.train_loss, rtol=rtol, atol=atol
    )


def fit_members(cfg, data, tmp_path, **options):
    table = G.expand_grid(cfg)
    keys = G.table_keys(jax.random.key(int(cfg.seed)), table)
    out = fit(
        spec_of(cfg, build()),
        data,
        G.member_hparams(cfg, table),
        keys,
        workdir=tmp_path,
        options=RunOptions(log_every=3, checkpoint_every=3, **options),
        progress=lambda line: None,
    )
    return table, out


@pytest.mark.parametrize(
    "strategy",
    [
        # "map" (the CPU default) is also covered, member by member, by the run_grid test.
        pytest.param("map", marks=pytest.mark.slow),
        pytest.param("vmap", marks=pytest.mark.slow),
        pytest.param("chunked", marks=pytest.mark.slow),
        pytest.param("loop", marks=pytest.mark.slow),
    ],
)
def test_strategies_equal_separate_train_calls(data, strategy, tmp_path):
    cfg = make_config(w_e=(0.5, 1.5), learning_rate=(1e-2, 3e-3), seeds=1, chunk_size=3)
    table, out = fit_members(cfg, data, tmp_path, strategy=strategy, chunk_size=3)
    for i in (0, 3):
        _assert_member_equal(out, i, solo(cfg, data, table, i, build()))


def test_seeds_are_a_grid_axis():
    cfg = make_config(w_e=(1.0,), seeds=3)
    key = system_key(3, "stl")
    kd = jax.random.key_data(G.table_keys(key, G.expand_grid(cfg)))
    assert len({tuple(np.asarray(k)) for k in kd}) == 3  # distinct keys per seed
    cfg2 = make_config(w_e=(0.0, 1.0), seeds=3)
    kd2 = np.asarray(jax.random.key_data(G.table_keys(key, G.expand_grid(cfg2))))
    np.testing.assert_array_equal(kd2[:3], kd2[3:])  # the same seeds for every setting
    # Seed 0 of a grid is the key of the system trained alone.
    alone = jax.random.key_data(jax.random.split(key, 1)[0])
    np.testing.assert_array_equal(kd2[0], np.asarray(alone))


# ------------------------------------------------------------------------ run_grid


def test_run_grid_writes_results_and_selects_best(data, tmp_path):
    cfg = make_config(w_e=(0.5, 1.0, 1.5), seeds=2)
    result = G.run_grid(cfg, data, workdir=tmp_path, build_model_fn=build)
    csv = pd.read_csv(tmp_path / "results" / "grid.csv")
    assert len(csv) == 6 and {"best_dev_score", "test_score", "w_e", "seed"} <= set(csv.columns)
    best = json.loads((tmp_path / "results" / "grid_best.json").read_text())
    means = result.groupby("setting").best_dev_score.mean()
    stds = result.groupby("setting").best_dev_score.std(ddof=0)
    assert best["setting"] == int(means.idxmax())
    np.testing.assert_allclose(best["setting_mean_dev_score"], means.max(), rtol=1e-6)
    np.testing.assert_allclose(best["setting_std_dev_score"], stds[means.idxmax()], rtol=1e-5)
    assert best["seeds"] == 2 and "setting_std_test_score" in best
    assert (
        result.selected.sum() == 1 and int(result.member[result.selected].iloc[0]) == best["member"]
    )
    # Every member equals its solo run (run_grid's default strategy on CPU is "map").
    table = G.expand_grid(cfg)
    for i in range(len(table)):
        ref = solo(cfg, data, table, i, build())
        np.testing.assert_allclose(result.best_dev_score[i], ref.best_score, rtol=2e-4, atol=2e-5)
        assert result.best_epoch[i] == int(ref.best_epoch)
    # The saved parameters are the selected member's (compared with its solo run).
    ref = solo(cfg, data, table, best["member"], build())
    saved = G.load_best_params(tmp_path)
    for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(ref.best_params), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=2e-4, atol=2e-5)
    # Test CCC of the best parameters, against a NumPy CCC of the solo model's output.
    out = build().apply(
        {"params": ref.best_params}, data["test"]["inputs"], mask=data["test"]["mask"]
    )
    m = data["test"]["mask"]
    p = np.asarray(out["emotion"][..., 0], np.float64)[m]
    t = data["test"]["targets"]["emotion"][..., 0].astype(np.float64)[m]
    ccc = (
        2
        * np.mean((p - p.mean()) * (t - t.mean()))
        / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)
    )
    np.testing.assert_allclose(best["test_score"], ccc, rtol=1e-4, atol=1e-5)


def test_run_grid_unknown_weight_head(data, tmp_path):
    cfg = make_config(alpha=(0.5,), alpha_head="reconstruction")
    with pytest.raises(ValueError, match="heads"):
        G.run_grid(cfg, data, workdir=tmp_path, build_model_fn=build)


@pytest.mark.slow
def test_run_grid_arch_padded_equals_separate_runs(data, tmp_path):
    arch = ((1, 3), (2, 6), (1, 6))
    cfg = make_config(arch=arch, w_e=(1.0,), strategy="vmap", arch_grouping="all")
    result = G.run_grid(cfg, data, workdir=tmp_path, build_model_fn=build)
    assert len(result.attrs["programs"]) == 1 and result.attrs["programs"][0]["padded"]
    table = G.expand_grid(cfg)
    for i in range(len(table)):
        ref = solo(cfg, data, table, i, build(int(table.layers[i]), int(table.units[i])))
        np.testing.assert_allclose(result.best_dev_score[i], ref.best_score, rtol=2e-4, atol=2e-5)
        assert result.best_epoch[i] == int(ref.best_epoch)
    best = result.attrs["best"]
    ref = solo(cfg, data, table, best["member"], build(best["layers"], best["units"]))
    for a, b in zip(
        jax.tree.leaves(result.attrs["best_params"]),
        jax.tree.leaves(ref.best_params),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)


# ------------------------------------------------------------------------ sharding

_SHARD_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    from tests.test_grid import fit_members, make_config, make_data
    assert len(jax.devices()) == 4, jax.devices()
    data = make_data()
    # 6 members over 4 devices: members are padded to 8.
    cfg = make_config(w_e=(0.5, 1.0, 1.5), learning_rate=(1e-2, 3e-3))
    report = {}
    d = tempfile.mkdtemp()
    for strategy in sys.argv[2].split(","):
        _, out = fit_members(cfg, data, d + "/all" + strategy, strategy=strategy,
                             devices=tuple(jax.devices()))
        _, one = fit_members(cfg, data, d + "/one" + strategy, strategy=strategy,
                             devices=tuple(jax.devices()[:1]))
        leaves = lambda r: jax.tree.leaves((r.best_params, r.best_score, r.history))
        errs = [float(np.nanmax(np.abs(np.asarray(a, float) - np.asarray(b, float))))
                for a, b in zip(leaves(out), leaves(one))]
        report[strategy] = {
            "max_err_vs_unsharded": max(errs),
            "members": int(out.best_score.shape[0]),
        }
    print("REPORT" + json.dumps(report))
    """
)


@pytest.mark.parametrize("strategy", ["map", pytest.param("vmap", marks=pytest.mark.slow)])
def test_sharded_equals_unsharded_on_4_host_devices(tmp_path, strategy):
    script = tmp_path / "shard_check.py"
    script.write_text(_SHARD_SCRIPT)
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(script), str(REPO), strategy],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("REPORT"))
    report = json.loads(line[len("REPORT") :])
    for strategy, r in report.items():
        assert r["members"] == 6, strategy
        assert r["max_err_vs_unsharded"] < 1e-5, (strategy, r)


def test_configure_host_devices_in_fresh_process():
    code = (
        "import os; os.environ.pop('XLA_FLAGS', None)\n"
        "from ddat_jax.train.grid import configure_host_devices\n"
        "n = configure_host_devices(3)\n"
        "import jax\n"
        "print(n, len(jax.devices('cpu')), configure_host_devices(5))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["3", "3", "3"]
