"""Classification scores: macro-F1, accuracy, a paired bootstrap over utterances, and a
multinomial logistic-regression baseline (the OMG preset's calibration).

Shapes: class predictions and gold are integer arrays ``[U]`` (one value per utterance);
``num_classes`` fixes the class set.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from ddat_jax import metrics


def _check(pred, gold) -> tuple[np.ndarray, np.ndarray]:
    pred, gold = np.asarray(pred).astype(int).ravel(), np.asarray(gold).astype(int).ravel()
    if pred.shape != gold.shape or pred.size == 0:
        raise ValueError(f"pred {pred.shape} and gold {gold.shape} must be equal, non-empty")
    return pred, gold


def macro_f1(pred, gold, num_classes: int) -> float:
    """Macro-F1 over the classes ``0 … num_classes − 1`` present in ``gold`` or ``pred``
    (scikit-learn's default): :func:`ddat_jax.metrics.macro_f1` on those classes."""
    pred, gold = _check(pred, gold)
    present = np.union1d(pred, gold)
    classes = present[(present >= 0) & (present < num_classes)]
    return metrics.macro_f1(pred, gold, labels=classes) if classes.size else 0.0


def accuracy(pred, gold) -> float:
    """Share of correct classes (:func:`ddat_jax.metrics.accuracy`)."""
    return metrics.accuracy(*_check(pred, gold))


def bootstrap_difference(
    pred_a, pred_b, gold, num_classes: int, *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Paired bootstrap over utterances of ``F1(a) − F1(b)``.

    Returns:
      ``{"delta": observed difference, "ci_low", "ci_high": 95 % percentile interval,
      "p_one_sided": share of resamples with difference <= 0}``.
    """
    pred_a, gold = _check(pred_a, gold)
    pred_b, _ = _check(pred_b, gold)
    rng = np.random.default_rng(seed)
    n = gold.size
    deltas = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, n, n)
        deltas[i] = macro_f1(pred_a[idx], gold[idx], num_classes) - macro_f1(
            pred_b[idx], gold[idx], num_classes
        )
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return {
        "delta": macro_f1(pred_a, gold, num_classes) - macro_f1(pred_b, gold, num_classes),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p_one_sided": float((np.sum(deltas <= 0) + 1) / (n_resamples + 1)),
    }


def logistic_regression(x, y, num_classes: int, *, l2: float = 1.0) -> np.ndarray:
    """Multinomial logistic regression (L-BFGS, ``l2 · ‖W‖²``) → weights ``[F + 1, C]``.

    ``x [U, F]`` (standardise it first), ``y [U]`` integer classes.
    """
    x = np.column_stack([np.asarray(x, np.float64), np.ones(len(x))])
    onehot = np.eye(num_classes)[np.asarray(y, int)]
    shape = (x.shape[1], num_classes)

    def loss(w):
        w = w.reshape(shape)
        logits = x @ w
        logits = logits - logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        reg = l2 * np.sum(w[:-1] ** 2)
        grad = x.T @ (np.exp(logp) - onehot) / len(x)
        grad[:-1] += 2 * l2 * w[:-1]
        return -np.mean(np.sum(onehot * logp, axis=1)) + reg, grad.ravel()

    res = optimize.minimize(loss, np.zeros(np.prod(shape)), jac=True, method="L-BFGS-B")
    return res.x.reshape(shape)


def predict_logistic(w: np.ndarray, x) -> np.ndarray:
    """Classes ``[U]`` of :func:`logistic_regression` weights on ``x [U, F]``."""
    return np.argmax(np.column_stack([np.asarray(x), np.ones(len(x))]) @ w, axis=1)
