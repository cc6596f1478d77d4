"""The DDAT experiment end to end (METHODS.md §1; Zhang et al., DDAT, Algorithm 1).

``run_ddat(config, workdir, corpus)`` trains the systems named in ``config.ddat.systems``
on a prepared (delay-compensated, standardised) corpus and writes, under ``workdir``:

* ``train/<system>/<arch>/``: each training's ``config.json``, ``metrics.jsonl`` and orbax
  checkpoints (a re-run resumes them);
* ``stage1/<variant>/``: the augmented features ``[x, d]`` per recording with their
  manifest (variants ``re_vector``, ``re_sum``, ``pu``), written atomically by stage 1 and
  the only feature source of stage 2;
* ``predictions/``, ``results/`` (Tables I–IV as CSV + Markdown), ``figures/``.

Systems (rows of the paper's tables):

=================  ==========================================================
``stl``            single-task GRU-RNN on ``x``
``mtl_re``         stage-1 multi-task GRU-RNN: emotion + input reconstruction
``mtl_pu``         stage-1 multi-task GRU-RNN: emotion + perception uncertainty
``ddat_re_vector`` stage 2 on ``[x, e]``, ``e = x − x̂``
``ddat_re_sum``    stage 2 on ``[x, E]``, ``E = Σ_i f(x_i − x̂_i)`` (``re_reduce``)
``ddat_pu``        stage 2 on ``[x, û]``, the stage-1 model's predicted PU
``cl_dnn``         curriculum learning (easy → hard by PU) with the 2×1024 DNN
``cl_gru``         curriculum learning with the GRU-RNN
=================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path

import jax
import numpy as np

from ddat_jax import figures, postprocess, reports
from ddat_jax.data import preprocess
from ddat_jax.ddat import artifacts, curriculum, difficulty
from ddat_jax.ddat.systems import TrainedSystem, train_system
from ddat_jax.train.keys import system_key

LABELS = {
    "stl": "STL",
    "mtl_re": "MTL-RE",
    "mtl_pu": "MTL-PU",
    "ddat_re_vector": "DDAT-RE vector",
    "ddat_re_sum": "DDAT-RE sum",
    "ddat_pu": "DDAT-PU",
    "cl_dnn": "CL-DNN",
    "cl_gru": "CL-GRU",
}
ALL_SYSTEMS = tuple(LABELS)
SYSTEMS_BY_AUX = {
    "re": ("stl", "mtl_re", "ddat_re_vector", "ddat_re_sum", "cl_dnn", "cl_gru"),
    "pu": ("stl", "mtl_pu", "ddat_pu", "cl_dnn", "cl_gru"),
    "none": ("stl", "cl_dnn", "cl_gru"),
    "both": ALL_SYSTEMS,
}
# stage-2 system → (stage-1 system, difficulty variant)
STAGE2 = {
    "ddat_re_vector": ("mtl_re", "re_vector"),
    "ddat_re_sum": ("mtl_re", "re_sum"),
    "ddat_pu": ("mtl_pu", "pu"),
}
VARIANTS_OF = {"mtl_re": ("re_vector", "re_sum"), "mtl_pu": ("pu",)}
AUX_HEAD = {"mtl_re": "reconstruction", "mtl_pu": "pu"}


def systems_for(aux: str) -> tuple[str, ...]:
    """The default systems of a config's ``aux`` (``re``, ``pu``, ``none``, ``both``)."""
    if aux not in SYSTEMS_BY_AUX:
        raise ValueError(f"unknown ddat.aux {aux!r}; valid: {sorted(SYSTEMS_BY_AUX)}")
    return SYSTEMS_BY_AUX[aux]


def stage1_hash(config, stage1: str) -> str:
    """Hash of everything that determines what stage 1 (``stage1`` system) writes."""
    d = config.ddat
    knobs = {
        "stage1": stage1,
        "seed": int(config.seed),
        "w_emotion": float(d.w_emotion),
        "w_aux": float(d.w_aux),
        "re_reduce": str(d.re_reduce),
        "pu_source_train": str(d.pu_source_train),
    }
    return artifacts.config_hash(config.data, config.model, config.train, config.hparams, knobs)


