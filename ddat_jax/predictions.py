"""Typed predictions of an experiment: per system, partition and recording; validated once.

The evaluation layer (:mod:`ddat_jax.evaluation`) reads nothing else. Three frozen
dataclasses, host-side NumPy (float64, read-only arrays):

* :class:`RecordingPrediction` -- one recording of one system: ``pred [T, D]``,
  ``pred_pp [T, D]`` (post-processed; equal to ``pred`` when not post-processed),
  ``gold [T, D]`` or None (labels withheld, e.g. AVEC test), ``extras`` (per-frame signals
  ``[T]`` or ``[T, k]``, e.g. ``"difficulty"``, ``"pu"``).
* :class:`SystemPredictions` -- one table row: its label, the dimension names (``D`` of
  them), partition → recordings, and free-form ``info`` (dev score, seeds, seconds, …).
* :class:`Predictions` -- the systems in table order and the frame period. Its
  ``__post_init__`` is the one place that checks that every system has the same
  recordings (names, order, lengths) on each partition it has, the same dims and the same
  gold standard, so table functions need no checks of their own.

Files: :func:`write_predictions` writes one CSV per system × partition × recording plus a
``predictions.json`` manifest; :func:`read_predictions` reads them back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ddat_jax import atomic

__all__ = [
    "FIELDS",
    "MANIFEST",
    "Predictions",
    "RecordingPrediction",
    "SystemPredictions",
    "check_file_stem",
    "read_predictions",
    "slugify",
    "write_predictions",
]

FIELDS = ("pred", "pred_pp", "gold")
MANIFEST = "predictions.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.flags.writeable = False
    return a


def _as_2d(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} must be [T] or [T, D] with T, D >= 1, got shape {a.shape}")
    return _frozen(a)


# --------------------------------------------------------------------------- the types


@dataclasses.dataclass(frozen=True, eq=False)
class RecordingPrediction:
    """One recording of one system.

    Attributes:
      name: recording name, e.g. ``"dev_1"``.
      pred: model predictions ``[T, D]`` (a ``[T]`` input becomes ``[T, 1]``); finite.
      pred_pp: post-processed predictions ``[T, D]``; None on input means ``pred``.
      gold: gold standard ``[T, D]``, or None where labels are withheld; finite.
      extras: per-frame signals, name → ``[T]`` or ``[T, k]`` (shape kept as given).
    """

    name: str
    pred: np.ndarray
    pred_pp: np.ndarray | None = None
    gold: np.ndarray | None = None
    extras: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        name = str(self.name)
        if not name:
            raise ValueError("recording name must be non-empty")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("name", name)
        pred = _as_2d(self.pred, f"recording {name!r}: pred")
        set_("pred", pred)
        pp = pred if self.pred_pp is None else _as_2d(self.pred_pp, f"recording {name!r}: pred_pp")
        set_("pred_pp", pp)
        gold = None if self.gold is None else _as_2d(self.gold, f"recording {name!r}: gold")
        set_("gold", gold)
        for key, a in (("pred", pred), ("pred_pp", pp), ("gold", gold)):
            if a is None:
                continue
            if a.shape != pred.shape:
                raise ValueError(
                    f"recording {name!r}: {key} has shape {a.shape} but pred {pred.shape}"
                )
            if not np.all(np.isfinite(a)):
                bad = int(np.argmax(~np.isfinite(a).all(axis=1)))
                raise ValueError(f"recording {name!r}: {key} is not finite (frame {bad})")
        set_("extras", MappingProxyType(self._checked_extras(name, pred.shape[0])))

    def _checked_extras(self, name: str, t: int) -> dict[str, np.ndarray]:
        if not isinstance(self.extras, Mapping):
            raise ValueError(f"recording {name!r}: extras must be a dict name -> array")
        out = {}
        for key, x in self.extras.items():
            a = np.asarray(x, dtype=np.float64)
            if a.ndim not in (1, 2) or a.shape[0] != t:
                raise ValueError(
                    f"recording {name!r}: extras[{key!r}] must be [T={t}] or [T={t}, k], "
                    f"got shape {a.shape}"
                )
            out[str(key)] = _frozen(a)
        return out

    @property
    def num_frames(self) -> int:
        """``T``."""
        return int(self.pred.shape[0])

    def field(self, field: str) -> np.ndarray | None:
        """``pred``, ``pred_pp`` or ``gold`` (``[T, D]``) by name."""
        if field not in FIELDS:
            raise ValueError(f"unknown field {field!r}; valid: {', '.join(FIELDS)}")
        return getattr(self, field)


@dataclasses.dataclass(frozen=True, eq=False)
class SystemPredictions:
    """One system (table row): its predictions on every partition it was run on.

    Attributes:
      label: table row label, e.g. ``"DDAT-RE sum"``.
      dims: dimension names, one per column of ``pred`` (e.g. ``("arousal",)``).
      partitions: partition → recordings (tuple, corpus order); partitions in table order.
      info: free-form facts about the system (dev score, architecture, seconds, seeds).
    """

    label: str
    dims: tuple[str, ...]
    partitions: Mapping[str, tuple[RecordingPrediction, ...]]
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        label = str(self.label)
        if not label:
            raise ValueError("system label must be non-empty")
        dims = (self.dims,) if isinstance(self.dims, str) else tuple(str(d) for d in self.dims)
        if not dims or len(set(dims)) != len(dims):
            raise ValueError(f"system {label!r}: dims must be distinct names, got {dims}")
        if not isinstance(self.partitions, Mapping) or not self.partitions:
            raise ValueError(f"system {label!r}: partitions must be a non-empty dict")
        parts = {}
        for part, recs in self.partitions.items():
            recs = tuple(recs)
            parts[str(part)] = recs
            where = f"system {label!r}, partition {part!r}"
            if not recs:
                raise ValueError(f"{where}: no recordings")
            names = [r.name for r in recs]
            if len(set(names)) != len(names):
                raise ValueError(f"{where}: duplicate recording names {names}")
            for r in recs:
                if not isinstance(r, RecordingPrediction):
                    raise ValueError(f"{where}: expected RecordingPrediction, got {type(r)}")
                if r.pred.shape[1] != len(dims):
                    raise ValueError(
                        f"{where}, recording {r.name!r}: pred has {r.pred.shape[1]} columns "
                        f"but dims {dims} has {len(dims)}"
                    )
            if len({r.gold is None for r in recs}) != 1:
                raise ValueError(f"{where}: gold must be given for all recordings or none")
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "dims", dims)
        object.__setattr__(self, "partitions", MappingProxyType(parts))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info or {})))

    @classmethod
    def from_arrays(
        cls,
        label: str,
        dims: Sequence[str] | str,
        partitions: Mapping[str, Mapping[str, Any]],
        info: Mapping[str, Any] | None = None,
    ) -> SystemPredictions:
        """Builds a system from per-recording lists.

        Args:
          label: row label.
          dims: dimension names (``D``).
          partitions: partition → ``{"names": [str], "pred": [[T_r] or [T_r, D]],
            "pred_pp": [...] | None, "gold": [...] | None, "extras": {key: [[T_r] or
            [T_r, k]]}}``; a ``"difficulty"`` list is taken as ``extras["difficulty"]``.
          info: free-form facts about the system.
        """
        parts = {
            p: _recordings_from_lists(v, f"system {label!r}, partition {p!r}")
            for p, v in partitions.items()
        }
        return cls(label, tuple([dims] if isinstance(dims, str) else dims), parts, info or {})

    def names(self, partition: str) -> tuple[str, ...]:
        """Recording names of ``partition``, in order."""
        return tuple(r.name for r in self.partitions[partition])

    def series(self, partition: str, field: str = "pred", *, dim: int = 0) -> list[np.ndarray]:
        """Per-recording ``[T_r]`` series of one dim (column index) of ``field``.

        ``field`` is ``pred``, ``pred_pp``, ``gold`` or an extras key (``dim`` picks the
        column of a ``[T, k]`` extra; a ``[T]`` extra is returned as is).
        """
        if field not in FIELDS:
            return [
                a if a.ndim == 1 else np.ascontiguousarray(a[:, dim])
                for a in self.extra(partition, field)
            ]
        recs = self.partitions[partition]
        if recs[0].field(field) is None:
            raise ValueError(f"system {self.label!r}, partition {partition!r}: gold is withheld")
        return [np.ascontiguousarray(r.field(field)[:, dim]) for r in recs]

    def extra(self, partition: str, key: str) -> list[np.ndarray]:
        """Per-recording extras ``key`` (``[T_r]`` or ``[T_r, k]`` as stored)."""
        recs = self.partitions[partition]
        missing = [r.name for r in recs if key not in r.extras]
        if missing:
            have = sorted(set().union(*(r.extras for r in recs)))
            raise ValueError(
                f"system {self.label!r}, partition {partition!r}: recordings {missing} lack "
                f"extras[{key!r}]; extras present: {have}"
            )
        return [r.extras[key] for r in recs]


def _recordings_from_lists(v: Mapping[str, Any], where: str) -> tuple[RecordingPrediction, ...]:
    if not isinstance(v, Mapping) or "names" not in v or "pred" not in v:
        raise ValueError(f"{where}: expected a dict with at least 'names' and 'pred'")
    unknown = set(v) - {"names", "pred", "pred_pp", "gold", "extras", "difficulty"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    names = [v["names"]] if isinstance(v["names"], str) else list(v["names"])
    extras = dict(v.get("extras") or {})
    if v.get("difficulty") is not None:
        extras["difficulty"] = v["difficulty"]
    lists = {k: v.get(k) for k in FIELDS} | {f"extras[{k!r}]": x for k, x in extras.items()}
    for k, x in lists.items():
        if x is not None and len(x) != len(names):
            raise ValueError(f"{where}: {k} has {len(x)} recordings but names has {len(names)}")
    try:
        return tuple(
            RecordingPrediction(
                name,
                v["pred"][i],
                None if v.get("pred_pp") is None else v["pred_pp"][i],
                None if v.get("gold") is None else v["gold"][i],
                {k: x[i] for k, x in extras.items()},
            )
            for i, name in enumerate(names)
        )
    except ValueError as err:
        raise ValueError(f"{where}, {err}") from None


@dataclasses.dataclass(frozen=True, eq=False)
class Predictions:
    """All systems of a run, validated against each other.

    Attributes:
      systems: label → :class:`SystemPredictions`, in table order.
      frame_period: seconds per frame (AVEC 2016: 0.04).

    Raises (on construction):
      ValueError: a key that is not its system's label, systems with different dims, or
        two systems whose recordings (names, order, frame counts) or gold differ on a
        partition they share; the message names systems, partition and recording.
    """

    systems: Mapping[str, SystemPredictions]
    frame_period: float = 0.04

    def __post_init__(self):
        fp = self.frame_period
        if not (isinstance(fp, int | float) and math.isfinite(fp) and fp > 0):
            raise ValueError(f"frame_period must be a positive number of seconds, got {fp!r}")
        if isinstance(self.systems, SystemPredictions | str) or not self.systems:
            raise ValueError("systems must be a non-empty dict label -> SystemPredictions")
        systems = dict(self.systems)
        for key, s in systems.items():
            if not isinstance(s, SystemPredictions) or s.label != key:
                raise ValueError(f"systems[{key!r}] must be a SystemPredictions labelled {key!r}")
        first = next(iter(systems.values()))
        for s in systems.values():
            if s.dims != first.dims:
                raise ValueError(
                    f"systems {first.label!r} and {s.label!r} have different dims: "
                    f"{first.dims} vs {s.dims}"
                )
        _check_same_recordings(systems.values())
        object.__setattr__(self, "systems", MappingProxyType(systems))
        object.__setattr__(self, "frame_period", float(fp))

    @classmethod
    def from_arrays(
        cls,
        systems: Mapping[str, Mapping[str, Mapping[str, Any]]],
        *,
        dims: Sequence[str] | str = ("value",),
        frame_period: float = 0.04,
        info: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Predictions:
        """Builds from label → partition → ``{"names", "pred", "pred_pp", "gold",
        "extras"/"difficulty"}`` per-recording lists (see :meth:`SystemPredictions.from_arrays`);
        ``info`` is label → that system's info."""
        info = info or {}
        return cls(
            {
                str(k): SystemPredictions.from_arrays(str(k), dims, v, info.get(k))
                for k, v in systems.items()
            },
            frame_period,
        )

    @property
    def labels(self) -> tuple[str, ...]:
        """System labels in table order."""
        return tuple(self.systems)

    @property
    def dims(self) -> tuple[str, ...]:
        """Dimension names (shared by all systems)."""
        return next(iter(self.systems.values())).dims

    def dim_index(self, dim: str | None) -> int:
        """Column index of ``dim``; None is allowed only with a single dimension."""
        if dim is None:
            if len(self.dims) != 1:
                raise ValueError(f"several dims {self.dims}: name the one to evaluate (dim=...)")
            return 0
        if dim not in self.dims:
            raise ValueError(f"unknown dim {dim!r}; valid: {', '.join(self.dims)}")
        return self.dims.index(dim)

    def partition_names(self) -> tuple[str, ...]:
        """Partitions in order of first appearance over the systems."""
        return tuple(dict.fromkeys(p for s in self.systems.values() for p in s.partitions))

    def has_gold(self, partition: str) -> bool:
        """Whether ``partition`` is present and labelled (gold is the same for all systems)."""
        return any(
            partition in s.partitions and s.partitions[partition][0].gold is not None
            for s in self.systems.values()
        )

    def gold(self, partition: str, *, dim: str | None = None) -> list[np.ndarray]:
        """Per-recording gold ``[T_r]`` of ``dim`` on a labelled partition."""
        for s in self.systems.values():
            if partition in s.partitions and s.partitions[partition][0].gold is not None:
                return s.series(partition, "gold", dim=self.dim_index(dim))
        raise ValueError(f"partition {partition!r} is missing or has no labels")

    def series(
        self, label: str, partition: str, field: str = "pred", *, dim: str | None = None
    ) -> list[np.ndarray]:
        """Per-recording ``[T_r]`` series of one system (see :meth:`SystemPredictions.series`)."""
        s = self[label]
        if partition not in s.partitions:
            raise ValueError(f"system {label!r} has no partition {partition!r}")
        return s.series(partition, field, dim=self.dim_index(dim))

    def concat(
        self, label: str, partition: str, field: str = "pred", *, dim: str | None = None
    ) -> np.ndarray:
        """The concatenation ``[sum_r T_r]`` over the recordings of :meth:`series`."""
        return np.concatenate(self.series(label, partition, field, dim=dim))

    def __getitem__(self, label: str) -> SystemPredictions:
        if label not in self.systems:
            raise ValueError(f"unknown system {label!r}; systems: {list(self.systems)}")
        return self.systems[label]

    def select(self, labels: Iterable[str]) -> Predictions:
        """The given systems only, in the given order."""
        return Predictions({k: self[k] for k in labels}, self.frame_period)

    def merge(self, other: Predictions) -> Predictions:
        """This run's systems followed by ``other``'s (labels must not repeat)."""
        clash = set(self.systems) & set(other.systems)
        if clash:
            raise ValueError(f"systems {sorted(clash)} are in both")
        return Predictions({**self.systems, **other.systems}, self.frame_period)

    def with_postprocessed(
        self,
        pred_pp: Mapping[str, Mapping[str, Sequence[np.ndarray]]]
        | Callable[[SystemPredictions], Mapping[str, Sequence[np.ndarray]]],
    ) -> Predictions:
        """A copy with ``pred_pp`` replaced.

        Args:
          pred_pp: label → partition → per-recording ``[T_r]``/``[T_r, D]`` arrays, or a
            function ``system -> {partition: arrays}``; systems and partitions not given
            keep their ``pred_pp``.
        """
        out = {}
        for label, s in self.systems.items():
            new = pred_pp(s) if callable(pred_pp) else pred_pp.get(label, {})
            parts = dict(s.partitions)
            for part, arrays in new.items():
                if part not in parts or len(arrays) != len(parts[part]):
                    raise ValueError(f"pred_pp of {label!r}/{part!r} does not match its recordings")
                parts[part] = tuple(
                    dataclasses.replace(r, pred_pp=a)
                    for r, a in zip(parts[part], arrays, strict=True)
                )
            out[label] = dataclasses.replace(s, partitions=parts)
        return Predictions(out, self.frame_period)


