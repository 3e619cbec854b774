"""Evaluation metrics: multi-label classification (mAP, CP/CR/CF1, OP/OR/OF1, top-k) and WSOD CorLoc.

Conventions (and how the peer codebases ML-GCN, ASL, Query2Label and CSRA differ):

* **AP** is the non-interpolated average precision of scikit-learn's ``average_precision_score``:
  ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the *distinct* score thresholds in decreasing order, so tied
  scores form one group and the result does not depend on how a sort orders them. (ML-GCN/ASL/CSRA rank
  ties in whatever order their sort returns; Query2Label uses VOC all-point interpolation. Those numbers
  are not strictly comparable with these.) It is reimplemented here in numpy, vectorised over classes.
* **Classes without a positive label** in the evaluated set have an undefined AP and recall. Their AP is
  NaN, and they are left out of mAP, CP and CR (with a ``warnings.warn`` that names them). They still
  count in the pooled OP/OR/OF1, where their false positives lower OP.
* **Thresholded metrics**: a label is predicted positive when ``score >= threshold`` (ML-GCN and CSRA use
  ``sigmoid >= 0.5``). A class that is never predicted has precision 0 (ML-GCN/CSRA ``Np[Np == 0] = 1``).
  CF1 and OF1 are harmonic means of the averaged P and R (**not** the mean of per-class F1); 0 when both
  are 0.
* **Top-k**: see :func:`multilabel_metrics`.

All values are fractions in [0, 1] computed in float64 and returned as plain Python ``float``/``int``/
``list`` so the dictionary can be written with ``json.dump`` (NaN entries become the ``NaN`` token).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kdwsd.boxes import iou_inclusive

__all__ = [
    "average_precision",
    "corloc",
    "detection_ap",
    "multilabel_metrics",
    "per_class_table",
    "recall_at_n",
    "teacher_detections",
]

TOP_K_MODES = ("top_k", "top_k_and_threshold")


# ----------------------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------------------
def _check_scores_labels(scores: Any, labels: Any, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to (float64 scores, bool labels) of the same shape with ``ndim`` dimensions."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != ndim or labels.ndim != ndim:
        what = "[N, C]" if ndim == 2 else "[N]"
        raise ValueError(
            f"scores and labels must be {ndim}-D arrays {what}; got scores.shape={scores.shape}, "
            f"labels.shape={labels.shape}"
        )
    if scores.shape != labels.shape:
        raise ValueError(f"shape mismatch: scores.shape={scores.shape} but labels.shape={labels.shape}")
    if scores.shape[0] == 0 or (ndim == 2 and scores.shape[1] == 0):
        raise ValueError(f"empty input: scores.shape={scores.shape}")
    if not (np.issubdtype(scores.dtype, np.number) or scores.dtype == bool):
        raise ValueError(f"scores must be numeric; got dtype {scores.dtype}")
    scores = scores.astype(np.float64, copy=False)
    if np.isnan(scores).any():
        raise ValueError(f"scores contain {int(np.isnan(scores).sum())} NaN value(s)")
    if np.isinf(scores).any():
        raise ValueError(f"scores contain {int(np.isinf(scores).sum())} infinite value(s)")
    if labels.dtype != bool:
        if not np.issubdtype(labels.dtype, np.number):
            raise ValueError(
                f"labels must be numeric or bool with values in {{0, 1}}; got dtype {labels.dtype}"
            )
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            found = np.unique(labels[bad])[:5].tolist()
            raise ValueError(
                f"labels must be in {{0, 1}}; found other values {found} "
                "(convert {-1, +1} targets with (labels > 0) first)"
            )
        labels = labels == 1
    return scores, labels


# ----------------------------------------------------------------------------------------------------------
# average precision
# ----------------------------------------------------------------------------------------------------------
def _average_precision_columns(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Tie-grouped non-interpolated AP of every column.

    Args:
        scores: float64 [N, C].
        labels: bool [N, C].

    Returns:
        float64 [C]; NaN for a column without positives.

    For each class the scores are sorted in decreasing order; a *group end* is the last position of a run of
    equal scores. With ``tp`` the cumulative number of positives, AP is
    ``sum over group ends e of (tp[e] - tp[previous end]) * tp[e] / (e + 1) / n_pos``, exactly
    scikit-learn's ``-sum(diff(recall) * precision[:-1])``.
    """
    n, _ = scores.shape
    # Work class-major ([C, N], contiguous) so each sort runs over contiguous memory.
    s_t = np.ascontiguousarray(scores.T)
    y_t = np.ascontiguousarray(labels.T)
    order = np.argsort(-s_t, axis=1, kind="stable")
    s_sorted = np.take_along_axis(s_t, order, axis=1)
    tp = np.cumsum(np.take_along_axis(y_t, order, axis=1), axis=1, dtype=np.float64)
    del order
    is_end = np.empty(s_sorted.shape, dtype=bool)
    is_end[:, :-1] = s_sorted[:, 1:] != s_sorted[:, :-1]
    is_end[:, -1] = True
    del s_sorted
    # tp at the previous group end: tp is non-decreasing, so a running max of tp at group ends, shifted.
    tp_at_end = np.maximum.accumulate(np.where(is_end, tp, 0.0), axis=1)
    prev = np.zeros_like(tp)
    prev[:, 1:] = tp_at_end[:, :-1]
    del tp_at_end
    rank = np.arange(1, n + 1, dtype=np.float64)
    contrib = np.where(is_end, (tp - prev) * tp / rank, 0.0)
    n_pos = tp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = contrib.sum(axis=1) / n_pos
    ap[n_pos == 0] = np.nan
    return ap


