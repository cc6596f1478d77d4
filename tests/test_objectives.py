"""Tests of ddat_jax.train.objectives: every loss term and score against float64 NumPy.

The references are written here from the definitions (population statistics over the
valid frames pooled over sequences and time), never by calling ddat_jax.losses.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddat_jax import losses
from ddat_jax.train.objectives import (
    LOSSES,
    SCORES,
    Objective,
    Score,
    Term,
    heads_objective,
)

N, T = 3, 9


def frames(seed=0, d=2, n=N):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(n, T, d)).astype(np.float32)
    target = (0.6 * pred + 0.4 * rng.normal(size=(n, T, d))).astype(np.float32)
    mask = np.ones((n, T), bool)
    mask[0, T - 3 :] = False
    pred[0, T - 3 :] = np.nan  # padded frames may hold anything
    return pred, target, mask


def np_ccc(p, t):
    p, t = p.astype(np.float64), t.astype(np.float64)
    cov = np.mean((p - p.mean()) * (t - t.mean()))
    return 2 * cov / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)


def np_pcc(p, t):
    return np.corrcoef(p.astype(np.float64), t.astype(np.float64))[0, 1]


def per_dim(fn, pred, target, mask):
    return np.array([fn(pred[..., d][mask], target[..., d][mask]) for d in range(pred.shape[-1])])


def test_mse_ccc_pcc_terms_match_numpy():
    pred, target, mask = frames()
    m = mask
    ref_mse = np.mean((pred[m].astype(np.float64) - target[m]) ** 2)
    np.testing.assert_allclose(LOSSES["mse"](pred, target, mask), ref_mse, rtol=1e-5)
    ref_ccc = np.mean(1 - per_dim(np_ccc, pred, target, mask))
    np.testing.assert_allclose(LOSSES["ccc"](pred, target, mask), ref_ccc, rtol=1e-5)
    ref_pcc = np.mean(1 - per_dim(np_pcc, pred, target, mask))
    np.testing.assert_allclose(LOSSES["pcc"](pred, target, mask), ref_pcc, rtol=1e-5)


def test_xent_integer_and_one_hot_targets():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(N, T, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(N, T)).astype(np.int32)
    _, _, mask = frames()
    z = logits.astype(np.float64)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ref = -np.mean(np.take_along_axis(logp, labels[..., None], -1)[..., 0][mask])
    np.testing.assert_allclose(LOSSES["xent"](logits, labels, mask), ref, rtol=1e-5)
    one_hot = np.eye(4, dtype=np.float32)[labels]
    np.testing.assert_allclose(LOSSES["xent"](logits, one_hot, mask), ref, rtol=1e-5)


def np_dcca(a, b, top_k, r1, r2):
    a = a - a.mean(0)
    b = b - b.mean(0)
    m = a.shape[0]
    saa = a.T @ a / (m - 1) + r1 * np.eye(a.shape[1])
    sbb = b.T @ b / (m - 1) + r2 * np.eye(b.shape[1])
    sab = a.T @ b / (m - 1)

    def inv_sqrt(s):
        w, v = np.linalg.eigh(s)
        return v @ np.diag(w**-0.5) @ v.T

    sv = np.linalg.svd(inv_sqrt(saa) @ sab @ inv_sqrt(sbb), compute_uv=False)
    return -np.sum(sv[:top_k])


@pytest.mark.skipif(
    "where" not in inspect.signature(losses.dcca_loss).parameters,
    reason="ddat_jax.losses.dcca_loss has no where= yet (issue 13)",
)
def test_dcca_term_between_two_outputs():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(N, T, 3)).astype(np.float32)
    b = (a[..., :2] @ rng.normal(size=(2, 2)) + 0.3 * rng.normal(size=(N, T, 2))).astype(np.float32)
    _, _, mask = frames()
    objective = Objective(
        (Term("dcca", "latent_a", "outputs/latent_b", options=(("top_k", 2),)),),
        Score("neg_mse", output="latent_b", target="targets/latent"),
    )
    total, terms = objective.loss(
        {"latent_a": a, "latent_b": b}, {"mask": mask, "targets": {}}, {"loss_weights": {}}
    )
    ref = np_dcca(a[mask].astype(np.float64), b[mask].astype(np.float64), 2, 1e-3, 1e-3)
    np.testing.assert_allclose(terms["latent_a"], ref, rtol=1e-4)
    np.testing.assert_allclose(total, ref, rtol=1e-4)


def test_scores_match_numpy():
    pred, target, mask = frames(d=3)
    out, batch = {"y": pred}, {"mask": mask, "targets": {"y": target}}
    per = per_dim(np_ccc, pred, target, mask)
    value = lambda kind, dims: float(Score(kind, "y", "targets/y", dims).value(out, batch))
    np.testing.assert_allclose(value("ccc", (1,)), per[1], rtol=1e-5)
    np.testing.assert_allclose(value("mean_ccc", (0, 2)), np.mean(per[[0, 2]]), rtol=1e-5)
    np.testing.assert_allclose(value("mean_ccc", ()), np.mean(per), rtol=1e-5)
    ref_mse = np.mean((pred[mask].astype(np.float64) - target[mask]) ** 2)
    np.testing.assert_allclose(value("neg_mse", ()), -ref_mse, rtol=1e-5)


def test_macro_f1_matches_metrics():
    from ddat_jax import metrics

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(N, T, 5)).astype(np.float32)
    labels = rng.integers(0, 3, size=(N, T)).astype(np.int32)  # classes 3, 4 never true
    _, _, mask = frames()
    ref = metrics.macro_f1(np.argmax(logits, -1)[mask], labels[mask])
    got = Score("macro_f1", "c", "targets/c").value(
        {"c": logits}, {"mask": mask, "targets": {"c": labels}}
    )
    np.testing.assert_allclose(float(got), ref, rtol=1e-6)


def test_objective_weights_terms_and_is_jittable():
    pred, target, mask = frames()
    objective = heads_objective({"emotion": "ccc", "pu": "mse"})
    assert objective.term_names == ("emotion", "pu")
    assert objective.weight_keys == ("emotion", "pu")
    assert objective.train_targets == ("emotion", "pu")
    outputs = {"emotion": pred, "pu": pred[..., :1]}
    batch = {"mask": mask, "targets": {"emotion": target, "pu": target[..., :1]}}
    hp = {"loss_weights": {"emotion": jnp.float32(0.5)}}  # pu: 1.0 by default
    total, terms = jax.jit(objective.loss)(outputs, batch, hp)
    np.testing.assert_allclose(total, 0.5 * terms["emotion"] + terms["pu"], rtol=1e-6)
    np.testing.assert_allclose(terms["pu"], LOSSES["mse"](pred[..., :1], target[..., :1], mask))
    hash(objective)  # static argument of jit


def test_unknown_names_and_validation_errors():
    with pytest.raises(ValueError, match=r"Unknown loss 'l1'; valid: \['ccc', 'dcca'"):
        Term("l1", "emotion", "targets/emotion")
    with pytest.raises(ValueError, match="Unknown score 'auc'; valid"):
        Score("auc")
    with pytest.raises(ValueError, match="targets/<name>' or 'outputs/<name>"):
        Term("mse", "emotion", "emotion")
    assert set(SCORES) == {"ccc", "mean_ccc", "macro_f1", "neg_mse"}
    assert set(LOSSES) == {"mse", "ccc", "pcc", "xent", "dcca"}
    shape = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
    outs = {"emotion": shape(1, T, 1), "latent": shape(1, T, 4)}
    targets = {"emotion": shape(N, T, 2)}
    objective = heads_objective({"emotion": "ccc"})
    with pytest.raises(ValueError, match=r"per-frame shape \(1,\) but target"):
        objective.validate(outs, targets)
    with pytest.raises(ValueError, match="no data target 'emotion'"):
        objective.validate(outs, {})
    with pytest.raises(ValueError, match="dev data has no target"):
        objective.validate(outs, {"emotion": shape(N, T, 1)}, dev_targets={})
    bad = Objective((Term("mse", "missing", "targets/emotion"),))
    with pytest.raises(ValueError, match="'missing' is not a model output"):
        bad.validate(outs, targets)
    xent = Objective((Term("xent", "latent", "targets/emotion"),))
    with pytest.raises(ValueError, match="class targets must be integers"):
        xent.validate(outs, {"emotion": shape(N, T)})