def _check_same_recordings(systems: Iterable[SystemPredictions]) -> None:
    ref: dict[str, SystemPredictions] = {}
    for s in systems:
        for part, recs in s.partitions.items():
            r0 = ref.setdefault(part, s)
            if r0 is s:
                continue
            where = f"systems {r0.label!r} and {s.label!r}, partition {part!r}"
            if r0.names(part) != s.names(part):
                raise ValueError(
                    f"{where}: different recordings {list(r0.names(part))} vs "
                    f"{list(s.names(part))}; every system must have the same recordings in "
                    "the same order"
                )
            for a, b in zip(r0.partitions[part], recs, strict=True):
                if a.num_frames != b.num_frames:
                    raise ValueError(
                        f"{where}, recording {a.name!r}: {a.num_frames} vs {b.num_frames} frames"
                    )
                same = (a.gold is None and b.gold is None) or (
                    a.gold is not None and b.gold is not None and np.array_equal(a.gold, b.gold)
                )
                if not same:
                    raise ValueError(f"{where}, recording {a.name!r}: the gold standard differs")


# ------------------------------------------------------------------------------- files


def check_file_stem(name: str, what: str) -> str:
    """Returns ``name`` if it is a plain file name (letters, digits, ``._+-``), else raises."""
    name = str(name)
    if not _SAFE_NAME.match(name) or name in (".", ".."):
        raise ValueError(
            f"{what} {name!r} must be a plain file name (letters, digits, '.', '_', '+', '-'; "
            "no path separators or spaces)"
        )
    return name