def average_precision(scores_1d: np.ndarray, labels_1d: np.ndarray) -> float:
    """Non-interpolated average precision of one class, ties grouped as scikit-learn does.

    Args:
        scores_1d: float [N] scores (any monotone transform, e.g. logits or probabilities, gives the same AP).
        labels_1d: {0, 1} [N].

    Returns:
        AP in [0, 1]; NaN (no warning) when there is no positive.
    """
    s, y = _check_scores_labels(scores_1d, labels_1d, ndim=1)
    return float(_average_precision_columns(s[:, None], y[:, None])[0])


# ----------------------------------------------------------------------------------------------------------
# thresholded / top-k metrics
# ----------------------------------------------------------------------------------------------------------
def _topk_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """bool [N, C]: the ``min(k, C)`` highest scores of each row; among equal scores the lower class index
    wins (stable sort of ``-scores``)."""
    n, c = scores.shape
    k = min(k, c)
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    mask = np.zeros((n, c), dtype=bool)
    np.put_along_axis(mask, idx, True, axis=1)
    return mask


def _per_class_counts(pred: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, predicted positives, ground-truth positives), each float64 [C]."""
    tp = np.count_nonzero(pred & labels, axis=0).astype(np.float64)
    n_pred = np.count_nonzero(pred, axis=0).astype(np.float64)
    n_pos = np.count_nonzero(labels, axis=0).astype(np.float64)
    return tp, n_pred, n_pos


def _per_class_pr(tp: np.ndarray, n_pred: np.ndarray, n_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (0 when nothing is predicted) and recall (NaN without positives), float64 [C]."""
    precision = tp / np.maximum(n_pred, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n_pos > 0, tp / n_pos, np.nan)
    return precision, recall


def _f1(p: float | np.ndarray, r: float | np.ndarray) -> Any:
    """Harmonic mean, 0 where p + r == 0 (NaN propagates)."""
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    s = p + r
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(s > 0, 2.0 * p * r / np.where(s > 0, s, 1.0), np.where(np.isnan(s), np.nan, 0.0))
    return out


