"""The fc6/fc7 head on RoI-pooled features, shared by the teacher (WSDDN) and the student."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from kdwsd.boxes import rois_with_batch_index
from kdwsd.models.backbones import build_backbone

__all__ = ["RoIHead", "RoINetwork", "caffe_xavier_bound", "network_kwargs", "xavier_linear"]

log = logging.getLogger("kdwsd.models")


def caffe_xavier_bound(fan_in: int) -> float:
    """Caffe's ``xavier`` filler bound with its default ``variance_norm: FAN_IN``: ``sqrt(3 / fan_in)``.

    (Glorot's ``sqrt(6 / (fan_in + fan_out))``, torch's ``xavier_uniform_``, is not what Caffe draws.)
    """
    return math.sqrt(3.0 / fan_in)


def xavier_linear(cin: int, cout: int) -> nn.Linear:
    """A linear layer with Caffe's ``xavier`` weight filler, U(-sqrt(3/cin), +sqrt(3/cin)), and zero bias
    (the authors' fc8 init: ``weight_filler { type: "xavier" }``, ``bias_filler { type: "constant" }``)."""
    layer = nn.Linear(cin, cout)
    bound = caffe_xavier_bound(cin)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


class RoIHead(nn.Module):
    """RoI pooling → ×(box-score factor) → fc6 → ReLU → Dropout → fc7 → ReLU → Dropout.

    Args:
        in_channels: channels of the conv map.
        roi_size: pooled output side (7, as Fast R-CNN / the paper).
        hidden: fc6 / fc7 width (4096 for VGG16).
        dropout: dropout probability after fc6 and fc7.
        spatial_scale: conv-map scale relative to the input frame (1/16).
        box_score_scale, box_score_bias: each pooled map is multiplied by ``scale * s + bias`` where ``s``
            is the proposal score (paper HEAD prototxts: (1, 0); original WSDDN and the authors' earlier
            prototxt: (10, 1)).
        op: ``roi_pool`` (the paper's legacy max pooling) or ``roi_align``.
    """

    def __init__(
        self,
        in_channels: int,
        roi_size: int = 7,
        hidden: int = 4096,
        dropout: float = 0.5,
        spatial_scale: float = 1 / 16,
        box_score_scale: float = 1.0,
        box_score_bias: float = 0.0,
        op: str = "roi_pool",
    ) -> None:
        super().__init__()
        if op not in ("roi_pool", "roi_align"):
            raise ValueError(f"unknown RoI op '{op}'")
        self.roi_size, self.spatial_scale, self.op = roi_size, spatial_scale, op
        self.box_score_scale, self.box_score_bias = box_score_scale, box_score_bias
        self.fc6 = nn.Linear(in_channels * roi_size * roi_size, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(dropout)
        self.out_features = hidden

    def pool(self, fmap: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """fmap float[B, Ch, h, w], rois float[M, 5] (batch index, x1, y1, x2, y2) -> [M, Ch, k, k]."""
        k = (self.roi_size, self.roi_size)
        rois = rois.to(fmap.dtype)
        # Imported here: torchvision.ops imports torch._dynamo (~1 s), which a student's prediction never needs.
        from torchvision.ops import roi_align, roi_pool

        if self.op == "roi_pool":
            return roi_pool(fmap, rois, k, self.spatial_scale)
        return roi_align(fmap, rois, k, self.spatial_scale, sampling_ratio=2, aligned=False)

    def mlp(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled float[M, Ch, k, k] -> fc7 float[M, hidden] (post-ReLU, post-dropout)."""
        x = self.drop(torch.relu(self.fc6(pooled.flatten(1))))
        return self.drop(torch.relu(self.fc7(x)))

    def pool_valid(
        self, fmap: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RoI-pool the valid RoIs, before the box-score factor.

        Args:
            fmap: float[B, Ch, h, w]; boxes: float[B, R, 4] in the input frame; mask: bool[B, R].
        Returns:
            pooled float[M, Ch, k, k] for the M valid RoIs and their flat indices long[M] into ``B * R``.
        """
        rois, flat = rois_with_batch_index(boxes, mask)
        return self.pool(fmap, rois), flat

    def score_factor(
        self, box_scores: torch.Tensor, flat: torch.Tensor, box_score: tuple[float, float] | None = None
    ) -> torch.Tensor:
        """``scale * s + bias`` float[M] of the RoIs ``flat`` (box_scores float[B, R]); ``box_score`` =
        ``(scale, bias)`` overrides the head's own factor."""
        scale, bias = box_score if box_score is not None else (self.box_score_scale, self.box_score_bias)
        return scale * box_scores.reshape(-1)[flat] + bias

    def embed(self, pooled: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """pooled float[M, Ch, k, k] × factor float[M] -> fc7 float[M, hidden]."""
        pooled = pooled * factor.to(pooled.dtype)[:, None, None, None]
        return self.mlp(pooled)

    def forward(
        self,
        fmap: torch.Tensor,
        boxes: torch.Tensor,
        box_scores: torch.Tensor,
        mask: torch.Tensor,
        box_score: tuple[float, float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool and embed the valid RoIs.

        Args:
            fmap: float[B, Ch, h, w]; boxes: float[B, R, 4] in the input frame; box_scores: float[B, R];
                mask: bool[B, R]; box_score: ``(scale, bias)`` instead of the head's own factor.
        Returns:
            fc7 float[M, hidden] for the M valid RoIs, and their flat indices long[M] into ``B * R``.
        """
        pooled, flat = self.pool_valid(fmap, boxes, mask)
        return self.embed(pooled, self.score_factor(box_scores, flat, box_score)), flat


def network_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments shared by the teacher and the student, from a ``teacher``/``student`` section."""
    return {
        "backbone": cfg["backbone"], "pretrained": cfg["pretrained"],
        "widths": tuple(cfg["widths"]) if cfg["widths"] else None, "roi_size": cfg["roi_size"],
        "hidden": cfg["hidden"], "dropout": cfg["dropout"], "box_score_scale": cfg["box_score"]["scale"],
        "box_score_bias": cfg["box_score"]["bias"], "roi_op": cfg["roi_op"],
    }  # fmt: skip


class RoINetwork(nn.Module):
    """A stride-16 backbone with the fc6/fc7 :class:`RoIHead`; subclasses add their classifiers.

    The constructor arguments (minus ``pretrained``) are kept in ``self.arch`` so that a model file can
    rebuild the network without downloading weights.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str,
        pretrained: str,
        widths: tuple[int, ...] | None,
        roi_size: int,
        hidden: int,
        dropout: float,
        box_score_scale: float,
        box_score_bias: float,
        roi_op: str,
        **extra_arch: Any,
    ) -> None:
        super().__init__()
        self.arch: dict[str, Any] = {
            "num_classes": num_classes, "backbone": backbone, "widths": list(widths) if widths else None,
            "roi_size": roi_size, "hidden": hidden, "dropout": dropout, "box_score_scale": box_score_scale,
            "box_score_bias": box_score_bias, "roi_op": roi_op, **extra_arch,
        }  # fmt: skip
        self.backbone, fc = build_backbone(backbone, pretrained, widths)
        self.head = RoIHead(
            self.backbone.out_channels, roi_size, hidden, dropout, 1 / self.backbone.stride,
            box_score_scale, box_score_bias, roi_op,
        )  # fmt: skip
        if fc is not None:
            # The authors' fc6/fc7 keep VGG16's names and shapes, so Caffe loads them from the ImageNet
            # model; that only fits torchvision's classifier when the pooled map is 7x7x512 -> 4096.
            if roi_size == 7 and hidden == 4096:
                self.head.load_state_dict(fc, strict=True)
                log.info("fc6/fc7 initialised from the pretrained VGG16 classifier (%s)", pretrained)
            else:
                log.info("fc6/fc7 stay randomly initialised: pretrained VGG16 fc layers need roi_size 7 and "
                         "hidden 4096 (got roi_size %d, hidden %d)", roi_size, hidden)  # fmt: skip
