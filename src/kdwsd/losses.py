"""The paper's losses, with the Caffe normalisations of the authors' prototxts (see METHOD.md §3, §5, §6).

Every classification loss is a sum over classes divided by the batch size (Caffe's
``SigmoidCrossEntropyLoss`` / the authors' ``CrossEntropyLoss``), not a mean over classes; there is no
T² factor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

__all__ = ["feature_distillation_loss", "prediction_distillation_loss", "sigmoid_bce", "wsddn_bce"]


class _ClampMinStraightThrough(torch.autograd.Function):
    """``max(x, eps)`` forward (exactly), identity backward: Caffe's ``CrossEntropyLoss`` clamps only the
    value inside the log, its backward divides by the clamped value but never zeroes the gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, eps: float) -> torch.Tensor:
        return x.clamp_min(eps)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def wsddn_bce(image_scores: torch.Tensor, labels: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Teacher loss (paper step 1): ``-(1/B) Σ_b Σ_k [y log max(s, ε) + (1-y) log max(1-s, ε)]``.

    The backward pass is the authors' Caffe ``CrossEntropyLoss``:
    ``dL/ds = -(y / max(s, ε) - (1-y) / max(1-s, ε)) / B``, also where the clamp is active (a plain
    ``clamp_min`` would give zero gradient there, so a confidently wrong score would never be corrected).

    Args:
        image_scores: float[B, C] in [0, 1] (WSDDN sums over regions); labels: {0, 1} float[B, C].
    """
    s = image_scores.float()
    y = labels.float()
    clamp = _ClampMinStraightThrough.apply
    loss = y * torch.log(clamp(s, eps)) + (1 - y) * torch.log(clamp(1 - s, eps))
    return -loss.sum() / s.shape[0]


def sigmoid_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``L_p`` (paper Eq. 5): numerically stable BCE on logits, summed over classes, divided by B.

    Args:
        logits: float[B, C]; targets: float[B, C] in [0, 1] (hard labels or soft targets).
    """
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="sum") / len(logits)


def prediction_distillation_loss(
    logits: torch.Tensor, tau: torch.Tensor, soft_targets: torch.Tensor
) -> torch.Tensor:
    """``L_p′`` (paper Eq. 10): ``BCE(σ(z ⊙ τ), p′ᵀ)`` summed over classes / B.

    Args:
        logits: student logits z float[B, C]; tau: learnable inverse temperature float[C];
        soft_targets: the cached teacher p′ᵀ float[B, C] (no gradient).
    """
    return sigmoid_bce(logits * tau, soft_targets.detach())


def feature_distillation_loss(student_fc7: torch.Tensor, teacher_fc7: torch.Tensor) -> torch.Tensor:
    """``L_f`` (paper Eq. 3, Caffe ``EuclideanLoss``): ``1/(2 N_roi) Σ ‖h^T - h^S‖²``.

    Args:
        student_fc7, teacher_fc7: float[N_roi, D] — all valid RoIs of the batch stacked.
    """
    if student_fc7.shape != teacher_fc7.shape:
        raise ValueError(
            f"feature KD: student fc7 {tuple(student_fc7.shape)} vs teacher {tuple(teacher_fc7.shape)}; "
            "student.hidden must equal teacher.hidden"
        )
    n = max(student_fc7.shape[0], 1)
    diff = student_fc7.float() - teacher_fc7.detach().float()
    return diff.pow(2).sum() / (2 * n)