def _prf(pred: np.ndarray, labels: np.ndarray, has_pos: np.ndarray) -> dict[str, float]:
    """CP/CR/CF1 over classes with positives, OP/OR/OF1 pooled over all classes."""
    tp, n_pred, n_pos = _per_class_counts(pred, labels)
    precision, recall = _per_class_pr(tp, n_pred, n_pos)
    if has_pos.any():
        cp = float(precision[has_pos].mean())
        cr = float(recall[has_pos].mean())
    else:
        cp = cr = float("nan")
    op = float(tp.sum() / max(n_pred.sum(), 1.0))
    orec = float(tp.sum() / n_pos.sum()) if n_pos.sum() > 0 else float("nan")
    return {
        "CP": cp,
        "CR": cr,
        "CF1": float(_f1(cp, cr)),
        "OP": op,
        "OR": orec,
        "OF1": float(_f1(op, orec)),
    }


def _format_indices(idx: Sequence[int], limit: int = 30) -> str:
    idx = list(idx)
    head = ", ".join(str(i) for i in idx[:limit])
    return f"[{head}{', ...' if len(idx) > limit else ''}]"


def multilabel_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float = 0.5,
    top_k: int = 3,
    top_k_mode: str = "top_k",
) -> dict[str, Any]:
    """All multi-label classification metrics of the paper (Table 1/2 columns) in one dictionary.

    Args:
        scores: float [N, C] probabilities (sigmoid outputs). mAP only depends on the ranking; the
            thresholded metrics compare ``scores >= threshold`` as given, so pass probabilities, not logits.
        labels: {0, 1} (or bool) [N, C] ground truth. ``{-1, +1}`` targets are rejected.
        threshold: a label is predicted positive when ``score >= threshold``.
        top_k: k of the top-k metrics (clipped to C when computing; the key suffix is ``_top{top_k}``).
        top_k_mode: how the top-k prediction set is defined:

            * ``"top_k"`` (default): exactly the k highest-scoring labels of every image are predicted
              positive, whatever their score ("top-3 takes the 3 highest-scoring labels per image", the
              standard definition assumed in ``reference/METHOD.md`` section 7; the paper's exact rule is
              not published).
            * ``"top_k_and_threshold"``: the top-k labels that also have ``score >= threshold``
              (ML-GCN ``overall_topk``, CSRA ``json_metric_top3``); an image can have fewer than k.

            Ties at the k-th place are broken by a stable rule: among equal scores the lower class index is
            taken first.

    Returns:
        ``{"mAP", "CP", "CR", "CF1", "OP", "OR", "OF1",
        "CP_top{k}", "CR_top{k}", "CF1_top{k}", "OP_top{k}", "OR_top{k}", "OF1_top{k}",
        "AP": list[float] (length C, NaN for a class without positives),
        "num_images": N, "num_classes": C, "classes_without_positives": list[int],
        "threshold", "top_k", "top_k_mode"}`` (the last three record the settings used).

        * ``mAP`` is the mean AP over classes with at least one positive (AP as scikit-learn's
          ``average_precision_score``, ties grouped).
        * ``CP``/``CR`` are means of per-class precision/recall over the **classes with at least one
          positive** (the same classes as mAP); a class never predicted positive has precision 0.
          ``CF1 = 2 CP CR / (CP + CR)`` (0 when both are 0) -- not the mean of per-class F1.
        * ``OP``/``OR``/``OF1`` pool true positives / predictions / positives over **all** classes
          (micro averages); ``OP`` is 0 when nothing at all is predicted.

        Classes without positives are named in a ``warnings.warn``. If no class has a positive, the
        class-averaged values and ``OR``/``OF1`` are NaN.

    Raises:
        ValueError: on shape mismatch, non-2-D or empty input, labels outside {0, 1}, NaN/inf scores,
            ``top_k < 1`` or an unknown ``top_k_mode``.
    """
    s, y = _check_scores_labels(scores, labels, ndim=2)
    if top_k_mode not in TOP_K_MODES:
        raise ValueError(f"top_k_mode must be one of {TOP_K_MODES}; got {top_k_mode!r}")
    if int(top_k) != top_k or top_k < 1:
        raise ValueError(f"top_k must be a positive integer; got {top_k!r}")
    top_k = int(top_k)
    threshold = float(threshold)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    n, c = s.shape

    ap = _average_precision_columns(s, y)
    has_pos = y.any(axis=0)
    missing = np.flatnonzero(~has_pos).tolist()
    if missing:
        warnings.warn(
            f"{len(missing)} of {c} classes have no positive label among the {n} images "
            f"(class indices {_format_indices(missing)}); they get AP = NaN and are excluded from mAP, CP "
            "and CR (they still count in OP/OR/OF1).",
            stacklevel=2,
        )
    m_ap = float(ap[has_pos].mean()) if has_pos.any() else float("nan")

    out: dict[str, Any] = {"mAP": m_ap}
    pred = s >= threshold
    out.update(_prf(pred, y, has_pos))

    pred_k = _topk_mask(s, top_k)
    if top_k_mode == "top_k_and_threshold":
        pred_k &= pred
    out.update({f"{key}_top{top_k}": v for key, v in _prf(pred_k, y, has_pos).items()})

    out["AP"] = [float(v) for v in ap]
    out["num_images"] = int(n)
    out["num_classes"] = int(c)
    out["classes_without_positives"] = [int(i) for i in missing]
    out["threshold"] = threshold
    out["top_k"] = top_k
    out["top_k_mode"] = top_k_mode
    return out


