"""Stage: the student experiments — baseline, feature KD (stage 1), prediction KD (stage 2) and both.

The student sees the same mirrored image as the teacher's cached pass (warped to the cache frame), resized
in-network to its low resolution with bilinear interpolation, ``align_corners=True`` and no antialiasing
(the authors' Caffe ``Interp`` layer). It reads the teacher only through the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from kdwsd.boxes import map_boxes_floor
from kdwsd.data.dataset import MultiLabelImages, epoch_loader
from kdwsd.data.prepared import load_split
from kdwsd.distill.cache import TeacherCache
from kdwsd.losses import feature_distillation_loss, prediction_distillation_loss, sigmoid_bce
from kdwsd.modelfile import student_metadata
from kdwsd.models.heads import network_kwargs
from kdwsd.models.student import StudentClassifier
from kdwsd.train.loop import (
    OptimConfig,
    caffe_param_groups,
    clear_checkpoint,
    file_fingerprint,
    fit,
    load_model_file,
    pick_device,
    save_model_file,
    seed_everything,
)

__all__ = ["EXPERIMENTS", "build_student", "load_student", "student_input", "train_stage1", "train_student"]

log = logging.getLogger("kdwsd.train")

# experiment -> (initialise from the stage-1 model?, use the prediction-KD loss?)
EXPERIMENTS: dict[str, tuple[bool, bool]] = {
    "baseline": (False, False),
    "kd_feature": (True, False),
    "kd_prediction": (False, True),
    "kd_full": (True, True),
}


def build_student(cfg: dict[str, Any], num_classes: int) -> StudentClassifier:
    """A student from the ``student`` config section."""
    return StudentClassifier(num_classes, tau_init=cfg["tau_init"], **network_kwargs(cfg))


def load_student(path: Path | str) -> StudentClassifier:
    """Rebuild a trained student from its model file."""
    state = load_model_file(path)
    model = StudentClassifier(pretrained="none", **state["arch"])
    model.load_state_dict(state["model"])
    return model.eval()


def student_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """float[B, 3, S, S] at the teacher frame -> float[B, 3, size, size] (Caffe Interp semantics)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=True)


