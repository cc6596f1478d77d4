"""DDAT stage 1 → stage 2: difficulty signals written next to the features, read back.

Stage 1 (``mtl_re``/``mtl_pu``) writes ``workdir/stage1/<variant>/`` with the augmented
arrays ``[x, d]`` per recording and a manifest (:mod:`ddat_jax.methods.ddat.artifacts`);
stage 2 reads only that folder and refuses one written under other settings.
"""

from __future__ import annotations

import numpy as np

from ddat_jax.experiment.systems import Context, Trained
from ddat_jax.methods.ddat import artifacts, difficulty
from ddat_jax.methods.ddat.settings import STAGE2, VARIANTS_OF, DDATSettings


def stage1_hash(settings: DDATSettings, stage1: str) -> str:
    """Hash of everything that determines what stage-1 system ``stage1`` writes."""
    return artifacts.config_hash({"run": settings.stage1_hash, "stage1": stage1})


def difficulty_names(variant: str, feature_names) -> list[str]:
    """Column names of a difficulty variant."""
    if variant == "re_vector":
        return [f"re/{n}" for n in feature_names]
    return [variant]


def re_signal(features: np.ndarray, x_hat: np.ndarray, reduce: str) -> np.ndarray:
    """The RE scalar ``[T, 1]`` of one recording."""
    return np.asarray(difficulty.re_scalar(features, x_hat, reduce=reduce))


def extract_difficulty(
    ctx: Context, system: Trained
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Difficulty signals of a stage-1 model: variant → partition → recording → ``[T, D]``."""
    s: DDATSettings = ctx.settings
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {v: {} for v in VARIANTS_OF[system.name]}
    for part, recs in ctx.corpus.partitions.items():
        heads = system.outputs[part]
        for i, rec in enumerate(recs):
            if system.name == "mtl_re":
                x_hat = heads["reconstruction"][i]
                out["re_vector"].setdefault(part, {})[rec.name] = np.asarray(
                    difficulty.re_vector(rec.features, x_hat)
                )
                out["re_sum"].setdefault(part, {})[rec.name] = re_signal(
                    rec.features, x_hat, s.re_reduce
                )
            else:
                u = heads["pu"][i][:, :1]
                if part == "train" and s.pu_source_train == "annotated":
                    u = rec.pu[:, None]
                out["pu"].setdefault(part, {})[rec.name] = np.asarray(u)
    return out


def write_stage1(ctx: Context, system: Trained) -> None:
    """Writes the augmented arrays ``[x, d]`` of every difficulty variant of ``system``."""
    signals = extract_difficulty(ctx, system)
    h = stage1_hash(ctx.settings, system.name)
    for variant in VARIANTS_OF[system.name]:
        arrays = {
            part: {
                rec.name: np.concatenate([rec.features, signals[variant][part][rec.name]], axis=1)
                for rec in recs
            }
            for part, recs in ctx.corpus.partitions.items()
        }
        folder = artifacts.write_augmented(
            ctx.workdir / "stage1" / variant,
            arrays,
            feature_names=ctx.corpus.feature_names,
            difficulty_names=difficulty_names(variant, ctx.corpus.feature_names),
            config_hash=h,
            extra={"stage1_system": system.name, "stage1_dev_score": system.dev_score},
        )
        print(f"[{system.label}] wrote {folder.name} difficulty (stage 1 → stage 2)", flush=True)


def _check_recording(folder, part: str, rec, arrays) -> np.ndarray:
    if rec.name not in arrays.get(part, {}):
        raise artifacts.ManifestError(f"{folder}: no array for {part}/{rec.name}")
    a = arrays[part][rec.name]
    if a.shape[0] != rec.num_frames:
        raise artifacts.ManifestError(
            f"{folder}: {part}/{rec.name} has {a.shape[0]} frames, the corpus {rec.num_frames}"
        )
    return a


def load_stage2_inputs(ctx: Context, system: str) -> dict[str, np.ndarray]:
    """Reads a stage-1 folder for a stage-2 system: partition → padded ``[N, T, F + D]``.

    The difficulty columns are standardised with train statistics (the features ``x``
    already are), so that stage 2 sees inputs on one scale.

    Raises:
      ManifestError: the folder is missing, incomplete, or from other settings.
    """
    stage1, variant = STAGE2[system]
    folder = ctx.workdir / "stage1" / variant
    arrays, manifest = artifacts.read_augmented(
        folder, expected_config_hash=stage1_hash(ctx.settings, stage1)
    )
    if manifest["feature_names"] != list(ctx.corpus.feature_names):
        raise artifacts.ManifestError(f"{folder}: feature names differ from the loaded corpus")
    n_feat = len(manifest["feature_names"])
    train_d = np.concatenate([a[:, n_feat:] for a in arrays["train"].values()], axis=0)
    mean, std = train_d.mean(0), train_d.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    out = {}
    for part, recs in ctx.corpus.partitions.items():
        batch = ctx.batches[part]
        width = arrays["train"][next(iter(arrays["train"]))].shape[1]
        x = np.zeros((len(recs), batch["mask"].shape[1], width), np.float32)
        for i, rec in enumerate(recs):
            a = _check_recording(folder, part, rec, arrays)
            x[i, : rec.num_frames, :n_feat] = a[:, :n_feat]
            x[i, : rec.num_frames, n_feat:] = (a[:, n_feat:] - mean) / std
        out[part] = x
    return out
