"""Proposal quality control: IoU, recall at IoU thresholds, and the ``qc.csv`` row.

Box convention: boxes are ``x1, y1, x2, y2`` in the **inclusive-pixel** convention (Caffe / Fast R-CNN,
``docs/formats.md``): a box covers pixels ``x1..x2`` and ``y1..y2``, so its width is ``x2 - x1 + 1``.
:func:`box_iou` therefore computes the standard continuous IoU of ``[x1, y1, x2 + 1, y2 + 1]``, as the
VOC and Fast R-CNN code do; a one-pixel box has area 1, not 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from kdwsd.boxes import iou_inclusive

__all__ = ["box_iou", "qc_row", "recall_at_iou"]


def _as_boxes(boxes: np.ndarray | Sequence[Sequence[float]], name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape [N, 4], got {arr.shape}")
    return arr


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of inclusive-pixel boxes.

    Args:
        boxes_a: [N, 4] ``x1, y1, x2, y2`` (inclusive pixels).
        boxes_b: [M, 4] ``x1, y1, x2, y2`` (inclusive pixels).

    Returns:
        float64 [N, M] IoU of the continuous boxes ``[x1, y1, x2 + 1, y2 + 1]``.
    """
    a = _as_boxes(boxes_a, "boxes_a")
    b = _as_boxes(boxes_b, "boxes_b")
    return np.nan_to_num(iou_inclusive(a[:, None], b[None, :]), nan=0.0)


def recall_at_iou(
    proposals_list: Sequence[np.ndarray],
    gt_boxes_list: Sequence[np.ndarray],
    thresholds: Sequence[float] = (0.5, 0.7),
    top_n: int | None = None,
) -> dict[float, float]:
    """Fraction of ground-truth boxes covered by at least one proposal with IoU >= t.

    Args:
        proposals_list: per image, proposal boxes [N_i, 4] sorted by score (best first).
        gt_boxes_list: per image, ground-truth boxes [G_i, 4] (G_i may be 0).
        thresholds: IoU thresholds.
        top_n: use only the first ``top_n`` proposals of each image (all if None).

    Returns:
        ``{t: recall}`` for each threshold; NaN when there is no ground-truth box at all.
    """
    if len(proposals_list) != len(gt_boxes_list):
        raise ValueError(
            f"proposals_list and gt_boxes_list differ in length: {len(proposals_list)} vs {len(gt_boxes_list)}"
        )
    thresholds = [float(t) for t in thresholds]
    hits = np.zeros(len(thresholds), dtype=np.int64)
    total = 0
    for proposals, gt in zip(proposals_list, gt_boxes_list, strict=True):
        gt = _as_boxes(gt, "gt boxes")
        if len(gt) == 0:
            continue
        proposals = _as_boxes(proposals, "proposals")
        if top_n is not None:
            proposals = proposals[:top_n]
        total += len(gt)
        if len(proposals) == 0:
            continue
        best = box_iou(gt, proposals).max(axis=1)
        hits += (best[None, :] >= np.asarray(thresholds)[:, None]).sum(axis=1)
    return {t: (float(h) / total if total else math.nan) for t, h in zip(thresholds, hits, strict=True)}


def qc_row(
    split: str,
    boxes_list: Sequence[np.ndarray],
    images_per_s: float,
    gt_boxes_list: Sequence[np.ndarray] | None = None,
    thresholds: Sequence[float] = (0.5, 0.7),
) -> dict[str, Any]:
    """One row of ``results/<run>/proposals/qc.csv``.

    Args:
        split: split name.
        boxes_list: per image, its proposal boxes [N_i, 4].
        images_per_s: measured proposal throughput for the split.
        gt_boxes_list: per image, ground-truth boxes [G_i, 4]; None for a split without boxes.
        thresholds: IoU thresholds of the recall columns.

    Returns:
        ``{"split", "images", "boxes_per_image", "images_per_s", "recall_0.5", "recall_0.7"}`` (one
        ``recall_<t>`` per threshold); recall values are None (an empty CSV cell) where the split has no
        ground-truth boxes.
    """
    row: dict[str, Any] = {
        "split": split,
        "images": len(boxes_list),
        "boxes_per_image": float(np.mean([len(b) for b in boxes_list])) if len(boxes_list) else 0.0,
        "images_per_s": float(images_per_s),
    }
    recalls = (
        recall_at_iou(boxes_list, gt_boxes_list, thresholds)
        if gt_boxes_list is not None
        else dict.fromkeys(float(t) for t in thresholds)
    )
    for t, value in recalls.items():
        row[f"recall_{t:g}"] = None if value is None or math.isnan(value) else value
    return row