def slugify(label: str) -> str:
    """File-system slug of a system label: ``"DDAT-RE vector"`` → ``"ddat-re-vector"``.

    Lower case; every run of characters other than ``[a-z0-9._+]`` becomes ``-``.

    Raises:
      ValueError: if nothing is left.
    """
    slug = re.sub(r"[^a-z0-9._+]+", "-", str(label).lower()).strip("-.")
    if not slug:
        raise ValueError(f"system label {label!r} has no characters usable in a folder name")
    return slug


def _columns(dims: Sequence[str], base: str) -> list[str]:
    return [base] if len(dims) == 1 else [f"{base}_{d}" for d in dims]


def _recording_frame(r: RecordingPrediction, dims: Sequence[str], fp: float) -> pd.DataFrame:
    t = r.num_frames
    cols: dict[str, np.ndarray] = {"time": np.round(np.arange(t) * fp, 9)}
    gold = r.gold if r.gold is not None else np.full(r.pred.shape, np.nan)
    for base, a in (("prediction", r.pred), ("prediction_pp", r.pred_pp), ("gold", gold)):
        cols.update(zip(_columns(dims, base), a.T, strict=True))
    for key, a in r.extras.items():
        if a.ndim == 1:
            cols[key] = a
        else:
            cols.update({f"{key}_{j}": a[:, j] for j in range(a.shape[1])})
    return pd.DataFrame(cols)


