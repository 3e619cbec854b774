"""T-WDet: the weakly-supervised detection teacher (WSDDN, Bilen & Vedaldi 2016) as the paper uses it.

conv features (stride 16) → RoI pooling ×(box-score factor) → fc6/fc7 → two heads ``fc8_c`` and
``fc8_d`` → softmax over classes (classification stream) ⊙ softmax over regions (detection stream) →
sum over regions = image-level scores in (0, 1). Trained with binary cross-entropy on image labels only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from kdwsd.models.heads import RoINetwork, network_kwargs, xavier_linear

__all__ = ["WSDDN", "WSDDNOutput", "build_teacher", "objectness", "wsddn_scores"]


@dataclass
class WSDDNOutput:
    """Padded per-RoI outputs; rows where ``mask`` is False are meaningless.

    cls_logits, det_logits: float[B, R, C] (M^c, M^d); fc7: float[B, R, D] (at the requested box-score
    factor, see :meth:`WSDDN.forward`); mask: bool[B, R].
    """

    cls_logits: torch.Tensor
    det_logits: torch.Tensor
    fc7: torch.Tensor
    mask: torch.Tensor


def wsddn_scores(
    cls_logits: torch.Tensor,
    det_logits: torch.Tensor,
    mask: torch.Tensor,
    t_cls: float = 1.0,
    t_det: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """WSDDN scoring with temperatures (paper Eqs. 1–2 at t = 1; the KD soft target p′ᵀ at t = 0.5).

    ``S = softmax_classes(M^c / t_cls) ⊙ softmax_regions(M^d / t_det)``, ``s_k = Σ_r S_rk``.

    Args:
        cls_logits, det_logits: float[B, R, C]; mask: bool[B, R] (padding RoIs get no detection mass).
    Returns:
        region scores S float[B, R, C] (0 on padding) and image scores float[B, C] in [0, 1].
    """
    sc = torch.softmax(cls_logits.float() / t_cls, dim=2)
    det = (det_logits.float() / t_det).masked_fill(~mask[..., None], float("-inf"))
    sd = torch.softmax(det, dim=1)
    s = (sc * sd).masked_fill(~mask[..., None], 0.0)
    return s, s.sum(dim=1)


def objectness(region_scores: torch.Tensor, mode: str = "sum") -> torch.Tensor:
    """Per-RoI objectness s′ from the detection map S float[B, R, C] -> float[B, R].

    The paper's Eq. 4 is not available; ``sum`` (Σ_k S_rk) and ``max`` (max_k S_rk) are the two readings.
    """
    if mode == "sum":
        return region_scores.sum(dim=2)
    if mode == "max":
        return region_scores.amax(dim=2)
    raise ValueError(f"unknown objectness mode '{mode}' (expected 'sum' or 'max')")


class WSDDN(RoINetwork):
    """The teacher network. Constructor arguments are stored in ``self.arch`` for checkpoints."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "vgg16",
        pretrained: str = "none",
        widths: tuple[int, ...] | None = None,
        roi_size: int = 7,
        hidden: int = 4096,
        dropout: float = 0.5,
        box_score_scale: float = 10.0,
        box_score_bias: float = 1.0,
        roi_op: str = "roi_pool",
    ) -> None:
        super().__init__(num_classes, backbone, pretrained, widths, roi_size, hidden, dropout, box_score_scale,
                         box_score_bias, roi_op)  # fmt: skip
        self.fc8_c = xavier_linear(hidden, num_classes)
        self.fc8_d = xavier_linear(hidden, num_classes)

    def forward(
        self,
        images: torch.Tensor,
        boxes: torch.Tensor,
        box_scores: torch.Tensor,
        mask: torch.Tensor,
        fc7_box_score: tuple[float, float] | None = None,
    ) -> WSDDNOutput:
        """images float[B, 3, H, W]; boxes float[B, R, 4] in the image frame; box_scores float[B, R];
        mask bool[B, R].

        ``fc7_box_score`` = ``(scale, bias)``: the returned ``fc7`` is computed with this box-score factor
        (e.g. the stage-1 prototxt's (1, 0)) from the same pooled features, while the logits keep the
        teacher's own factor; one backbone pass either way.
        """
        fmap = self.backbone(images)
        pooled, flat = self.head.pool_valid(fmap, boxes, mask)
        fc7 = self.head.embed(pooled, self.head.score_factor(box_scores, flat))
        fc7_out = fc7 if fc7_box_score is None else self.head.embed(
            pooled, self.head.score_factor(box_scores, flat, fc7_box_score))  # fmt: skip
        b, r = mask.shape
        c = self.fc8_c.out_features

        def scatter(x: torch.Tensor, width: int) -> torch.Tensor:
            out = x.new_zeros(b * r, width)
            out[flat] = x
            return out.view(b, r, width)

        return WSDDNOutput(
            cls_logits=scatter(self.fc8_c(fc7), c),
            det_logits=scatter(self.fc8_d(fc7), c),
            fc7=scatter(fc7_out, fc7_out.shape[1]),
            mask=mask,
        )

    @staticmethod
    def head_prefixes() -> tuple[str, ...]:
        """Parameter-name prefixes of the newly initialised classifier heads (Caffe lr_mult 10)."""
        return ("fc8_c.", "fc8_d.")


def build_teacher(cfg: dict[str, Any], num_classes: int) -> WSDDN:
    """A WSDDN from the ``teacher`` config section."""
    return WSDDN(num_classes, **network_kwargs(cfg))

