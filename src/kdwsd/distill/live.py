"""A live (frozen) teacher for KD stage 1: fc7 targets computed on the fly instead of read from the cache.

The stored cache holds ``N × 2 orientations × K × D`` fp16 features; for COCO with all 500 RoIs that is
~670 GB, which is why the cached COCO config keeps only the top 16. Running the frozen teacher alongside
the student distils all RoIs at the cost of one teacher forward pass per step (no backward).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kdwsd.device import autocast
from kdwsd.models.teacher import WSDDN

__all__ = ["LiveTeacher", "with_live_targets"]

Batch = dict[str, torch.Tensor]
StepFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]


class LiveTeacher:
    """The frozen, eval-mode teacher returning stage-1 fc7 targets.

    Args:
        teacher: a trained :class:`WSDDN`; it is put in eval mode and its parameters are frozen.
        box_score: ``(scale, bias)`` of the box-score factor for fc7 (the stage-1 prototxt applies the
            student's (1, 0) on both branches); None = the teacher's own training factor.
        precision: autocast of the teacher pass (``fp32`` default; ``bf16`` / ``fp16`` on CUDA only).
    """

    def __init__(
        self, teacher: WSDDN, box_score: tuple[float, float] | None = (1.0, 0.0), precision: str = "fp32"
    ) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.box_score = box_score
        self.precision = precision

    def to(self, device: torch.device | str) -> LiveTeacher:
        self.teacher.to(device)
        return self

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, boxes: torch.Tensor, box_scores: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """fc7 targets float32[B, R, D] (zeros where ``mask`` is False), no gradient.

        Args:
            images: float[B, 3, S, S] at the teacher frame; boxes: float[B, R, 4] in that frame;
            box_scores: float[B, R]; mask: bool[B, R].
        """
        self.teacher.eval()  # a caller's model.train() must not switch the teacher's dropout on
        with autocast(images.device, self.precision):
            out = self.teacher(images, boxes, box_scores, mask, fc7_box_score=self.box_score)
        return out.fc7.float()


def with_live_targets(step: StepFn, teacher: LiveTeacher) -> StepFn:
    """Wrap a stage-1 step that reads ``batch["teacher_fc7"]`` [B, R, D] (the cache's) so that the targets
    come from ``teacher`` on the batch's own ``image`` / ``boxes`` / ``box_scores`` / ``mask`` instead."""

    def live_step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        targets = teacher(batch["image"], batch["boxes"], batch["box_scores"], batch["mask"])
        return step(model, {**batch, "teacher_fc7": targets})

    return live_step