def _manifest(preds: Predictions, slugs: Mapping[str, str]) -> dict:
    systems = []
    for slug, label in slugs.items():
        s = preds[label]
        parts = {}
        for part, recs in s.partitions.items():
            extras = {k: (0 if a.ndim == 1 else a.shape[1]) for k, a in recs[0].extras.items()}
            parts[part] = {
                "recordings": [r.name for r in recs],
                "labelled": recs[0].gold is not None,
                "extras": extras,  # key -> 0 for a [T] signal, else k of [T, k]
            }
        systems.append({"label": label, "slug": slug, "partitions": parts, "info": dict(s.info)})
    return {"frame_period": preds.frame_period, "dims": list(preds.dims), "systems": systems}


def write_predictions(preds: Predictions, folder: str | os.PathLike) -> list[Path]:
    """Writes one CSV per system × partition × recording and a manifest, atomically.

    Layout: ``<folder>/<slugify(label)>/<partition>/<recording>.csv`` with columns
    ``time`` (seconds), ``prediction``, ``prediction_pp``, ``gold`` (empty cells where
    withheld) -- suffixed ``_<dim>`` per dim when there are several -- then the extras
    (``<key>`` for ``[T]``, ``<key>_<j>`` for ``[T, k]``); and ``<folder>/predictions.json``
    (frame period, dims, labels, recordings, extras shapes, ``info`` as JSON; values JSON
    cannot hold are written with ``str``).

    Returns:
      The written CSV paths, in order (the manifest last).

    Raises:
      ValueError: two labels with the same slug, or unsafe partition/recording names.
    """
    slugs: dict[str, str] = {}
    for label in preds.labels:
        s = slugify(label)
        if s in slugs:
            raise ValueError(f"systems {slugs[s]!r} and {label!r} share the folder name {s!r}")
        slugs[s] = label
    root, written = Path(folder), []
    for slug, label in slugs.items():
        for part, recs in preds[label].partitions.items():
            check_file_stem(part, "partition name")
            for r in recs:
                frame = _recording_frame(r, preds.dims, preds.frame_period)
                path = root / slug / part / f"{check_file_stem(r.name, 'recording name')}.csv"
                atomic.write_text(path, frame.to_csv(index=False, lineterminator="\n"))
                written.append(path)
    text = json.dumps(_manifest(preds, slugs), indent=1, default=_jsonable)
    written.append(atomic.write_text(root / MANIFEST, text + "\n"))
    return written


