"""Tests of the WSOD localisation metrics: VOC detection AP, teacher detections (NMS), recall vs boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kdwsd.metrics import detection_ap, recall_at_n, teacher_detections
from kdwsd.proposals.qc import recall_at_iou


# ----------------------------------------------------------------------------------------------------------
# reference: py-faster-rcnn's voc_eval, transcribed (loop per detection, global sort by confidence)
# ----------------------------------------------------------------------------------------------------------
def _ref_voc_ap(rec, prec, use_07_metric):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def _ref_voc_eval(dets, gts, diffs, cls, ovthresh, use_07_metric):
    class_recs, npos = {}, 0
    for i, (g, d) in enumerate(zip(gts, diffs, strict=True)):
        R = [(box, dif) for (k, box), dif in zip(g, d, strict=True) if k == cls]
        bbox = np.array([x[0] for x in R]).reshape(-1, 4)
        difficult = np.array([x[1] for x in R]).astype(bool)
        npos = npos + sum(~difficult)
        class_recs[i] = {"bbox": bbox, "difficult": difficult, "det": [False] * len(R)}
    image_ids = [i for i, per in enumerate(dets) for (k, _, _) in per if k == cls]
    confidence = np.array([s for per in dets for (k, s, _) in per if k == cls])
    BB = np.array([b for per in dets for (k, _, b) in per if k == cls]).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence)
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            inters = iw * ih
            uni = (
                (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                + (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (BBGT[:, 3] - BBGT[:, 1] + 1.0)
                - inters
            )
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return _ref_voc_ap(rec, prec, use_07_metric)


def _hand_case():
    gts = [[(0, [0, 0, 9, 9])], [(0, [0, 0, 9, 9]), (0, [20, 20, 29, 29])]]
    dets = [
        [(0, 0.9, [0, 0, 9, 9]), (0, 0.8, [0, 0, 9, 9])],  # TP, then a duplicate: FP
        [(0, 0.7, [50, 50, 59, 59]), (0, 0.6, [20, 20, 29, 29]), (1, 0.5, [0, 0, 9, 9])],  # FP, TP; class 1: no GT
    ]
    return dets, gts


def test_detection_ap_hand_computed() -> None:
    dets, gts = _hand_case()
    # ranked TP FP FP TP, 3 positives: recall 1/3 1/3 1/3 2/3, precision 1 1/2 1/3 1/2.
    # 11-point: t = 0 .. 0.3 -> 1 (4 points), t = 0.4 .. 0.6 -> 1/2 (3 points), rest 0: 5.5 / 11.
    out = detection_ap(dets, gts, num_classes=2)
    assert out["AP"][0] == pytest.approx(5.5 / 11)
    assert math.isnan(out["AP"][1])  # no ground truth: excluded from the mean
    assert out["mAP"] == pytest.approx(0.5)
    assert out["num_gt"] == [3, 0] and out["num_detections"] == [4, 1]
    # all-point area: 1/3 * 1 + 1/3 * 1/2 = 1/2
    assert detection_ap(dets, gts, 2, use_07_metric=False)["AP"][0] == pytest.approx(0.5)
    # the box at (20, 20) difficult: 2 positives, the detection on it ignored; ranked TP FP FP:
    # recall 1/2 throughout, precision 1 1/2 1/3 -> 11-point: t = 0 .. 0.5 -> 1 = 6/11.
    diff = [[False], [False, True]]
    assert detection_ap(dets, gts, 2, difficult=diff)["AP"][0] == pytest.approx(6 / 11)
    assert detection_ap(dets, gts, 2, difficult=diff)["num_gt"] == [2, 0]


def test_detection_ap_threshold_is_inclusive_at_half() -> None:
    gts = [[(0, [0, 0, 9, 9])]]
    dets = [[(0, 1.0, [0, 0, 9, 4])]]  # inclusive IoU exactly 50 / 100
    assert detection_ap(dets, gts, 1)["AP"][0] == 1.0
    assert detection_ap(dets, gts, 1, iou=0.51)["AP"][0] == 0.0


@pytest.mark.parametrize("use_07", [True, False])
def test_detection_ap_matches_voc_eval_reference(use_07: bool) -> None:
    rng = np.random.default_rng(5)
    c, n = 3, 25
    gts, dets, diffs = [], [], []
    for _ in range(n):
        g = []
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 80, 2)
            g.append((int(rng.integers(0, c)), [x, y, x + rng.uniform(5, 40), y + rng.uniform(5, 40)]))
        gts.append(g)
        diffs.append([bool(rng.random() < 0.15) for _ in g])
        d = []
        for k, box in g:  # jittered copies of the truth (hits, near misses, duplicates) plus clutter
            for _ in range(rng.integers(0, 3)):
                d.append((k, float(rng.random()), list(np.asarray(box) + rng.normal(0, 4, 4))))
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 80, 2)
            d.append((int(rng.integers(0, c)), float(rng.random()), [x, y, x + 20, y + 20]))
        dets.append(d)
    out = detection_ap(dets, gts, c, use_07_metric=use_07, difficult=diffs)
    for k in range(c):
        assert out["AP"][k] == pytest.approx(_ref_voc_eval(dets, gts, diffs, k, 0.5, use_07), abs=1e-12)
    assert 0.05 < out["mAP"] < 0.95  # a non-trivial case


def test_detection_ap_validation() -> None:
    with pytest.raises(ValueError, match="one per image"):
        detection_ap([[]], [[], []], 1)
    with pytest.raises(ValueError, match=r"gt_boxes\[0\].*class index 3"):
        detection_ap([[]], [[(3, [0, 0, 1, 1])]], 2)
    with pytest.raises(ValueError, match=r"difficult\[0\]"):
        detection_ap([[]], [[(0, [0, 0, 1, 1])]], 1, difficult=[[True, False]])


# ----------------------------------------------------------------------------------------------------------
# teacher detections
# ----------------------------------------------------------------------------------------------------------
def test_teacher_detections_nms_inclusive_iou() -> None:
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 4], [30, 30, 39, 39], [0, 0, 9, 9]], dtype=np.float32)
    scores = np.array(
        [[0.50, 0.00], [0.40, 0.00], [0.30, 0.20], [0.00, 0.00005]],  # last: below score_thresh
        dtype=np.float32,
    )
    # box 1 overlaps box 0 with inclusive IoU 0.5 (the exclusive-coordinate IoU would be 36/81 = 0.44)
    dets = teacher_detections(scores, boxes, nms_iou=0.45)
    assert [(k, round(s, 5), b) for k, s, b in dets] == [
        (0, 0.5, (0.0, 0.0, 9.0, 9.0)),
        (0, 0.3, (30.0, 30.0, 39.0, 39.0)),
        (1, 0.2, (30.0, 30.0, 39.0, 39.0)),
    ]
    kept = teacher_detections(scores, boxes, nms_iou=0.55)
    assert [(k, round(s, 5)) for k, s, _ in kept] == [(0, 0.5), (0, 0.4), (0, 0.3), (1, 0.2)]
    assert [(k, round(s, 5)) for k, s, _ in teacher_detections(scores, boxes, nms_iou=0.55, max_per_class=1)] == [
        (0, 0.5),
        (1, 0.2),
    ]
    assert teacher_detections(np.zeros((4, 2)), boxes) == []
    with pytest.raises(ValueError, match=r"\[R, C\]"):
        teacher_detections(scores, boxes[:2])


def test_teacher_detections_feed_detection_ap() -> None:
    boxes = np.array([[0, 0, 9, 9], [1, 1, 9, 9], [30, 30, 39, 39]], dtype=np.float32)
    scores = np.array([[0.6, 0.0], [0.3, 0.0], [0.1, 0.9]], dtype=np.float32)
    dets = teacher_detections(scores, boxes)
    out = detection_ap([dets], [[(0, [0, 0, 9, 9]), (1, [30, 30, 39, 39])]], 2)
    assert out["AP"] == [1.0, 1.0]


# ----------------------------------------------------------------------------------------------------------
# recall vs number of boxes
# ----------------------------------------------------------------------------------------------------------
def test_recall_at_n_hand_and_against_qc() -> None:
    gt = [np.array([[0, 0, 9, 9], [20, 20, 29, 29]]), np.zeros((0, 4)), [(3, [0, 0, 4, 4])]]
    props = [
        np.array([[50, 50, 60, 60], [0, 0, 9, 8], [20, 20, 29, 29]]),  # IoU 0.9 with box 0 at rank 2; exact at 3
        np.array([[0, 0, 5, 5]]),
        np.zeros((0, 4)),
    ]
    df = recall_at_n(props, gt, ns=(1, 2, 3, 10), ious=(0.5, 0.95))
    r = df.set_index(["iou", "n"])["recall"]
    assert r[(0.5, 1)] == 0 and r[(0.5, 2)] == pytest.approx(1 / 3) and r[(0.5, 3)] == pytest.approx(2 / 3)
    assert r[(0.5, 10)] == pytest.approx(2 / 3) and r[(0.95, 2)] == 0 and r[(0.95, 3)] == pytest.approx(1 / 3)
    assert (df["num_gt"] == 3).all()

    rng = np.random.default_rng(0)
    props, gts = [], []
    for _ in range(20):
        xy = rng.uniform(0, 100, (60, 2))
        props.append(np.c_[xy, xy + rng.uniform(5, 50, (60, 2))])
        g = rng.uniform(0, 100, (int(rng.integers(0, 4)), 2))
        gts.append(np.c_[g, g + rng.uniform(10, 40, (len(g), 2))])
    df = recall_at_n(props, gts, ns=(1, 5, 20, 100), ious=(0.5, 0.7)).set_index(["iou", "n"])["recall"]
    for n in (1, 5, 20, 100):
        ref = recall_at_iou(props, gts, (0.5, 0.7), top_n=n)
        assert df[(0.5, n)] == pytest.approx(ref[0.5]) and df[(0.7, n)] == pytest.approx(ref[0.7])
    assert df[(0.5, 1)] < df[(0.5, 20)]
    with pytest.raises(ValueError, match="one per image"):
        recall_at_n(props[:2], gts, ns=(1,))
