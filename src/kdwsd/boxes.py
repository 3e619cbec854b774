"""Box geometry between frames: original image -> warped network input -> student input, and flips.

All boxes are ``x1, y1, x2, y2`` in the inclusive-pixel convention of Caffe / Fast R-CNN (``x2`` is the
last covered column), which is what ``torchvision.ops.roi_pool`` expects (it adds 1 to the width).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["flip_boxes", "iou_inclusive", "map_boxes_floor", "rois_with_batch_index", "warp_boxes"]


def warp_boxes(boxes: np.ndarray, orig_hw: tuple[int, int], size: int) -> np.ndarray:
    """Map boxes from the original ``(H, W)`` image to the image warped (no aspect kept) to ``size²``.

    Args:
        boxes: float[N, 4] in original pixels.
    Returns:
        float32[N, 4], truncated to integers as the authors' data layer does (``int(x * f)``), clipped to
        ``[0, size - 1]``.
    """
    h, w = orig_hw
    f = np.array([size / w, size / h, size / w, size / h], dtype=np.float64)
    out = np.floor(np.asarray(boxes, dtype=np.float64) * f)
    return np.clip(out, 0, size - 1).astype(np.float32)


def flip_boxes(boxes: np.ndarray | torch.Tensor, width: int) -> np.ndarray | torch.Tensor:
    """Horizontal flip in a frame of ``width`` pixels: ``x1' = W - 1 - x2``, ``x2' = W - 1 - x1``.

    Args:
        boxes: [..., 4]. Returns the same type and shape.
    """
    out = boxes.clone() if isinstance(boxes, torch.Tensor) else np.array(boxes, copy=True)
    out[..., 0] = width - 1 - boxes[..., 2]
    out[..., 2] = width - 1 - boxes[..., 0]
    return out


def map_boxes_floor(boxes: torch.Tensor, src_size: int, dst_size: int) -> torch.Tensor:
    """Map boxes between two square frames, ``x' = floor(dst * x / src)`` for all four coordinates.

    This is the authors' ``WsdRoigenSingleScale`` mapping of the teacher's 672 frame to the student's 224.

    Args:
        boxes: float[..., 4] in the ``src_size`` frame. Returns float[..., 4] in the ``dst_size`` frame.
    """
    return torch.floor(boxes * (dst_size / src_size))


def rois_with_batch_index(boxes: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack padded per-image boxes into the ``[M, 5]`` (batch index, x1, y1, x2, y2) format of torchvision.

    Args:
        boxes: float[B, R, 4]; mask: bool[B, R] marking the valid rows.
    Returns:
        rois float[M, 5] and the flat indices long[M] of the valid rows in ``B * R`` order.
    """
    b, r, _ = boxes.shape
    flat = mask.reshape(-1).nonzero(as_tuple=True)[0]
    batch_index = (flat // r).to(boxes.dtype)
    rois = torch.cat([batch_index[:, None], boxes.reshape(b * r, 4)[flat]], dim=1)
    return rois, flat


def iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of inclusive-pixel boxes (width = x2 - x1 + 1), broadcast over the leading dimensions.

    Args:
        a, b: float[..., 4] ``x1, y1, x2, y2``; ``a[:, None]`` and ``b[None]`` give the pairwise [N, M] matrix.
    Returns:
        float64[...]; a degenerate box has area 0 (IoU 0); NaN coordinates give NaN.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1.0
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1.0
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = np.clip(a[..., 2] - a[..., 0] + 1.0, 0.0, None) * np.clip(a[..., 3] - a[..., 1] + 1.0, 0.0, None)
    area_b = np.clip(b[..., 2] - b[..., 0] + 1.0, 0.0, None) * np.clip(b[..., 3] - b[..., 1] + 1.0, 0.0, None)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.where(np.isnan(union), np.nan, 0.0))


def frame_to_original(boxes: np.ndarray, orig_hw: tuple[int, int] | np.ndarray, frame: int) -> np.ndarray:
    """Boxes float[..., 4] in the square ``frame``-pixel warp back to the original image's pixels
    (``x · W / frame``, ``y · H / frame``): how the teacher's boxes are reported (CorLoc, figures)."""
    h, w = orig_hw
    return (boxes * np.array([w, h, w, h], np.float32) / frame).astype(np.float32)