def _stage1_step(size: int, frame: int) -> Callable:
    def step(model: StudentClassifier, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        boxes = map_boxes_floor(batch["boxes"], frame, size)
        fc7, flat = model.roi_features(student_input(batch["image"], size), boxes, batch["box_scores"],
                                       batch["mask"])  # fmt: skip
        target = batch["teacher_fc7"].reshape(-1, batch["teacher_fc7"].shape[-1])[flat]
        return feature_distillation_loss(fc7, target), {"rois": float(len(flat))}

    return step


def _stage2_step(size: int, w_label: float, w_kd: float, use_kd: bool) -> Callable:
    def step(model: StudentClassifier, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z = model(student_input(batch["image"], size))
        label = sigmoid_bce(z, batch["labels"])
        if not use_kd:
            return label, {"label": label.item()}
        kd = prediction_distillation_loss(z, model.tau, batch["soft_targets"])
        terms = {"label": label.item(), "kd": kd.item(), "tau_mean": model.tau.mean().item()}
        return w_label * label + w_kd * kd, terms

    return step


def train_stage1(
    cfg: dict[str, Any],
    seed: int,
    data_dir: Path | str,
    cache_dir: Path | str,
    out_model: Path | str,
    checkpoint_dir: Path | str,
    log_csv: Path | str,
    norm: str,
    device: str = "auto",
) -> None:
    """KD stage 1: RoI-feature distillation (paper Eq. 3). No classifier, no labels."""
    seed_everything(seed)
    dev = pick_device(device)
    split = load_split(data_dir, "train")
    cache = TeacherCache(cache_dir)
    if cache.feature_dim != cfg["hidden"]:
        raise ValueError(f"student.hidden ({cfg['hidden']}) must equal the teacher's fc7 width "
                         f"({cache.feature_dim}) for feature distillation")  # fmt: skip
    rois = None if cfg["stage1"]["rois"] == "all" else int(cfg["stage1"]["rois"])
    dataset = MultiLabelImages(split, norm, cache=cache, cache_rois=rois)
    optim = OptimConfig.from_dict(cfg["stage1"]["optim"])
    batches = epoch_loader(dataset, optim.batch_size, [cache.frame_size], True, seed, cfg.get("loader_workers", 0))
    model = build_student(cfg, len(split.classes))
    model.fc8.requires_grad_(False)  # stage 1 has no classifier
    model.tau.requires_grad_(False)
    groups = caffe_param_groups(model, optim, ())
    fit(model, _stage1_step(cfg["size"], cache.frame_size), batches, optim, groups, checkpoint_dir, log_csv,
        dev, fingerprint={"stage1": cfg, "seed": seed, "norm": norm,
                          "inputs": file_fingerprint([data_dir, cache_dir])},
        desc="student stage 1")  # fmt: skip
    save_model_file(out_model, model, {"classes": split.classes, "config": cfg, "norm": norm, "seed": seed})
    clear_checkpoint(checkpoint_dir)


def train_student(
    experiment: str,
    cfg: dict[str, Any],
    seed: int,
    data_dir: Path | str,
    cache_dir: Path | str | None,
    stage1_model: Path | str | None,
    out_model: Path | str,
    checkpoint_dir: Path | str,
    log_csv: Path | str,
    norm: str,
    frame_size: int,
    device: str = "auto",
) -> None:
    """Label training, with prediction KD (paper Eqs. 5 + 10) for ``kd_prediction`` / ``kd_full``.

    ``kd_feature`` / ``kd_full`` start from the stage-1 student (backbone + fc6/fc7; fc8 and τ new).
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment '{experiment}' (expected one of {sorted(EXPERIMENTS)})")
    from_stage1, use_kd = EXPERIMENTS[experiment]
    seed_everything(seed)
    dev = pick_device(device)
    split = load_split(data_dir, "train")
    cache = TeacherCache(cache_dir) if use_kd else None
    dataset = MultiLabelImages(split, norm, cache=cache, cache_rois=0, with_features=False)
    optim = OptimConfig.from_dict(cfg["optim"])
    batches = epoch_loader(dataset, optim.batch_size, [frame_size], True, seed, cfg.get("loader_workers", 0))
    model = build_student(cfg, len(split.classes))
    if from_stage1:
        if stage1_model is None:
            raise ValueError(f"experiment '{experiment}' needs the stage-1 student model")
        state = load_model_file(stage1_model)["model"]
        kept = {k: v for k, v in state.items() if not k.startswith(("fc8.", "tau"))}
        missing = model.load_state_dict(kept, strict=False).missing_keys
        if sorted(missing) != ["fc8.bias", "fc8.weight", "tau"]:
            raise ValueError(f"{stage1_model}: unexpected missing keys {missing}")
    extra = {"tau": (cfg["tau_lr_mult"], 0.0)}
    if not use_kd:
        model.tau.requires_grad_(False)
    groups = caffe_param_groups(model, optim, StudentClassifier.head_prefixes(), extra)
    weights = cfg["loss_weights"] if use_kd else {"label": 1.0, "kd": 0.0}
    step = _stage2_step(cfg["size"], weights["label"], weights["kd"], use_kd)
    inputs = [data_dir] + ([cache_dir] if use_kd else []) + ([stage1_model] if from_stage1 else [])
    fit(model, step, batches, optim, groups, checkpoint_dir, log_csv, dev,
        fingerprint={"student": cfg, "experiment": experiment, "seed": seed, "norm": norm,
                     "inputs": file_fingerprint(inputs)},
        desc=experiment)  # fmt: skip
    save_model_file(out_model, model, student_metadata(classes=split.classes, config=cfg, norm=norm,
                                                       frame_size=frame_size, seed=seed, experiment=experiment))
    clear_checkpoint(checkpoint_dir)
