"""Stages of ``workflow/rules/student.smk``: KD stage 1 (shared by the students that use it) and stage 2."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from kdwsd.stages.dataset import checked_split, prepared_dir

log = logging.getLogger("kdwsd")

__all__ = ["equal_compute_optim", "student", "student_stage1"]


def student_stage1(
    *, data: list[str], model: str, curve: str, seed: str | int, network: dict[str, Any], size: int,
    distilled_rois: int | str, targets: str, optim: dict[str, Any], precision: str, norm: str, device: str,
    checkpoints: str, cache: list[str] | None = None, teacher: list[str] | None = None,
    proposals: list[str] | None = None, frame: int | None = None, teacher_rois: int | None = None,
    feature_box_score: dict[str, float] | None = None, teacher_precision: str = "fp32", on_bad_image: str = "error",
    loader_workers: int = 0, frame_cache_mb: float = 0,
) -> None:  # fmt: skip
    """KD stage 1, RoI-feature distillation (paper Eq. 3): the student's RoI fc7 regressed on the teacher's.
    No classifier, no labels.

    ``targets``: ``cache`` reads the teacher fc7 of the top ``distilled_rois`` cached RoIs from ``cache``;
    ``live`` runs the frozen ``teacher`` in the loop on the first ``distilled_rois`` of its ``teacher_rois``
    ``proposals`` per image (all of them by default, as the paper), at ``frame``, with the stage-1 factor
    ``feature_box_score`` and ``teacher_precision`` (no feature storage: one teacher forward per step).
    """
    from kdwsd.data.dataset import MultiLabelImages
    from kdwsd.device import GPU_SLOT_DIR, job_device
    from kdwsd.distill.cache import open_teacher_cache
    from kdwsd.modelfile import student_metadata
    from kdwsd.models.student import build_student
    from kdwsd.train.loop import OptimConfig, file_fingerprint, valid_rois_in_batch
    from kdwsd.train.recipe import train_and_save
    from kdwsd.train.student import stage1_step

    device = str(job_device(device, where="config key device", slot_dir=GPU_SLOT_DIR))
    seed = int(seed)
    data_dir = prepared_dir(data)
    split = checked_split(data, "train", on_bad_image, model)
    rois = None if distilled_rois == "all" else int(distilled_rois)
    wrap = None
    if targets == "cache":
        if not cache:
            raise ValueError("student.stage1.teacher is 'cache' but the rule gave no cache")
        teacher_cache = open_teacher_cache(cache[0])
        feature_dim, frame = teacher_cache.feature_dim, teacher_cache.frame_size
        dataset = MultiLabelImages(split, norm, cache=teacher_cache, distill_rois=rois, frame_cache_mb=frame_cache_mb)
        inputs = [data_dir, cache[0]]
    elif targets == "live":
        from kdwsd.distill.live import LiveTeacher, with_live_targets
        from kdwsd.models.io import load_teacher
        from kdwsd.proposals.store import ProposalStore

        if not (teacher and proposals and frame and teacher_rois and feature_box_score):
            raise ValueError("student.stage1.teacher is 'live': the rule must give the teacher, its proposals, "
                             "frame, teacher_rois and feature_box_score")  # fmt: skip
        frozen = load_teacher(teacher[0])
        feature_dim = frozen.head.out_features
        n = teacher_rois if rois is None else min(rois, teacher_rois)
        dataset = MultiLabelImages(split, norm, ProposalStore(proposals), rois=n, frame_cache_mb=frame_cache_mb)
        factor = (feature_box_score["scale"], feature_box_score["bias"])

        def wrap(step: Any, dev: Any) -> Any:
            return with_live_targets(step, LiveTeacher(frozen, factor, teacher_precision).to(dev))

        inputs = [data_dir, teacher[0], *proposals]
        log.info("stage-1 targets: the frozen teacher live on %d RoIs per image, box-score factor %s", n, factor)
    else:
        raise ValueError(f"student.stage1.teacher must be 'cache' or 'live', got {targets!r}")
    if feature_dim != network["hidden"]:
        raise ValueError(f"student.hidden ({network['hidden']}) must equal the teacher's fc7 width "
                         f"({feature_dim}) for feature distillation")  # fmt: skip

    def build() -> Any:
        m = build_student(network, len(split.classes))
        m.fc8.requires_grad_(False)  # stage 1 has no classifier
        m.tau.requires_grad_(False)
        return m

    recipe = {"network": network, "size": size, "distilled_rois": distilled_rois, "targets": targets,
              "optim": optim, "precision": precision, "norm": norm}  # fmt: skip
    train_and_save(
        build=build, dataset=dataset, sizes=[frame], flip=True, seed=seed, optim=OptimConfig.from_dict(optim),
        step=stage1_step(size, frame), head_prefixes=(), lr_mults=None, device=device, checkpoint_dir=checkpoints,
        curve=curve, out_model=model, fingerprint={"stage1": recipe, "seed": seed, "inputs": file_fingerprint(inputs)},
        metadata=student_metadata(classes=split.classes, config=recipe, norm=norm, frame_size=frame, seed=seed,
                                  experiment="stage1"),
        loader_workers=loader_workers, desc="student stage 1", precision=precision, normaliser=valid_rois_in_batch,
        wrap_step=wrap,
    )  # fmt: skip


def equal_compute_optim(optim: dict[str, Any], stage1_optim: dict[str, Any], num_images: int) -> dict[str, Any]:
    """The stage-2 schedule lengthened by as many epochs as stage 1's optimiser steps take at the stage-2
    batch size (rounded up), with the learning-rate steps shifted by the same number of epochs: the
    equal-compute control of the ``baseline_long`` experiment."""
    stage1_steps = stage1_optim["epochs"] * math.ceil(num_images / stage1_optim["batch_size"])
    extra = math.ceil(stage1_steps / math.ceil(num_images / optim["batch_size"]))
    return {**optim, "epochs": optim["epochs"] + extra, "lr_steps": [s + extra for s in optim["lr_steps"]]}


def student(
    *, data: list[str], stage1: list[str], cache: list[str], model: str, curve: str, experiment: str,
    seed: int, network: dict[str, Any], size: int, frame: int, tau_lr_mult: float,
    loss_weights: dict[str, float] | None,
    optim: dict[str, Any], stage1_optim: dict[str, Any] | None, precision: str, norm: str, device: str,
    checkpoints: str, val_every: int = 0, on_bad_image: str = "error", loader_workers: int = 0,
    frame_cache_mb: float = 0,
) -> None:  # fmt: skip
    """Stage 2 of one experiment (:data:`kdwsd.experiments.EXPERIMENTS`): label training, plus prediction KD
    (paper Eqs. 5 + 10) for the experiments that use it, starting from the ``stage1`` student for those that
    run stage 1. ``cache`` is empty for experiments without prediction KD, ``stage1`` for those without
    stage 1; ``stage1_optim`` is used by the equal-compute baseline only. With ``val_every`` > 0 and a ``val``
    split, the training curve gets the validation mAP every ``val_every`` epochs (and after the last)."""
    from kdwsd.data.dataset import MultiLabelImages
    from kdwsd.device import GPU_SLOT_DIR, job_device
    from kdwsd.distill.cache import open_teacher_cache
    from kdwsd.experiments import experiment as lookup
    from kdwsd.modelfile import student_metadata
    from kdwsd.models.student import StudentClassifier, build_student
    from kdwsd.train.loop import OptimConfig, file_fingerprint
    from kdwsd.train.recipe import train_and_save
    from kdwsd.train.student import init_from_stage1, stage2_step

    exp = lookup(experiment)
    if exp.stage1 != bool(stage1) or exp.prediction_kd != bool(cache):
        raise ValueError(f"experiment '{experiment}' needs stage1={exp.stage1}, cache={exp.prediction_kd}; "
                         f"the rule gave stage1={stage1}, cache={cache}")  # fmt: skip
    device = str(job_device(device, where="config key device", slot_dir=GPU_SLOT_DIR))
    data_dir = prepared_dir(data)
    split = checked_split(data, "train", on_bad_image, model)
    teacher_cache = open_teacher_cache(cache[0]) if exp.prediction_kd else None
    dataset = MultiLabelImages(split, norm, cache=teacher_cache, distill_rois=0, with_features=False,
                               frame_cache_mb=frame_cache_mb)  # fmt: skip
    if exp.equal_compute:
        if stage1_optim is None:
            raise ValueError(f"experiment '{experiment}' needs stage1_optim (the schedule it matches)")
        optim = equal_compute_optim(optim, stage1_optim, len(split))

    def build() -> StudentClassifier:
        m = build_student(network, len(split.classes))
        if exp.stage1:
            init_from_stage1(m, stage1[0])
        if not exp.prediction_kd:
            m.tau.requires_grad_(False)
        return m

    epoch_end = _validation_curve(data_dir, norm, frame, size, optim["epochs"], val_every, device, frame_cache_mb)
    weights = loss_weights if exp.prediction_kd and loss_weights else {"label": 1.0, "kd": 0.0}
    recipe = {"network": network, "size": size, "frame": frame, "tau_lr_mult": tau_lr_mult, "loss_weights": weights,
              "optim": optim, "precision": precision, "norm": norm}  # fmt: skip
    train_and_save(
        build=build, dataset=dataset, sizes=[frame], flip=True, seed=seed, optim=OptimConfig.from_dict(optim),
        step=stage2_step(size, weights["label"], weights["kd"], exp.prediction_kd),
        head_prefixes=StudentClassifier.head_prefixes(), lr_mults={"tau": (tau_lr_mult, 0.0)}, device=device,
        checkpoint_dir=checkpoints, curve=curve, out_model=model,
        fingerprint={"student": recipe, "experiment": experiment, "seed": seed,
                     "inputs": file_fingerprint([data_dir, *cache, *stage1])},
        metadata=student_metadata(classes=split.classes, config=recipe, norm=norm, frame_size=frame, seed=seed,
                                  experiment=experiment),
        loader_workers=loader_workers, desc=experiment, precision=precision, epoch_end=epoch_end,
    )  # fmt: skip


def _validation_curve(
    data_dir: Any, norm: str, frame: int, size: int, epochs: int, every: int, device: str, frame_cache_mb: float = 0
) -> Callable[[Any, int], dict[str, Any]] | None:
    """The ``epoch_end`` hook adding ``val_mAP`` (the ``val`` split, never the evaluation split) to a student's
    training curve every ``every`` epochs and after the last; None without a ``val`` split or with ``every`` 0."""
    from kdwsd.data.dataset import MultiLabelImages
    from kdwsd.data.prepared import load_split, split_names
    from kdwsd.device import resolve_device
    from kdwsd.evaluate import student_scores
    from kdwsd.metrics import multilabel_metrics

    if every <= 0 or "val" not in split_names(data_dir):
        return None
    val, dev = load_split(data_dir, "val"), resolve_device(device, where="config key device")
    images = MultiLabelImages(val, norm, frame_cache_mb=frame_cache_mb)  # one dataset: its frames are kept

    def hook(model: Any, done: int) -> dict[str, Any]:
        if done % every and done != epochs:
            return {"val_mAP": ""}
        scores = student_scores(model, val, norm, frame, size, dev, progress=False, dataset=images)
        return {"val_mAP": multilabel_metrics(scores, val.labels)["mAP"]}

    return hook
