"""The DDAT plan: which systems (table rows) train on what, with which objective.

=================  ==========================================================
``stl``            single-task GRU-RNN on ``x``
``mtl_re``         stage-1 multi-task GRU-RNN: emotion + input reconstruction
``mtl_pu``         stage-1 multi-task GRU-RNN: emotion + perception uncertainty
``ddat_re_vector`` stage 2 on ``[x, e]``, ``e = x − x̂``
``ddat_re_sum``    stage 2 on ``[x, E]``, ``E = Σ_i f(x_i − x̂_i)`` (``re_reduce``)
``ddat_pu``        stage 2 on ``[x, û]``, the stage-1 model's predicted PU
``dnn``            the frame-level DNN (``cl_dnn_hidden``) on ``x``, no curriculum
``cl_dnn``         curriculum learning (easy → hard by PU) with the 2×1024 DNN
``cl_gru``         curriculum learning with the GRU-RNN
=================  ==========================================================

Stage 1 writes its difficulty signals to ``workdir/stage1/<variant>/`` (atomically, with
a manifest); stage 2 reads only that folder, so stage 2 can run alone on an existing one
(``config.ddat.run_stage1=False``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from ddat_jax import models
from ddat_jax import train as train_lib
from ddat_jax.experiment.systems import Context, Job, System, Trained
from ddat_jax.methods.ddat import curriculum, stage1
from ddat_jax.methods.ddat.settings import AUX_HEAD, LABELS, STAGE2, DDATSettings


def partition_data(batch: Mapping, inputs: np.ndarray, targets: Mapping[str, np.ndarray]):
    """One engine partition: inputs, the valid-frame mask and the targets present."""
    return {"inputs": inputs, "mask": batch["mask"], "targets": dict(targets)}


def build_rnn(settings: DDATSettings, arch, heads: Mapping[str, int]):
    """The recurrent model of a system: ``MultiTaskRNN`` with the given heads."""
    layers, hidden = arch
    return models.build_model(
        "mtl_rnn",
        cell=settings.cell,
        hidden_size=int(hidden),
        num_layers=int(layers),
        bidirectional=settings.bidirectional,
        heads=dict(heads),
        init_scale=settings.init_scale or None,
    )


def emotion_job(ctx: Context, inputs_of, heads: Mapping[str, int], extra_targets=None) -> Job:
    """A GRU-RNN job on ``inputs_of(partition)`` with an emotion head (plus ``heads``)."""
    s: DDATSettings = ctx.settings
    data = {}
    for part, b in ctx.batches.items():
        targets = {"emotion": b["y"]} if b["has_labels"] else {}
        if b["has_labels"] and extra_targets:
            targets.update({k: fn(part, b) for k, fn in extra_targets.items()})
        data[part] = partition_data(b, inputs_of(part, b), targets)
    all_heads = {"emotion": 1, **heads}
    weights = {"emotion": s.w_emotion if heads else 1.0}
    weights.update({h: s.w_aux for h in heads})
    objective = train_lib.heads_objective({h: s.loss for h in all_heads})
    return Job(
        data=data,
        lengths={p: b["lengths"] for p, b in ctx.batches.items()},
        model_fn=lambda arch: build_rnn(s, arch, all_heads),
        archs=s.archs,
        objective=objective,
        loss_weights=weights,
        settings=ctx.train,
    )


def stl_job(ctx: Context, upstream) -> Job:
    return emotion_job(ctx, lambda p, b: b["x"], {})


def dnn_job(ctx: Context, upstream) -> Job:
    """The plain DNN row (Table I "DNNs"): STL's data and objective, the frame-level DNN
    of the curriculum baseline (``cl_dnn_hidden``), trained on whole recordings."""
    hidden = ctx.settings.cl_dnn_hidden
    return dataclasses.replace(
        stl_job(ctx, upstream),
        model_fn=lambda _: models.build_model("dnn", hidden_sizes=hidden, heads={"emotion": 1}),
        archs=(None,),
    )


def mtl_job(aux: str):
    def job(ctx: Context, upstream) -> Job:
        if aux == "reconstruction":
            extra = {"reconstruction": lambda p, b: b["x"]}
            heads = {"reconstruction": ctx.corpus.num_features}
        else:
            for part in ("train", "dev"):
                if not ctx.batches[part]["has_pu"]:
                    raise ValueError(
                        "the PU auxiliary task needs individual ratings (perception "
                        f"uncertainty) for train and dev; partition {part!r} has none"
                    )
            extra = {"pu": lambda p, b: b["pu"]}
            heads = {"pu": 1}
        return emotion_job(ctx, lambda p, b: b["x"], heads, extra)

    return job


def stage2_job(name: str):
    def job(ctx: Context, upstream) -> Job:
        inputs = stage1.load_stage2_inputs(ctx, name)
        return emotion_job(ctx, lambda p, b: inputs[p], {})

    return job


def plan(ctx: Context) -> tuple[System, ...]:
    """The systems of ``ctx.settings.systems`` plus any stage-1 model they need.

    Order = priority among systems ready at the same time: the long chains first
    (stage 1 → stage 2), then the heavy curriculum DNN, then the rest.
    """
    s: DDATSettings = ctx.settings
    names = set(s.systems)
    wanted_s1 = {n for n in ("mtl_re", "mtl_pu") if n in names}
    needed_s1 = wanted_s1 | (
        {STAGE2[n][0] for n in names if n in STAGE2} if s.run_stage1 else set()
    )
    out: list[System] = []
    for s1 in ("mtl_re", "mtl_pu"):
        if s1 in needed_s1:
            out.append(
                System(
                    s1,
                    LABELS[s1],
                    mtl_job(AUX_HEAD[s1]),
                    after=stage1.write_stage1,
                    in_tables=s1 in wanted_s1,
                )
            )
    for s2 in ("ddat_re_vector", "ddat_re_sum", "ddat_pu"):
        if s2 in names:
            dep = STAGE2[s2][0]
            out.append(
                System(s2, LABELS[s2], stage2_job(s2), depends=(dep,) if dep in needed_s1 else ())
            )
    if "dnn" in names:
        out.append(System("dnn", "DNN", dnn_job))
    if "cl_dnn" in names:
        out.append(System("cl_dnn", "CL-DNN", stl_job, train=curriculum.train_cl_dnn))
    if "stl" in names:
        out.append(System("stl", "STL", stl_job))
    if "cl_gru" in names:
        # With an architecture search, CL-GRU searches its own (the curriculum per arch).
        out.append(System("cl_gru", "CL-GRU", stl_job, train=curriculum.train_cl_gru))
    return tuple(out)


def comparisons(labels) -> dict[str, dict[str, str]]:
    """Which baselines each row is tested against (DDAT vs its MTL and STL; others vs STL)."""
    by_label = {v: k for k, v in LABELS.items()}
    names = [by_label[label] for label in labels if label in by_label]
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


def upstream_arch(upstream: Mapping[str, Trained], default):
    """STL's kept architecture when STL was trained first, else ``default``."""
    return upstream["stl"].arch if "stl" in upstream else default
