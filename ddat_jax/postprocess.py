"""Post-processing of time-continuous predictions: median filter → centring → scaling → shift.

The chain is the one of the official AVEC 2016 MASC baseline (``predpostproc_train.m``,
``predpostproc_test.m`` and the delay handling of ``final_unimodal_pred.m`` / ``add_gs.m``;
the AVEC 2016 baseline scripts) with the search grids of the DDAT paper
(Zhang et al., "Dynamic Difficulty Awareness Training", Sec. IV: "median filtering,
centering, scaling, and time-shifting … window size W (0.12 s to 0.44 s at a rate of
0.08 s) and the time-shifting delay D (0.04 s to 0.60 s at a step of 0.04 s) … optimised
on the development set and then applied to the test set").

Data layout: a partition is a ``list`` of per-recording 1-D arrays ``[T_i]`` (lengths may
differ). Every CCC is **one CCC over the concatenation** of the partition's recordings
(the AVEC 2016 scoring rule), with population statistics unless ``ccc_fn`` says otherwise.

Steps, each fitted on dev and **kept only if it raises the dev CCC** (strictly):

1. **Median filter** with MATLAB ``medfilt1`` semantics (:func:`median_filter_matlab`):
   per recording (default) or over the concatenated partition (``per_recording=False``,
   the AVEC baseline, which ignores recording boundaries). Stored: window in frames, 0 = off.
2. **Centring**: ``bias = mean(gold) − mean(pred)`` over the concatenated partition;
   ``pred ← pred + bias``. Stored: bias, 0 = off.
3. **Scaling**: ``scale = std(gold) / std(pred)``; ``pred ← pred · scale`` — about **zero**,
   not about the mean, so the mean is rescaled too. Stored: scale, 1 = off.
4. **Time shift** forward by ``d`` frames, per recording (:func:`shift_forward`):
   ``out[t] = pred[t − d]`` for ``t ≥ d`` and ``out[t] = pred[0]`` for ``t < d`` (the first
   value repeated, the last ``d`` values dropped). Direction: a positive shift **delays**
   the prediction. It corrects predictions that run *ahead* of the gold standard, e.g.
   ``pred[t] = gold[t + k]`` is fixed by ``shift = k``; this is what a model trained on a
   gold standard shifted back by an annotation delay produces. Stored: frames, 0 = off.

On test, :func:`apply_postprocess` applies the stored parameters in the same order; the
default values are identities, so "apply only non-default parameters" and "apply all" agree.

Two searches (``grids=``):

* ``"ddat"`` (:class:`DDATGrid`, default): every window of the grid is tried and the best
  one is kept if it beats the unfiltered CCC; centring; scaling; every shift of the grid
  is tried and the best one kept if it beats the CCC so far.
* ``"avec2016"`` (:class:`AVEC2016Search`): the window search of ``predpostproc_train.m``
  (windows round(k·Nw/3), k = 1, 2, 3, Nw = 500 frames; a filter is used only if it beats
  the raw CCC by more than 2 % relative; then bisection between the two best windows) and
  the delay handling of B1: for each delay ``d`` in 0:0.4:8 s the gold standard is shifted
  **back** by ``d`` frames per recording (:func:`shift_back`, last value repeated), the
  median/centring/scaling chain is fitted against that delayed gold, and the delay search
  stops after 3 delays without improvement. The best delay becomes the forward shift of
  the predictions, which is then always applied (as in ``final_unimodal_pred.m``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from ddat_jax import metrics

__all__ = [
    "GRIDS",
    "AVEC2016Search",
    "DDATGrid",
    "PostProcessParams",
    "apply_postprocess",
    "fit_postprocess",
    "median_filter_matlab",
    "shift_back",
    "shift_forward",
]

CCCFn = Callable[[np.ndarray, np.ndarray], float]


# --------------------------------------------------------------------------------------
# Search grids
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DDATGrid:
    """Exhaustive grids of the DDAT paper (Sec. IV, post-processing).

    Attributes:
        windows_s: median-filter windows in seconds (converted to frames with
            ``round(w / frame_period)``): 0.12 … 0.44 s in 0.08 s steps = 3, 5, …, 11 frames.
        shifts_s: forward time shifts in seconds: 0.04 … 0.60 s in 0.04 s steps = 1 … 15
            frames.
    """

    windows_s: tuple[float, ...] = (0.12, 0.20, 0.28, 0.36, 0.44)
    shifts_s: tuple[float, ...] = tuple(round(0.04 * k, 2) for k in range(1, 16))


@dataclass(frozen=True)
class AVEC2016Search:
    """Window bisection and delay search of the official AVEC 2016 MATLAB baseline.

    Attributes:
        max_window_s: ``Nw`` of ``predpostproc_train.m`` in seconds (500 frames = 20 s).
        min_rel_gain: relative CCC gain a filter (or a bisection midpoint) must exceed to be
            used (``perc_impr = 2`` %).
        delays_s: gold-standard delays tried (``0:0.4:8`` s in ``liblinear_pred.m``).
        patience: the delay search stops after this many delays in a row whose score is
            below the best of the previous ones (``earlystop = 3``).
    """

    max_window_s: float = 20.0
    min_rel_gain: float = 0.02
    delays_s: tuple[float, ...] = tuple(round(0.4 * k, 1) for k in range(21))
    patience: int = 3


GRIDS: dict[str, DDATGrid | AVEC2016Search] = {
    "ddat": DDATGrid(),
    "avec2016": AVEC2016Search(),
}


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostProcessParams:
    """Fitted post-processing parameters (identity values mean "step not used").

    Attributes:
        window: median-filter window in frames; 0 (or 1) = no filter.
        bias: added after filtering; 0 = no centring.
        scale: multiplies (about zero) after centring; 1 = no scaling.
        shift: forward shift in frames, per recording (see :func:`shift_forward`); 0 = none.
        per_recording: whether the median filter runs per recording (``True``) or over the
            concatenated partition (``False``, AVEC baseline).
    """

    window: int = 0
    bias: float = 0.0
    scale: float = 1.0
    shift: int = 0
    per_recording: bool = True

    def __post_init__(self):
        for name in ("window", "shift"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"PostProcessParams.{name} must be an int >= 0, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("bias", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ValueError(f"PostProcessParams.{name} must be a float, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"PostProcessParams.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.per_recording, bool | np.bool_):
            raise ValueError(
                f"PostProcessParams.per_recording must be a bool, got {self.per_recording!r}"
            )
        object.__setattr__(self, "per_recording", bool(self.per_recording))

    def to_dict(self) -> dict:
        """Returns a JSON-serialisable dict (plain ``int``/``float``/``bool``)."""
        return {
            "window": self.window,
            "bias": self.bias,
            "scale": self.scale,
            "shift": self.shift,
            "per_recording": self.per_recording,
        }

    @classmethod
    def from_dict(cls, d: dict) -> PostProcessParams:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ``ValueError``."""
        expected = {"window", "bias", "scale", "shift", "per_recording"}
        keys = set(d)
        if keys != expected:
            raise ValueError(
                f"PostProcessParams.from_dict expects keys {sorted(expected)}; "
                f"missing {sorted(expected - keys)}, unknown {sorted(keys - expected)}"
            )
        return cls(**d)