def per_class_table(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> pd.DataFrame:
    """Per-class AP and thresholded precision / recall / F1.

    Args:
        scores: float [N, C] probabilities.
        labels: {0, 1} [N, C].
        threshold: predicted positive when ``score >= threshold``.

    Returns:
        DataFrame with index ``index`` = 0..C-1 and float64 columns ``AP, P, R, F1``. ``P`` is 0 for a class
        never predicted positive; ``AP``, ``R`` and ``F1`` are NaN for a class without positives (no
        warning here; :func:`multilabel_metrics` warns). ``F1 = 2PR/(P+R)``, 0 when both are 0.
    """
    s, y = _check_scores_labels(scores, labels, ndim=2)
    ap = _average_precision_columns(s, y)
    tp, n_pred, n_pos = _per_class_counts(s >= float(threshold), y)
    precision, recall = _per_class_pr(tp, n_pred, n_pos)
    f1 = _f1(precision, recall)
    table = pd.DataFrame({"AP": ap, "P": precision, "R": recall, "F1": f1}, dtype=np.float64)
    table.index.name = "index"
    return table


# ----------------------------------------------------------------------------------------------------------
# CorLoc
# ----------------------------------------------------------------------------------------------------------
def corloc(
    class_boxes: np.ndarray,
    labels: np.ndarray,
    gt_boxes: Sequence[Sequence[tuple[int, Sequence[float]]]],
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Correct localisation (CorLoc) of a weakly-supervised detector.

    A *pair* is an (image, class) with image-level label 1 **and** at least one ground-truth box of that
    class (labels without a box, e.g. crowd-only annotations, are skipped; boxes of a class whose label is 0
    are ignored). A pair is correct when the predicted box of that class has IoU >= ``iou_threshold`` with
    at least one ground-truth box of the class.

    Boxes are ``x1, y1, x2, y2`` in the **inclusive-pixel convention** (x2 is the last pixel column, as in
    Caffe / Fast R-CNN / the VOC devkit), so IoU uses width = x2 - x1 + 1 and height = y2 - y1 + 1. A
    predicted box with NaN coordinates is never correct.

    Args:
        class_boxes: float [N, C, 4], the top-scoring box of every class in every image.
        labels: {0, 1} [N, C] image-level labels.
        gt_boxes: length N; entry i is a list of ``(class_index, [x1, y1, x2, y2])`` for image i.
        iou_threshold: IoU needed for a hit (0.5 by the standard definition).

    Returns:
        ``{"CorLoc": mean of the per-class CorLoc over classes with at least one pair (the standard WSOD
        number), "CorLoc_per_class": list[float] (length C, NaN for a class without pairs),
        "CorLoc_pooled": correct pairs / all pairs, "CorLoc_num_pairs": list[int] (length C)}``.
        Classes without pairs are named in a ``warnings.warn``.
    """
    boxes = np.asarray(class_boxes, dtype=np.float64)
    lab = np.asarray(labels)
    if boxes.ndim != 3 or boxes.shape[2] != 4:
        raise ValueError(f"class_boxes must have shape [N, C, 4]; got {boxes.shape}")
    n, c, _ = boxes.shape
    if lab.shape != (n, c):
        raise ValueError(f"shape mismatch: class_boxes.shape={boxes.shape} but labels.shape={lab.shape}")
    if lab.dtype != bool:
        if not np.issubdtype(lab.dtype, np.number) or ((lab != 0) & (lab != 1)).any():
            raise ValueError("labels must be in {0, 1}")
        lab = lab == 1
    if len(gt_boxes) != n:
        raise ValueError(f"gt_boxes has {len(gt_boxes)} entries but there are {n} images")

    img_idx: list[int] = []
    cls_idx: list[int] = []
    gts: list[Sequence[float]] = []
    for i, entries in enumerate(gt_boxes):
        for entry in entries:
            if len(entry) != 2:
                raise ValueError(
                    f"gt_boxes[{i}] entries must be (class_index, [x1, y1, x2, y2]); got {entry!r}"
                )
            k, box = entry
            if not 0 <= int(k) < c:
                raise ValueError(f"gt_boxes[{i}] has class index {k} outside [0, {c})")
            if len(box) != 4:
                raise ValueError(f"gt_boxes[{i}] has a box with {len(box)} coordinates instead of 4")
            img_idx.append(i)
            cls_idx.append(int(k))
            gts.append(box)

    has_gt = np.zeros((n, c), dtype=bool)
    hit = np.zeros((n, c), dtype=bool)
    if gts:
        ii = np.asarray(img_idx, dtype=np.int64)
        cc = np.asarray(cls_idx, dtype=np.int64)
        g = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
        iou = iou_inclusive(boxes[ii, cc], g)
        has_gt[ii, cc] = True
        ok = iou >= float(iou_threshold)  # NaN -> False
        hit[ii[ok], cc[ok]] = True

    valid = lab & has_gt
    correct = valid & hit
    n_pairs = valid.sum(axis=0)
    n_correct = correct.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(n_pairs > 0, n_correct / np.maximum(n_pairs, 1), np.nan)
    missing = np.flatnonzero(n_pairs == 0).tolist()
    if missing:
        warnings.warn(
            f"{len(missing)} of {c} classes have no (positive image, ground-truth box) pair "
            f"(class indices {_format_indices(missing)}); their CorLoc is NaN and excluded from the mean.",
            stacklevel=2,
        )
    total = int(n_pairs.sum())
    return {
        "CorLoc": float(np.nanmean(per_class)) if total > 0 else float("nan"),
        "CorLoc_per_class": [float(v) for v in per_class],
        "CorLoc_pooled": float(n_correct.sum() / total) if total > 0 else float("nan"),
        "CorLoc_num_pairs": [int(v) for v in n_pairs],
    }


# ----------------------------------------------------------------------------------------------------------
# detection AP (VOC style), teacher detections, proposal recall vs number of boxes
# ----------------------------------------------------------------------------------------------------------
Detection = tuple[int, float, Sequence[float]]


def _voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool) -> float:
    """Area under a precision/recall curve, as the VOC devkit (``voc_eval.voc_ap`` of py-faster-rcnn)."""
    if use_07_metric:  # 11-point interpolation: mean over t in {0, 0.1, ..., 1} of max precision at recall >= t
        return float(
            sum((prec[rec >= t].max() if (rec >= t).any() else 0.0) for t in np.linspace(0.0, 1.0, 11)) / 11.0
        )
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _check_gt(gt_boxes: Sequence[Sequence[tuple[int, Sequence[float]]]], num_classes: int) -> list:
    """Per image: (int64 classes [G], float64 boxes [G, 4]) from the ``corloc`` format."""
    out = []
    for i, entries in enumerate(gt_boxes):
        cls, boxes = [], []
        for entry in entries:
            if len(entry) != 2 or len(entry[1]) != 4:
                raise ValueError(f"gt_boxes[{i}] entries must be (class_index, [x1, y1, x2, y2]); got {entry!r}")
            if not 0 <= int(entry[0]) < num_classes:
                raise ValueError(f"gt_boxes[{i}] has class index {entry[0]} outside [0, {num_classes})")
            cls.append(int(entry[0]))
            boxes.append(entry[1])
        out.append((np.asarray(cls, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)))
    return out


def detection_ap(
    detections: Sequence[Sequence[Detection]],
    gt_boxes: Sequence[Sequence[tuple[int, Sequence[float]]]],
    num_classes: int,
    iou: float = 0.5,
    use_07_metric: bool = True,
    difficult: Sequence[Sequence[bool]] | None = None,
) -> dict[str, Any]:
    """Per-class detection AP as the PASCAL VOC devkit computes it (the WSOD papers' "detection mAP").

    For each class the detections of all images are ranked by score (decreasing; equal scores keep image
    order, then list order). A detection is a true positive when its IoU with some ground-truth box of its
    class in its image is ``>= iou`` and that best-overlapping box is not taken yet by a higher-scoring
    detection; otherwise a false positive (a second hit on a box counts as a false positive). A detection
    whose best box is ``difficult`` is ignored (neither TP nor FP) and difficult boxes are not counted in
    the number of positives -- the logic of ``voc_eval`` of py-faster-rcnn. IoU is inclusive-pixel
    (:func:`kdwsd.boxes.iou_inclusive`; width = x2 - x1 + 1), as in the devkit, and a hit needs
    ``IoU >= iou`` as in the MATLAB devkit and :func:`corloc` (py-faster-rcnn uses ``>``; they differ only at
    exactly 0.5).

    Args:
        detections: length N; per image a list of ``(class_index, score, [x1, y1, x2, y2])``.
        gt_boxes: length N; per image a list of ``(class_index, [x1, y1, x2, y2])`` (the :func:`corloc`
            format).
        num_classes: C.
        iou: IoU threshold of a hit.
        use_07_metric: VOC2007 11-point interpolated AP (True) or the VOC2010+ area under the monotone
            precision envelope (False).
        difficult: optional, length N, per image one bool per ``gt_boxes`` entry.

    Returns:
        ``{"mAP": mean AP over classes with at least one non-difficult box, "AP": list[float] (length C,
        NaN for a class without such box), "num_gt": list[int], "num_detections": list[int]}``.
    """
    n = len(gt_boxes)
    if len(detections) != n:
        raise ValueError(f"detections has {len(detections)} entries but gt_boxes has {n} (one per image)")
    gts = _check_gt(gt_boxes, num_classes)
    if difficult is None:
        diffs = [np.zeros(len(c), dtype=bool) for c, _ in gts]
    else:
        if len(difficult) != n:
            raise ValueError(f"difficult has {len(difficult)} entries but gt_boxes has {n} (one per image)")
        diffs = [np.asarray(d, dtype=bool).reshape(-1) for d in difficult]
        for i, (d, (c, _)) in enumerate(zip(diffs, gts, strict=True)):
            if len(d) != len(c):
                raise ValueError(f"difficult[{i}] has {len(d)} flags for {len(c)} ground-truth boxes")

    # Per class: scores and (1 TP, 0 FP, -1 ignored) of every detection, in (image, score) order.
    scores_by_class: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    kind_by_class: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    for i, dets in enumerate(detections):
        if len(dets) == 0:
            continue
        try:
            d_cls = np.asarray([int(d[0]) for d in dets], dtype=np.int64)
            d_score = np.asarray([float(d[1]) for d in dets], dtype=np.float64)
            d_box = np.asarray([d[2] for d in dets], dtype=np.float64).reshape(-1, 4)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"detections[{i}] entries must be (class_index, score, [x1, y1, x2, y2])") from exc
        if ((d_cls < 0) | (d_cls >= num_classes)).any():
            raise ValueError(f"detections[{i}] has a class index outside [0, {num_classes})")
        g_cls, g_box = gts[i]
        for k in np.unique(d_cls):
            sel = np.flatnonzero(d_cls == k)
            sel = sel[np.argsort(-d_score[sel], kind="stable")]  # matching is greedy in score order per image
            kind = np.zeros(len(sel), dtype=np.int8)
            gsel = np.flatnonzero(g_cls == k)
            if len(gsel):
                ov = iou_inclusive(d_box[sel][:, None], g_box[gsel][None])  # [D, G]
                best = ov.argmax(axis=1)
                hit = ov[np.arange(len(sel)), best] >= float(iou)
                taken = np.zeros(len(gsel), dtype=bool)
                is_diff = diffs[i][gsel]
                for j in range(len(sel)):
                    if not hit[j]:
                        continue
                    if is_diff[best[j]]:
                        kind[j] = -1
                    elif not taken[best[j]]:
                        kind[j] = 1
                        taken[best[j]] = True
            scores_by_class[k].append(d_score[sel])
            kind_by_class[k].append(kind)

    ap = np.full(num_classes, np.nan)
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for (g_cls, _), d in zip(gts, diffs, strict=True):
        np.add.at(num_gt, g_cls[~d], 1)
    num_det = np.zeros(num_classes, dtype=np.int64)
    for k in range(num_classes):
        sc = np.concatenate(scores_by_class[k]) if scores_by_class[k] else np.zeros(0)
        kind = np.concatenate(kind_by_class[k]) if kind_by_class[k] else np.zeros(0, dtype=np.int8)
        num_det[k] = len(sc)
        if num_gt[k] == 0:
            continue
        order = np.argsort(-sc, kind="stable")
        kind = kind[order]
        tp = np.cumsum(kind == 1, dtype=np.float64)
        fp = np.cumsum(kind == 0, dtype=np.float64)
        rec = tp / num_gt[k]
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap[k] = _voc_ap(rec, prec, use_07_metric)
    has_gt = num_gt > 0
    return {
        "mAP": float(ap[has_gt].mean()) if has_gt.any() else float("nan"),
        "AP": [float(v) for v in ap],
        "num_gt": [int(v) for v in num_gt],
        "num_detections": [int(v) for v in num_det],
    }


def teacher_detections(
    region_scores: Any,
    boxes: Any,
    nms_iou: float = 0.3,
    score_thresh: float = 1e-4,
    max_per_class: int = 100,
) -> list[Detection]:
    """Detections of one image from the WSDDN region scores: per-class NMS, as WSDDN / OICR evaluate.

    Args:
        region_scores: float [R, C] region scores (the product of the two softmaxes, the teacher's
            ``region_scores`` output at temperature 1).
        boxes: float [R, 4] ``x1, y1, x2, y2`` inclusive pixels, in the frame the detections should be in
            (map them to the original image first to compare with ground truth).
        nms_iou: boxes of one class overlapping a higher-scoring kept box with IoU > ``nms_iou`` are dropped.
            The IoU is the inclusive-pixel one (``torchvision.ops.batched_nms`` on ``[x1, y1, x2 + 1, y2 + 1]``).
        score_thresh: regions scoring ``<= score_thresh`` for a class are not candidates for that class.
        max_per_class: at most this many detections per class (the highest-scoring).

    Returns:
        list of ``(class_index, score, (x1, y1, x2, y2))``, ordered by class then decreasing score; the
        input of :func:`detection_ap`.
    """
    import torch
    from torchvision.ops import batched_nms

    s = torch.as_tensor(np.asarray(region_scores, dtype=np.float32))
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float32))
    if s.ndim != 2 or b.shape != (s.shape[0], 4):
        raise ValueError(f"region_scores must be [R, C] and boxes [R, 4]; got {tuple(s.shape)} and {tuple(b.shape)}")
    r_idx, c_idx = torch.nonzero(s > score_thresh, as_tuple=True)
    if len(r_idx) == 0:
        return []
    cand_scores = s[r_idx, c_idx]
    cand_boxes = b[r_idx]
    exclusive = cand_boxes + torch.tensor([0.0, 0.0, 1.0, 1.0])  # inclusive-pixel IoU in torchvision's convention
    keep = batched_nms(exclusive, cand_scores, c_idx, float(nms_iou))  # sorted by decreasing score
    out: list[Detection] = []
    per_class: dict[int, int] = {}
    for j in keep.tolist():
        k = int(c_idx[j])
        if per_class.get(k, 0) >= max_per_class:
            continue
        per_class[k] = per_class.get(k, 0) + 1
        out.append((k, float(cand_scores[j]), tuple(float(v) for v in cand_boxes[j])))
    out.sort(key=lambda d: (d[0], -d[1]))
    return out


def _gt_box_array(entries: Any, i: int) -> np.ndarray:
    """Ground-truth boxes of one image as float64 [G, 4], from an array [G, 4] or ``(class, box)`` pairs."""
    if isinstance(entries, np.ndarray):
        arr = entries.astype(np.float64)
    else:
        entries = list(entries)
        if entries and len(entries[0]) == 2:  # the corloc format
            entries = [box for _, box in entries]
        arr = np.asarray(entries, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"ground-truth boxes of image {i} must be [G, 4] or (class, box) pairs; got {arr.shape}")
    return arr


def recall_at_n(
    proposals_per_image: Sequence[np.ndarray],
    gt_boxes_per_image: Sequence[Any],
    ns: Sequence[int] = (1, 10, 50, 100, 500, 1000, 2000),
    ious: Sequence[float] = (0.5, 0.7),
) -> pd.DataFrame:
    """Proposal recall as a function of the number of boxes kept per image.

    A ground-truth box is recalled at ``n`` when one of the first ``n`` proposals of its image (proposals are
    taken in the given order, best first) has inclusive-pixel IoU ``>= iou`` with it. Images with fewer
    than ``n`` proposals use all they have.

    Args:
        proposals_per_image: per image float [P_i, 4] ``x1, y1, x2, y2``, best first.
        gt_boxes_per_image: per image float [G_i, 4] or the :func:`corloc` list of ``(class, box)``.
        ns: numbers of boxes.
        ious: IoU thresholds.

    Returns:
        DataFrame with one row per (iou, n) and columns ``iou, n, recall, num_gt`` (recall NaN when there
        is no ground-truth box).
    """
    if len(proposals_per_image) != len(gt_boxes_per_image):
        raise ValueError(
            f"{len(proposals_per_image)} proposal arrays but {len(gt_boxes_per_image)} ground-truth entries "
            "(one per image each)"
        )
    ns_arr = np.asarray(sorted({int(v) for v in ns}), dtype=np.int64)
    if (ns_arr < 1).any():
        raise ValueError(f"ns must be positive; got {list(ns)}")
    thr = np.asarray([float(t) for t in ious])
    hits = np.zeros((len(thr), len(ns_arr)), dtype=np.int64)
    total = 0
    for i, (props, gt) in enumerate(zip(proposals_per_image, gt_boxes_per_image, strict=True)):
        g = _gt_box_array(gt, i)
        if len(g) == 0:
            continue
        total += len(g)
        p = np.asarray(props, dtype=np.float64).reshape(-1, 4)
        if len(p) == 0:
            continue
        ov = np.nan_to_num(iou_inclusive(g[:, None], p[None]), nan=0.0)  # [G, P]
        best = np.maximum.accumulate(ov, axis=1)[:, np.minimum(ns_arr, len(p)) - 1]  # [G, len(ns)]
        hits += (best[None] >= thr[:, None, None]).sum(axis=1)
    rows = [
        {"iou": float(t), "n": int(n), "recall": hits[a, b] / total if total else float("nan"), "num_gt": total}
        for a, t in enumerate(thr)
        for b, n in enumerate(ns_arr)
    ]
    return pd.DataFrame(rows, columns=["iou", "n", "recall", "num_gt"])