def _jsonable(x):
    if isinstance(x, np.generic | np.ndarray):
        return x.tolist()
    return str(x)


def _read_recording(path: Path, name: str, dims, entry) -> RecordingPrediction:
    df = pd.read_csv(path)
    get = lambda base: df[_columns(dims, base)].to_numpy(np.float64)  # noqa: E731
    extras = {}
    for key, k in entry["extras"].items():
        cols = [key] if k == 0 else [f"{key}_{j}" for j in range(k)]
        a = df[cols].to_numpy(np.float64)
        extras[key] = a[:, 0] if k == 0 else a
    gold = get("gold") if entry["labelled"] else None
    return RecordingPrediction(name, get("prediction"), get("prediction_pp"), gold, extras)


def read_predictions(folder: str | os.PathLike) -> Predictions:
    """Reads what :func:`write_predictions` wrote (``info`` comes back as parsed JSON).

    Raises:
      FileNotFoundError: no ``predictions.json`` manifest or a missing CSV.
    """
    root = Path(folder)
    if not (root / MANIFEST).is_file():
        raise FileNotFoundError(f"{root / MANIFEST}: no predictions manifest in {root}")
    man = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    dims = tuple(man["dims"])
    systems = {}
    for s in man["systems"]:
        parts = {
            part: tuple(
                _read_recording(root / s["slug"] / part / f"{n}.csv", n, dims, entry)
                for n in entry["recordings"]
            )
            for part, entry in s["partitions"].items()
        }
        systems[s["label"]] = SystemPredictions(s["label"], dims, parts, s["info"])
    return Predictions(systems, man["frame_period"])
