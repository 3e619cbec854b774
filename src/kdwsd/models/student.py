"""S-Cls: the low-resolution student classifier (a CNN + one linear classifier) with the RoI path used by
feature-level distillation and the learnable per-class inverse temperature τ of prediction-level KD."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from kdwsd.models.heads import RoINetwork, network_kwargs, xavier_linear

__all__ = ["StudentClassifier", "build_student", "student_input"]


class StudentClassifier(RoINetwork):
    """Backbone → pool5 → fc6 → fc7 → fc8 (K logits); plus ``roi_features`` for stage-1 KD.

    pool5 is an adaptive max pooling of the stride-16 map to ``roi_size²``: for VGG16 at 224 (14×14 →
    7×7) this is exactly VGG's 2×2 pool5, and it equals RoI-pooling a box spanning the whole conv map, so
    fc6/fc7 learned on RoIs in stage 1 carry over to whole images in stage 2 (as in the authors' prototxts).

    ``tau`` float[K] is the learnable per-class inverse temperature of the student's soft output
    σ(z ⊙ τ), initialised at 0.2 (the authors' "T = 5").
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "vgg16",
        pretrained: str = "none",
        widths: tuple[int, ...] | None = None,
        roi_size: int = 7,
        hidden: int = 4096,
        dropout: float = 0.5,
        tau_init: float = 0.2,
        box_score_scale: float = 1.0,
        box_score_bias: float = 0.0,
        roi_op: str = "roi_pool",
    ) -> None:
        super().__init__(num_classes, backbone, pretrained, widths, roi_size, hidden, dropout, box_score_scale,
                         box_score_bias, roi_op, tau_init=tau_init)  # fmt: skip
        self.fc8 = xavier_linear(hidden, num_classes)
        self.tau = nn.Parameter(torch.full((num_classes,), float(tau_init)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images float[B, 3, h, w] -> logits z float[B, K]."""
        fmap = self.backbone(images)
        pooled = F.adaptive_max_pool2d(fmap, self.head.roi_size)
        return self.fc8(self.head.mlp(pooled))

    def roi_features(
        self, images: torch.Tensor, boxes: torch.Tensor, box_scores: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage-1 path: RoI-pool the student's own conv map, then its fc6/fc7.

        Args:
            images float[B, 3, h, w]; boxes float[B, R, 4] in the student's frame; box_scores float[B, R];
            mask bool[B, R].
        Returns:
            fc7 float[M, D] of the valid RoIs and their flat indices long[M] into ``B * R``.
        """
        return self.head(self.backbone(images), boxes, box_scores, mask)

    @staticmethod
    def head_prefixes() -> tuple[str, ...]:
        """Newly initialised classifier (Caffe lr_mult 10)."""
        return ("fc8.",)


def student_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """float[B, 3, S, S] at the teacher frame -> float[B, 3, size, size] (Caffe ``Interp`` semantics:
    bilinear, ``align_corners=True``, no antialiasing)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=True)


def build_student(cfg: dict[str, Any], num_classes: int) -> StudentClassifier:
    """A student from the ``student`` config section."""
    return StudentClassifier(num_classes, tau_init=cfg["tau_init"], **network_kwargs(cfg))

