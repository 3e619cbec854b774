"""The teacher's training step: WSDDN forward and BCE on image labels (the only supervision)."""

from __future__ import annotations

import torch

from kdwsd.losses import wsddn_bce
from kdwsd.models.teacher import WSDDN, wsddn_scores

__all__ = ["teacher_step"]


def teacher_step(model: WSDDN, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """WSDDN forward + BCE on image labels (paper step 1)."""
    out = model(batch["image"], batch["boxes"], batch["box_scores"], batch["mask"])
    _, scores = wsddn_scores(out.cls_logits, out.det_logits, out.mask)
    return wsddn_bce(scores, batch["labels"]), {}