# --------------------------------------------------------------------------------------
# Elementary operations
# --------------------------------------------------------------------------------------


def _round_half_up(x: float) -> int:
    """MATLAB ``round`` for non-negative values (halves go up; numpy rounds them to even)."""
    return int(math.floor(x + 0.5))


def median_filter_matlab(x: np.ndarray, n: int) -> np.ndarray:
    """One-dimensional median filter with MATLAB ``medfilt1(x, n)`` semantics.

    ``y[k] = median(x[k − n//2], …, x[k − n//2 + n − 1])`` with zeros outside ``x``; i.e.
    ``x(k−(n−1)/2 … k+(n−1)/2)`` for odd ``n`` and ``x(k−n/2 … k+n/2−1)`` for even ``n``
    (MathWorks ``medfilt1`` documentation, default ``'zeropad'``). The median of an even
    count is the mean of the two middle values.

    Args:
        x: ``[T]`` signal (finite).
        n: window length in frames; ``n <= 1`` returns a copy of ``x``.

    Returns:
        ``[T]`` float64 filtered signal.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"median_filter_matlab expects a 1-D array, got shape {x.shape}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"median window must be an int >= 0 (frames), got {n!r}")
    n = int(n)
    if n <= 1 or x.size == 0:
        return x.copy()
    # scipy's window for size n and origin 0 covers x[k - n//2 … k - n//2 + n - 1], which is
    # exactly medfilt1's for both parities; mode="constant" with cval=0 is the zero padding.
    # An even count needs the mean of two order statistics, so use two rank filters.
    kwargs = {"size": n, "mode": "constant", "cval": 0.0}
    if n % 2:
        return scipy.ndimage.median_filter(x, **kwargs)
    lo = scipy.ndimage.rank_filter(x, rank=n // 2 - 1, **kwargs)
    hi = scipy.ndimage.rank_filter(x, rank=n // 2, **kwargs)
    return 0.5 * (lo + hi)


def _check_frames(d, what: str) -> int:
    if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
        raise ValueError(f"{what} must be an int >= 0 (frames), got {d!r}")
    return int(d)


def shift_forward(x: np.ndarray, d: int) -> np.ndarray:
    """Delays ``x`` by ``d`` frames: the first value repeated ``d`` times, the last ``d`` dropped.

    ``out[t] = x[max(t − d, 0)]`` (``final_unimodal_pred.m``).

    Args:
        x: ``[T]`` signal.
        d: shift in frames, ``>= 0``; ``d >= T`` gives ``x[0]`` everywhere.

    Returns:
        ``[T]`` shifted copy.
    """
    x = np.asarray(x)
    d = _check_frames(d, "shift")
    if x.ndim != 1:
        raise ValueError(f"shift_forward expects a 1-D array, got shape {x.shape}")
    if x.size == 0:
        return x.copy()
    idx = np.maximum(np.arange(x.size) - d, 0)
    return x[idx]


def shift_back(x: np.ndarray, d: int) -> np.ndarray:
    """Advances ``x`` by ``d`` frames: the first ``d`` dropped, the last value repeated ``d`` times.

    ``out[t] = x[min(t + d, T − 1)]`` — the AVEC 2016 gold-standard delay (``add_gs.m``);
    :func:`ddat_jax.data.preprocess.shift_back` for a 1-D signal.

    Args:
        x: ``[T]`` signal.
        d: shift in frames, ``>= 0``; ``d >= T`` gives ``x[T − 1]`` everywhere.

    Returns:
        ``[T]`` shifted copy.
    """
    x = np.asarray(x)
    d = _check_frames(d, "shift")
    if x.ndim != 1:
        raise ValueError(f"shift_back expects a 1-D array, got shape {x.shape}")
    from ddat_jax.data import preprocess

    return preprocess.shift_back(x, d)


def _default_ccc(pred: np.ndarray, gold: np.ndarray) -> float:
    """One CCC over the concatenation, population statistics (:func:`ddat_jax.metrics.ccc`)."""
    return metrics.ccc(pred, gold)


def _rel_gain(new: float, old: float) -> float:
    """Relative gain ``(new − old) / |old|`` of ``predpostproc_train.m``.

    MATLAB divides by ``old`` itself, which flips the sign for a negative CCC; ``|old|``
    keeps "larger is better" there. ``old = 0`` gives ±inf (or 0 when ``new = 0``).
    """
    if old == 0.0:
        return math.inf if new > 0.0 else (-math.inf if new < 0.0 else 0.0)
    return (new - old) / abs(old)


# --------------------------------------------------------------------------------------
# Validation and partition helpers
# --------------------------------------------------------------------------------------


def _as_partition(xs, name: str) -> list[np.ndarray]:
    if isinstance(xs, np.ndarray):
        raise ValueError(
            f"{name} must be a list of per-recording 1-D arrays, got one array of shape "
            f"{xs.shape}; wrap a single recording as [array]"
        )
    try:
        xs = list(xs)
    except TypeError as err:
        raise ValueError(f"{name} must be a list of per-recording 1-D arrays") from err
    if not xs:
        raise ValueError(f"{name} is empty; expected at least one recording")
    out = []
    for i, x in enumerate(xs):
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"{name}[{i}] must be 1-D [T], got shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{name}[{i}] is empty")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}[{i}] contains NaN or Inf")
        out.append(a)
    return out


def _check_paired(preds: list[np.ndarray], golds: list[np.ndarray]) -> None:
    if len(preds) != len(golds):
        raise ValueError(
            f"preds has {len(preds)} recordings but golds has {len(golds)}; expected the same"
        )
    for i, (p, g) in enumerate(zip(preds, golds, strict=True)):
        if p.size != g.size:
            raise ValueError(
                f"recording {i}: preds has {p.size} frames but golds has {g.size}; "
                "expected equal lengths"
            )


def _median_partition(xs: list[np.ndarray], n: int, per_recording: bool) -> list[np.ndarray]:
    if n <= 1:
        return [x.copy() for x in xs]
    if per_recording:
        return [median_filter_matlab(x, n) for x in xs]
    filtered = median_filter_matlab(np.concatenate(xs), n)
    return np.split(filtered, np.cumsum([x.size for x in xs])[:-1])


def _shift_partition(xs: list[np.ndarray], d: int) -> list[np.ndarray]:
    return [shift_forward(x, d) for x in xs]


def _resolve_grid(grids) -> DDATGrid | AVEC2016Search:
    if isinstance(grids, DDATGrid | AVEC2016Search):
        return grids
    if isinstance(grids, str) and grids in GRIDS:
        return GRIDS[grids]
    raise ValueError(
        f"unknown grids {grids!r}; valid names: {sorted(GRIDS)} "
        "(or pass a DDATGrid / AVEC2016Search instance)"
    )


def _seconds_to_frames(values: Sequence[float], frame_period: float, what: str) -> list[int]:
    frames = []
    for v in values:
        if not (isinstance(v, int | float | np.number) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{what} must be finite seconds >= 0, got {v!r}")
        frames.append(_round_half_up(v / frame_period))
    # Keep the grid order (ties go to the earliest) but drop duplicates.
    return list(dict.fromkeys(frames))


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------


def _undefined_to_nan(v):
    if isinstance(v, dict):
        return {k: _undefined_to_nan(x) for k, x in v.items()}
    return math.nan if v == -math.inf else v


class _Chain:
    """Median → centre → scale on one set of predictions, with the filtered preds cached."""

    def __init__(self, preds, per_recording, ccc_fn):
        self.preds = preds
        self.per_recording = per_recording
        self.ccc_fn = ccc_fn
        self._filtered: dict[int, list[np.ndarray]] = {}

    def filtered(self, n: int) -> list[np.ndarray]:
        n = 0 if n <= 1 else n
        if n not in self._filtered:
            self._filtered[n] = _median_partition(self.preds, n, self.per_recording)
        return self._filtered[n]

    def ccc(self, xs: list[np.ndarray], gold_cat: np.ndarray) -> float:
        # An undefined score (NaN, e.g. a constant prediction equal to a constant gold) is
        # ranked below every defined one, so it never wins a comparison.
        value = float(self.ccc_fn(np.concatenate(xs), gold_cat))
        return -math.inf if math.isnan(value) else value

    def window_ddat(self, windows: list[int], gold_cat) -> tuple[int, float]:
        best_w, best_c = 0, self.ccc(self.preds, gold_cat)
        scores = [(w, self.ccc(self.filtered(w), gold_cat)) for w in windows]
        if scores:
            w, c = max(scores, key=lambda wc: wc[1])  # first of equal maxima
            if c > best_c:
                best_w, best_c = w, c
        return best_w, best_c

    def window_avec(self, nw: int, min_gain: float, gold_cat) -> tuple[int, float]:
        """``predpostproc_train.m``'s window search ("filter by dichotomy").

        Returns the stored window and the CCC after filtering. MATLAB's script, when the
        loop stops right after the first accepted midpoint, stores that midpoint as the
        window but carries on with the predictions of the previous best window; here the
        predictions always match the stored window.
        """

        def score(w):
            return self.ccc(self.filtered(w), gold_cat)

        raw = score(0)
        cand_w = [0] + [_round_half_up(k * nw / 3) for k in (1, 2, 3)]
        cand_v = [raw] + [score(w) for w in cand_w[1:]]
        # MATLAB's sort(…, 'descend') is stable: equal values keep their order.
        order = sorted(range(4), key=lambda i: -cand_v[i])
        best, second = order[0], order[1]
        if best == 0 or not _rel_gain(cand_v[best], raw) > min_gain:
            return 0, raw
        tw = [cand_w[best], _round_half_up((cand_w[best] + cand_w[second]) / 2), cand_w[second]]
        tv = [cand_v[best], score(tw[1]), cand_v[second]]
        while _rel_gain(tv[1], max(tv[0], tv[2])) > min_gain:
            order = sorted(range(3), key=lambda i: -tv[i])
            b, s = order[0], order[1]
            tw = [tw[b], _round_half_up((tw[b] + tw[s]) / 2), tw[s]]
            tv = [tv[b], score(tw[1]), tv[s]]
        if _rel_gain(tv[1], max(tv[0], tv[2])) > 0:
            return tw[1], tv[1]
        return tw[0], tv[0]

    def fit(self, gold_cat, window_search) -> tuple[int, float, float, list, dict]:
        """Runs median → centre → scale against ``gold_cat``; returns params, preds, CCCs."""
        history = {"raw": self.ccc(self.preds, gold_cat)}
        window, best = window_search(gold_cat)
        pred = self.filtered(window)
        history["median"] = best

        bias = float(gold_cat.mean() - np.concatenate(pred).mean())
        centred = [p + bias for p in pred]
        c = self.ccc(centred, gold_cat)
        if c > best:
            pred, best = centred, c
        else:
            bias = 0.0
        history["centre"] = best

        scale = 1.0
        sd_pred = float(np.concatenate(pred).std())
        if sd_pred > 0.0:  # a constant prediction cannot be scaled to the gold's spread
            cand_scale = float(gold_cat.std()) / sd_pred
            scaled = [p * cand_scale for p in pred]
            c = self.ccc(scaled, gold_cat)
            if c > best:
                pred, best, scale = scaled, c, cand_scale
        history["scale"] = best
        return window, bias, scale, pred, history


def fit_postprocess(
    preds: Sequence[np.ndarray],
    golds: Sequence[np.ndarray],
    *,
    frame_period: float = 0.04,
    grids: str | DDATGrid | AVEC2016Search = "ddat",
    per_recording: bool = True,
    ccc_fn: CCCFn | None = None,
    return_history: bool = False,
) -> PostProcessParams | tuple[PostProcessParams, dict]:
    """Fits median filter → centring → scaling → shift on a (dev) partition.

    Args:
        preds: per-recording predictions, a list of ``[T_i]`` arrays.
        golds: per-recording gold standard, same count and lengths as ``preds``.
        frame_period: seconds per frame (0.04 s for RECOLA/AVEC 2016); converts the grids.
        grids: ``"ddat"`` (default), ``"avec2016"``, or a :class:`DDATGrid` /
            :class:`AVEC2016Search` with custom values (see the module docstring).
        per_recording: median filter per recording (default) or over the concatenated
            partition with zero padding at the two global ends only (AVEC baseline). The
            shift is always per recording.
        ccc_fn: ``ccc_fn(pred_concat, gold_concat) -> float``, the score every step must
            raise; default: :func:`ddat_jax.metrics.ccc` (population statistics) over the
            concatenation. For the official ``CCC_calc.m`` normalisation pass
            ``functools.partial(metrics.ccc, matlab_compatible=True)``. A NaN score
            (undefined CCC) never counts as an improvement.
        return_history: also return the dev CCC after each step.

    Returns:
        The fitted :class:`PostProcessParams`; with ``return_history``, also a dict with the
        dev CCCs ``raw``, ``median``, ``centre``, ``scale`` (for ``"avec2016"`` these are
        against the delayed gold at the chosen delay) and ``final`` (after the shift,
        against the given gold); ``"avec2016"`` adds ``delay_scores``
        ``{delay_frames: CCC}`` for the delays tried.
    """
    preds = _as_partition(preds, "preds")
    golds = _as_partition(golds, "golds")
    _check_paired(preds, golds)
    if not (isinstance(frame_period, int | float) and frame_period > 0):
        raise ValueError(f"frame_period must be a positive number of seconds, got {frame_period}")
    grid = _resolve_grid(grids)
    ccc_fn = _default_ccc if ccc_fn is None else ccc_fn
    chain = _Chain(preds, bool(per_recording), ccc_fn)
    gold_cat = np.concatenate(golds)

    if isinstance(grid, DDATGrid):
        windows = _seconds_to_frames(grid.windows_s, frame_period, "DDATGrid.windows_s")
        shifts = _seconds_to_frames(grid.shifts_s, frame_period, "DDATGrid.shifts_s")
        window, bias, scale, pred, history = chain.fit(
            gold_cat, lambda g: chain.window_ddat(windows, g)
        )
        best, shift = history["scale"], 0
        scores = [(d, chain.ccc(_shift_partition(pred, d), gold_cat)) for d in shifts if d > 0]
        if scores:
            d, c = max(scores, key=lambda dc: dc[1])
            if c > best:
                best, shift = c, d
        history["final"] = best
    else:
        if not 0.0 <= grid.min_rel_gain:
            raise ValueError(f"min_rel_gain must be >= 0, got {grid.min_rel_gain}")
        if grid.patience < 1:
            raise ValueError(f"patience must be >= 1, got {grid.patience}")
        nw = _round_half_up(grid.max_window_s / frame_period)
        if nw < 3:
            raise ValueError(f"max_window_s must be at least 3 frames, got {nw} frames")
        delays = _seconds_to_frames(grid.delays_s, frame_period, "AVEC2016Search.delays_s")
        if not delays:
            raise ValueError("AVEC2016Search.delays_s is empty")
        fits, delay_scores = {}, {}
        no_improvement = 0
        for i, d in enumerate(delays):
            delayed = np.concatenate([shift_back(g, d) for g in golds])
            fits[d] = chain.fit(delayed, lambda g: chain.window_avec(nw, grid.min_rel_gain, g))
            delay_scores[d] = fits[d][4]["scale"]
            # liblinear_pred.m: a delay "improves" unless its score is below the best before.
            if i > 0 and delay_scores[d] < max(delay_scores[e] for e in delays[:i]):
                no_improvement += 1
            else:
                no_improvement = 0
            if no_improvement == grid.patience:
                break
        shift = max(delay_scores, key=delay_scores.get)  # first of equal maxima
        window, bias, scale, pred, history = fits[shift]
        history = dict(history)
        history["final"] = chain.ccc(_shift_partition(pred, shift), gold_cat)
        history["delay_scores"] = delay_scores

    history = {k: _undefined_to_nan(v) for k, v in history.items()}
    params = PostProcessParams(
        window=window, bias=bias, scale=scale, shift=shift, per_recording=bool(per_recording)
    )
    return (params, history) if return_history else params


def apply_postprocess(
    preds: Sequence[np.ndarray],
    params: PostProcessParams,
    *,
    per_recording: bool | None = None,
) -> list[np.ndarray]:
    """Applies fitted parameters (e.g. to test): median → + bias → × scale → forward shift.

    Args:
        preds: per-recording predictions, a list of ``[T_i]`` arrays.
        params: the output of :func:`fit_postprocess`.
        per_recording: overrides ``params.per_recording`` for the median filter (``None``
            keeps the fitted setting).

    Returns:
        A list of ``[T_i]`` float64 arrays.
    """
    preds = _as_partition(preds, "preds")
    if not isinstance(params, PostProcessParams):
        raise ValueError(f"params must be a PostProcessParams, got {type(params).__name__}")
    per_rec = params.per_recording if per_recording is None else bool(per_recording)
    out = _median_partition(preds, params.window, per_rec)
    if params.bias != 0.0:
        out = [p + params.bias for p in out]
    if params.scale != 1.0:
        out = [p * params.scale for p in out]
    if params.shift > 0:
        out = _shift_partition(out, params.shift)
    return out
