"""The students' training steps: KD stage 1 (RoI-feature distillation) and stage 2 (labels + prediction KD).

The student sees the same mirrored image as the teacher's cached pass (warped to the teacher frame), resized
in-network to its low resolution (:func:`kdwsd.models.student.student_input`). It reads the teacher only
through the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from kdwsd.boxes import map_boxes_floor
from kdwsd.losses import feature_distillation_loss, prediction_distillation_loss, sigmoid_bce
from kdwsd.modelfile import load_model_file
from kdwsd.models.student import StudentClassifier, student_input

__all__ = ["init_from_stage1", "stage1_step", "stage2_step"]

Step = Callable[[StudentClassifier, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


def stage1_step(size: int, frame: int) -> Step:
    """Paper Eq. 3: the student's RoI fc7 (boxes mapped ``floor(size·x/frame)``) regressed on the teacher's."""

    def step(model: StudentClassifier, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        boxes = map_boxes_floor(batch["boxes"], frame, size)
        fc7, flat = model.roi_features(student_input(batch["image"], size), boxes, batch["box_scores"],
                                       batch["mask"])  # fmt: skip
        target = batch["teacher_fc7"].reshape(-1, batch["teacher_fc7"].shape[-1])[flat]
        return feature_distillation_loss(fc7, target), {"rois": float(len(flat))}

    return step


def stage2_step(size: int, w_label: float, w_kd: float, use_kd: bool) -> Step:
    """Paper Eqs. 5 + 10: ``w_label·L_p + w_kd·L_p′`` (``L_p`` alone without prediction KD)."""

    def step(model: StudentClassifier, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z = model(student_input(batch["image"], size))
        label = sigmoid_bce(z, batch["labels"])
        if not use_kd:
            return label, {"label": label.item()}
        kd = prediction_distillation_loss(z, model.tau, batch["soft_targets"])
        terms = {"label": label.item(), "kd": kd.item(), "tau_mean": model.tau.mean().item()}
        return w_label * label + w_kd * kd, terms

    return step


def init_from_stage1(model: StudentClassifier, stage1_model: Path | str) -> None:
    """Load the stage-1 student's backbone and fc6/fc7 into ``model`` (fc8 and τ stay new, as in the
    authors' stage-2 prototxt, whose layer names match stage 1 except the classifier)."""
    state = load_model_file(stage1_model)["model"]
    kept = {k: v for k, v in state.items() if not k.startswith(("fc8.", "tau"))}
    missing = model.load_state_dict(kept, strict=False).missing_keys
    if sorted(missing) != ["fc8.bias", "fc8.weight", "tau"]:
        raise ValueError(f"{stage1_model}: not a stage-1 student of this architecture (missing keys {missing})")