def _system_key(config, name: str) -> jax.Array:
    return system_key(int(config.seed), name)


def _labelled(batches: Mapping[str, dict]) -> list[str]:
    return [p for p, b in batches.items() if b["has_labels"]]


def _emotion_targets(batches):
    return {p: {"emotion": batches[p]["y"]} for p in _labelled(batches)}


# ------------------------------------------------------------------ stage 1 → difficulty


def extract_difficulty(
    system: TrainedSystem, corpus, batches, *, re_reduce: str, pu_source_train: str
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Difficulty signals of a stage-1 model for every recording.

    Returns:
      variant → partition → recording name → ``[T, D]`` difficulty.
    """
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for part, recs in corpus.partitions.items():
        if part not in system.outputs:
            continue
        heads = system.outputs[part]
        for i, rec in enumerate(recs):
            if system.name == "mtl_re":
                x_hat = heads["reconstruction"][i]
                out.setdefault("re_vector", {}).setdefault(part, {})[rec.name] = np.asarray(
                    difficulty.re_vector(rec.features, x_hat)
                )
                out.setdefault("re_sum", {}).setdefault(part, {})[rec.name] = np.asarray(
                    difficulty.re_scalar(rec.features, x_hat, reduce=re_reduce)
                )
            else:
                u = heads["pu"][i][:, :1]
                if part == "train" and pu_source_train == "annotated":
                    u = rec.pu[:, None]
                out.setdefault("pu", {}).setdefault(part, {})[rec.name] = np.asarray(u)
    return out


def difficulty_names(variant: str, feature_names) -> list[str]:
    """Column names of a difficulty variant."""
    if variant == "re_vector":
        return [f"re/{n}" for n in feature_names]
    return [variant]


def write_stage1(config, workdir: Path, system: TrainedSystem, corpus, batches) -> None:
    """Writes the augmented arrays ``[x, d]`` of every difficulty variant of ``system``."""
    d = config.ddat
    signals = extract_difficulty(
        system, corpus, batches, re_reduce=d.re_reduce, pu_source_train=d.pu_source_train
    )
    h = stage1_hash(config, system.name)
    for variant in VARIANTS_OF[system.name]:
        arrays = {
            part: {
                rec.name: np.concatenate([rec.features, signals[variant][part][rec.name]], axis=1)
                for rec in recs
            }
            for part, recs in corpus.partitions.items()
        }
        folder = artifacts.write_augmented(
            workdir / "stage1" / variant,
            arrays,
            feature_names=corpus.feature_names,
            difficulty_names=difficulty_names(variant, corpus.feature_names),
            config_hash=h,
            extra={"stage1_system": system.name, "stage1_dev_ccc": system.dev_ccc},
        )
        print(f"[stage 1] wrote {folder} (config hash {h})", flush=True)


def load_stage2_batches(config, workdir: Path, system: str, corpus) -> dict:
    """Reads a stage-1 folder for a stage-2 system; returns partition → ``to_batch`` dict.

    The difficulty columns are standardised with train statistics (the features ``x``
    already are), so that stage 2 sees inputs on one scale.

    Raises:
      ManifestError: the folder is missing, incomplete, or from another config.
    """
    stage1, variant = STAGE2[system]
    arrays, manifest = artifacts.read_augmented(
        workdir / "stage1" / variant, expected_config_hash=stage1_hash(config, stage1)
    )
    n_feat = len(manifest["feature_names"])
    if manifest["feature_names"] != list(corpus.feature_names):
        raise artifacts.ManifestError(
            f"{workdir / 'stage1' / variant}: feature names differ from the loaded corpus"
        )
    train_d = np.concatenate([a[:, n_feat:] for a in arrays["train"].values()], axis=0)
    mean, std = train_d.mean(0), train_d.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    batches = {}
    for part, recs in corpus.partitions.items():
        if part not in arrays:
            raise artifacts.ManifestError(f"stage-1 folder {variant} has no partition {part!r}")
        new_recs = []
        for rec in recs:
            if rec.name not in arrays[part]:
                raise artifacts.ManifestError(
                    f"stage-1 folder {variant}: no array for {part}/{rec.name}"
                )
            a = arrays[part][rec.name]
            if a.shape[0] != rec.num_frames:
                raise artifacts.ManifestError(
                    f"stage-1 folder {variant}: {part}/{rec.name} has {a.shape[0]} frames, "
                    f"the corpus {rec.num_frames}"
                )
            dcols = (a[:, n_feat:] - mean) / std
            x_d = np.concatenate([a[:, :n_feat], dcols], axis=1).astype(np.float32)
            new_recs.append(dataclasses.replace(rec, features=x_d))
        batches[part] = preprocess.to_batch(new_recs)
    return batches


# ------------------------------------------------------------------------- evaluation


def _per_recording(system: TrainedSystem, part: str) -> list[np.ndarray]:
    return [o[:, 0] for o in system.outputs[part]["emotion"]]


def assemble_predictions(config, trained: Mapping[str, TrainedSystem], corpus) -> dict:
    """Post-processes every system (fitted on dev, applied to all) for the reports.

    Returns:
      system label → partition → ``{"names", "pred", "pred_pp", "gold"}`` and, under
      ``"_postprocess"``, system label → fitted parameters.
    """
    out, fitted = {}, {}
    pp = config.postprocess
    for name, system in trained.items():
        label = LABELS[name]
        dev_gold = [r.gold for r in corpus.partitions["dev"]]
        params = None
        if pp.enabled:
            params = postprocess.fit_postprocess(
                _per_recording(system, "dev"),
                dev_gold,
                frame_period=corpus.frame_period,
                grids=pp.grids,
                per_recording=bool(pp.per_recording),
            )
            fitted[label] = params.to_dict()
        out[label] = {}
        for part in ("dev", "test"):
            if part not in system.outputs:
                continue
            preds = _per_recording(system, part)
            recs = corpus.partitions[part]
            out[label][part] = {
                "names": [r.name for r in recs],
                "pred": preds,
                "pred_pp": postprocess.apply_postprocess(preds, params) if params else preds,
                "gold": [r.gold for r in recs] if all(r.has_labels for r in recs) else None,
            }
    return {"systems": out, "postprocess": fitted}


def comparisons_for(names) -> dict[str, dict[str, str]]:
    """Which baselines each row is tested against (DDAT vs its MTL and STL; others vs STL)."""
    comp = {}
    for n in names:
        c = {}
        if n in STAGE2 and STAGE2[n][0] in names:
            c["mtl"] = LABELS[STAGE2[n][0]]
        if n != "stl" and "stl" in names:
            c["stl"] = "STL"
        if c:
            comp[LABELS[n]] = c
    return comp


# ------------------------------------------------------------------------------ run


def run_ddat(config, workdir: str | Path, corpus) -> dict:
    """Runs the DDAT experiment on a prepared corpus and writes tables and figures.

    Args:
      config: the experiment config (see ``ddat_jax.config.ddat_config``).
      workdir: output folder.
      corpus: a Corpus from :func:`ddat_jax.data.prepare.prepare_corpus`.

    Returns:
      ``{"tables": {name: DataFrame}, "dev_ccc": {system: float}, "seconds": float}``.
    """
    t_start = time.perf_counter()
    workdir = Path(workdir)
    d = config.ddat
    names = tuple(d.systems) if d.systems else systems_for(d.aux)
    unknown = set(names) - set(ALL_SYSTEMS)
    if unknown:
        raise ValueError(f"unknown ddat.systems {sorted(unknown)}; valid: {list(ALL_SYSTEMS)}")
    for part in ("train", "dev"):
        recs = corpus.partitions.get(part) or []
        if not recs or not all(r.has_labels for r in recs):
            raise ValueError(
                f"partition {part!r} needs recordings with labels (gold standard) for training "
                "and model selection"
            )
    batches = {p: preprocess.to_batch(recs) for p, recs in corpus.partitions.items() if recs}
    targets = _emotion_targets(batches)
    trained: dict[str, TrainedSystem] = {}
    tw = workdir / "train"

    if "stl" in names:
        trained["stl"] = train_system(
            "stl",
            config,
            batches,
            targets,
            heads={"emotion": 1},
            workdir=tw / "stl",
            key=_system_key(config, "stl"),
        )

    # Stage 1: multi-task models; their difficulty signals go to disk.
    needed_stage1 = {s for s in ("mtl_re", "mtl_pu") if s in names} | {
        STAGE2[n][0] for n in names if n in STAGE2
    }
    for s1 in sorted(needed_stage1):
        if not d.run_stage1:
            print(f"[stage 1] skipped ({s1}): config.ddat.run_stage1=False", flush=True)
            continue
        aux_head = AUX_HEAD[s1]
        heads = {"emotion": 1}
        s1_targets = {p: dict(t) for p, t in targets.items()}
        if aux_head == "reconstruction":
            heads[aux_head] = corpus.num_features
        else:
            if not all(batches[p]["has_pu"] for p in ("train", "dev")):
                raise ValueError(
                    "the PU auxiliary task needs individual ratings (perception uncertainty) "
                    "for train and dev; this corpus has none"
                )
            heads[aux_head] = 1
            for p in s1_targets:
                s1_targets[p][aux_head] = batches[p]["pu"]
        trained[s1] = train_system(
            s1,
            config,
            batches,
            s1_targets,
            heads=heads,
            workdir=tw / s1,
            key=_system_key(config, s1),
            loss_weights={"emotion": float(d.w_emotion), aux_head: float(d.w_aux)},
        )
        write_stage1(config, workdir, trained[s1], corpus, batches)

    # Stage 2: reads only what stage 1 wrote.
    for s2 in (n for n in names if n in STAGE2):
        b2 = load_stage2_batches(config, workdir, s2, corpus)
        trained[s2] = train_system(
            s2,
            config,
            b2,
            targets,
            heads={"emotion": 1},
            workdir=tw / s2,
            key=_system_key(config, s2),
        )

    # Curriculum learning baselines.
    for cl in (n for n in names if n.startswith("cl_")):
        arch = trained["stl"].arch if "stl" in trained else tuple(config.model.arch[0])
        trained[cl] = curriculum.train_curriculum(
            cl, config, corpus, batches, workdir=tw / cl, key=_system_key(config, cl), arch=arch
        )

    # Keep only the systems asked for in the tables (stage-1 models may be implicit).
    table_systems = {n: trained[n] for n in ALL_SYSTEMS if n in trained and n in names}
    results = _report(config, workdir, table_systems, corpus, trained)
    results["seconds"] = time.perf_counter() - t_start
    print(f"DDAT experiment done in {results['seconds']:.0f} s; results in {workdir}", flush=True)
    return results


def _report(config, workdir, systems, corpus, trained) -> dict:
    assembled = assemble_predictions(config, systems, corpus)
    preds = assembled["systems"]
    comp = comparisons_for(tuple(systems))
    rd = workdir / "results"
    n_res = int(config.ddat.significance_resamples)
    tables = {}
    agg = "CCC over the concatenation of each partition's recordings (AVEC 2016)"
    for key, which, title in (
        ("table1_before_postprocessing", "pred", "Table I: CCC before post-processing"),
        ("table2_after_postprocessing", "pred_pp", "Table II: CCC after post-processing"),
    ):
        df = reports.results_table(
            preds, which=which, comparisons=comp, n_resamples=n_res, seed=int(config.seed)
        )
        reports.write_table(df, rd, key, caption=f"{title}; {agg}.")
        tables[key] = df
        print(f"\n{title}\n{df.to_string()}", flush=True)

    # Table III: difficulty vs improvement over STL, on test where labelled, else dev.
    part = "test" if _has_gold(preds, "test") else "dev"
    re_sys = next((n for n in ("ddat_re_sum", "ddat_re_vector") if n in systems), None)
    pu_sys = "ddat_pu" if "ddat_pu" in systems else None
    if "stl" in systems and (re_sys or pu_sys):
        ddat_preds = {}
        if re_sys:
            ddat_preds["re"] = _per_recording(systems[re_sys], part)
        if pu_sys:
            ddat_preds["pu"] = _per_recording(systems[pu_sys], part)
        if len(ddat_preds) == 1:
            ddat_preds = next(iter(ddat_preds.values()))
        t3 = reports.difficulty_analysis(
            _difficulty_signal(trained, "mtl_re", corpus, part) if re_sys else None,
            _difficulty_signal(trained, "mtl_pu", corpus, part) if pu_sys else None,
            _per_recording(systems["stl"], part),
            ddat_preds,
            [r.gold for r in corpus.partitions[part]],
        )
        reports.write_table(
            t3,
            rd,
            "table3_difficulty_analysis",
            caption="Table III: PCC between RE, PU and the per-frame improvement "
            f"Δc = |ŷ_STL − y| − |ŷ_DDAT − y| ({part} partition; RE vs "
            f"{LABELS.get(re_sys, '-')}, PU vs {LABELS.get(pu_sys, '-')}).",
        )
        tables["table3_difficulty_analysis"] = t3

    fusion = _fusion(config, preds, trained, corpus)
    if fusion is not None:
        reports.write_table(
            fusion,
            rd,
            "table4_fusion",
            caption="Table IV: late fusion (simple linear regression fitted on dev) and "
            f"dynamic tuning y' = ε + γ·y + γ_d·d; {agg}.",
        )
        tables["table4_fusion"] = fusion

    reports.write_predictions(preds, workdir / "predictions", frame_period=corpus.frame_period)
    (rd / "postprocess_params.json").write_text(json.dumps(assembled["postprocess"], indent=1))
    _figures(workdir / "figures", preds, trained, corpus, part)
    return {
        "tables": tables,
        "dev_ccc": {LABELS[n]: s.dev_ccc for n, s in systems.items()},
        "predictions": preds,
    }


def _has_gold(preds, part) -> bool:
    return any(part in v and v[part]["gold"] is not None for v in preds.values())


def _difficulty_signal(trained, s1, corpus, part):
    if s1 not in trained:
        return None
    outs = trained[s1].outputs[part]
    if s1 == "mtl_pu":
        return [o[:, 0] for o in outs["pu"]]
    return [
        np.asarray(difficulty.re_scalar(r.features, xh, reduce="squared"))[:, 0]
        for r, xh in zip(corpus.partitions[part], outs["reconstruction"], strict=True)
    ]


def _fusion(config, preds, trained, corpus):
    """Table IV within one run: dynamic tuning of each system with a difficulty signal and
    late fusion (SLR) of all systems, fitted on dev.

    The difficulty used for tuning is the RE scalar of the stage-1 RE model when it was
    trained, else the predicted PU. Fusion across feature sets (the paper's Table IV) needs
    one run per modality: ``experiments/fusion_across_modalities.py``.
    """
    if not _has_gold(preds, "dev") or len(preds) < 1:
        return None
    source = "mtl_re" if "mtl_re" in trained else ("mtl_pu" if "mtl_pu" in trained else None)
    streams = {}
    for label, parts in preds.items():
        streams[label] = {}
        for part, v in parts.items():
            entry = dict(v)
            if source is not None:
                entry["difficulty"] = _difficulty_signal(trained, source, corpus, part)
            streams[label][part] = entry
    rows = {label: [label] for label in preds}
    if source is not None:
        d_name = "RE" if source == "mtl_re" else "PU"
        rows.update({f"{label} + dyn. tuning ({d_name})": [f"{label}:dt"] for label in preds})
    if len(preds) > 1:
        rows["SLR fusion of all systems"] = list(preds)
    result = reports.fusion_table(streams, rows, which="pred_pp")
    return result.table


def _figures(folder, preds, trained, corpus, part):
    recs = corpus.partitions[part]
    if not recs:
        return
    i = 0
    rec = recs[i]
    chosen = {label: v[part]["pred_pp"][i] for label, v in preds.items() if part in v}
    figures.plot_predictions(
        folder / f"predictions_{rec.name}.png",
        rec.times,
        rec.gold,
        chosen,
        title=f"{corpus.dimension}, {'+'.join(corpus.modalities)}: {rec.name}",
    )
    signals = {}
    for s1, label in (("mtl_re", "RE (squared sum)"), ("mtl_pu", "predicted PU")):
        sig = _difficulty_signal(trained, s1, corpus, part)
        if sig is not None:
            signals[label] = sig[i]
    if signals:
        figures.plot_difficulty(
            folder / f"difficulty_{rec.name}.png",
            rec.times,
            difficulty=signals,
            ratings=rec.ratings,
            pu=rec.pu,
            title=f"difficulty signals, {rec.name}",
        )
