"""Tests of kdwsd.metrics against scikit-learn and hand-computed cases."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from kdwsd.metrics import average_precision, corloc, multilabel_metrics, per_class_table

SEVEN = ("CP", "CR", "CF1", "OP", "OR", "OF1")


def _random_case(seed: int, n: int, c: int, decimals: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prevalence = rng.uniform(0.02, 0.5, size=c)
    y = (rng.random((n, c)) < prevalence).astype(np.int64)
    y[rng.integers(n), :] = 1  # every class has >= 1 positive
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
    if decimals is not None:
        s = np.round(s, decimals)
    return s, y


# ----------------------------------------------------------------------------------------------------------
# AP vs scikit-learn
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 2, 1, 0])
def test_ap_matches_sklearn_random_and_tied(seed: int, decimals: int | None) -> None:
    n = [7, 50, 300, 1000, 13, 2][seed]
    s, y = _random_case(seed, n, 6, decimals)
    m = multilabel_metrics(s, y)
    expected = [average_precision_score(y[:, k], s[:, k]) for k in range(y.shape[1])]
    np.testing.assert_allclose(m["AP"], expected, rtol=0, atol=1e-12)
    assert m["mAP"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert m["mAP"] == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)
    for k in range(y.shape[1]):
        assert average_precision(s[:, k], y[:, k]) == pytest.approx(expected[k], abs=1e-12)


def test_ap_float32_scores_ties_exact() -> None:
    # fp16-like quantised scores stored as float32: ties must be grouped exactly as in sklearn.
    rng = np.random.default_rng(7)
    y = (rng.random((2000, 3)) < 0.05).astype(int)
    y[0] = 1
    s = (rng.random((2000, 3)) * 0.5 + 0.4 * y).astype(np.float16).astype(np.float32)
    m = multilabel_metrics(s, y)
    expected = [average_precision_score(y[:, k], s[:, k]) for k in range(3)]
    np.testing.assert_allclose(m["AP"], expected, atol=1e-12)


def test_ap_ties_hand_computed() -> None:
    # scores: 0.9(+), 0.5(+), 0.5(-), 0.5(-), 0.1(+)
    # groups: {0.9}: TP=1, P=1/1, dR=1/3;  {0.5}: TP=2, P=2/4, dR=1/3;  {0.1}: TP=3, P=3/5, dR=1/3
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    y = np.array([1, 1, 0, 0, 1])
    expected = (1.0 + 0.5 + 0.6) / 3
    assert average_precision(s, y) == pytest.approx(expected)
    # the order of the tied items must not matter
    assert average_precision(s[[0, 3, 2, 1, 4]], y[[0, 3, 2, 1, 4]]) == pytest.approx(expected)
    # all scores tied -> AP = prevalence
    assert average_precision(np.full(5, 0.3), y) == pytest.approx(3 / 5)


def test_ap_perfect_and_worst() -> None:
    y = np.array([0, 1, 0, 1])
    assert average_precision(np.array([0.1, 0.9, 0.2, 0.8]), y) == pytest.approx(1.0)
    # positives ranked last: P at ranks 3 and 4 = 1/3, 2/4
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.2]), y) == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_ap_is_invariant_to_monotone_transform() -> None:
    s, y = _random_case(3, 200, 4, decimals=2)
    logits = np.log(np.clip(s, 1e-6, 1 - 1e-6) / np.clip(1 - s, 1e-6, 1))
    a = multilabel_metrics(s, y)["AP"]
    b = multilabel_metrics(logits, y, threshold=0.0)["AP"]
    np.testing.assert_allclose(a, b, atol=1e-12)


# ----------------------------------------------------------------------------------------------------------
# classes without positives
# ----------------------------------------------------------------------------------------------------------
def test_class_without_positives_warns_and_is_excluded() -> None:
    s, y = _random_case(1, 100, 5, decimals=2)
    y[:, 2] = 0
    y[:, 4] = 0
    s[:10, 4] = 0.99  # class 4: false positives only
    with pytest.warns(UserWarning, match=r"class indices \[2, 4\]"):
        m = multilabel_metrics(s, y)
    assert m["classes_without_positives"] == [2, 4]
    assert np.isnan(m["AP"][2]) and np.isnan(m["AP"][4])
    keep = [0, 1, 3]
    expected_ap = [average_precision_score(y[:, k], s[:, k]) for k in keep]
    assert m["mAP"] == pytest.approx(np.mean(expected_ap))
    pred = (s >= 0.5).astype(int)
    # CP / CR over the classes with positives only
    assert m["CP"] == pytest.approx(
        precision_score(y[:, keep], pred[:, keep], average="macro", zero_division=0)
    )
    assert m["CR"] == pytest.approx(recall_score(y[:, keep], pred[:, keep], average="macro", zero_division=0))
    # OP / OR pool all classes (class 4's false positives lower OP)
    assert m["OP"] == pytest.approx(precision_score(y, pred, average="micro", zero_division=0))
    assert m["OR"] == pytest.approx(recall_score(y, pred, average="micro", zero_division=0))
    table = per_class_table(s, y)
    assert np.isnan(table.loc[2, "AP"]) and np.isnan(table.loc[2, "R"]) and np.isnan(table.loc[2, "F1"])
    assert table.loc[4, "P"] == 0.0


def test_no_class_with_positives_gives_nan() -> None:
    with pytest.warns(UserWarning, match="2 of 2 classes"):
        m = multilabel_metrics(np.array([[0.2, 0.7], [0.1, 0.3]]), np.zeros((2, 2), dtype=int))
    assert np.isnan(m["mAP"]) and np.isnan(m["CP"]) and np.isnan(m["CR"]) and np.isnan(m["OR"])
    assert m["OP"] == 0.0


def test_no_warning_when_all_classes_have_positives() -> None:
    s, y = _random_case(2, 50, 4, decimals=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        multilabel_metrics(s, y)


# ----------------------------------------------------------------------------------------------------------
# thresholded metrics
# ----------------------------------------------------------------------------------------------------------
def test_cp_cr_op_or_hand_computed() -> None:
    # 4 images, 3 classes, threshold 0.5 (>= counts as predicted)
    s = np.array(
        [
            [0.9, 0.5, 0.1],
            [0.8, 0.2, 0.7],
            [0.3, 0.6, 0.2],
            [0.4, 0.1, 0.49],
        ]
    )
    y = np.array(
        [
            [1, 0, 0],
            [0, 0, 1],
            [1, 1, 0],
            [1, 0, 1],
        ]
    )
    # predictions: class0 -> imgs 0,1; class1 -> imgs 0,2 (0.5 >= 0.5); class2 -> img 1
    # class0: TP=1 (img0), Np=2, Ng=3 -> P=1/2, R=1/3
    # class1: TP=1 (img2), Np=2, Ng=1 -> P=1/2, R=1
    # class2: TP=1 (img1), Np=1, Ng=2 -> P=1,   R=1/2
    cp = (1 / 2 + 1 / 2 + 1) / 3
    cr = (1 / 3 + 1 + 1 / 2) / 3
    op = 3 / 5
    orec = 3 / 6
    m = multilabel_metrics(s, y)
    assert m["CP"] == pytest.approx(cp)
    assert m["CR"] == pytest.approx(cr)
    assert m["CF1"] == pytest.approx(2 * cp * cr / (cp + cr))
    assert m["OP"] == pytest.approx(op)
    assert m["OR"] == pytest.approx(orec)
    assert m["OF1"] == pytest.approx(2 * op * orec / (op + orec))
    assert m["num_images"] == 4 and m["num_classes"] == 3
    table = per_class_table(s, y)
    assert list(table.columns) == ["AP", "P", "R", "F1"]
    assert table.index.name == "index" and list(table.index) == [0, 1, 2]
    np.testing.assert_allclose(table["P"], [1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(table["R"], [1 / 3, 1, 1 / 2])
    np.testing.assert_allclose(table["F1"], [0.4, 2 / 3, 2 / 3])
    np.testing.assert_allclose(table["AP"], m["AP"])
    # sklearn agreement
    pred = (s >= 0.5).astype(int)
    assert m["CP"] == pytest.approx(precision_score(y, pred, average="macro", zero_division=0))
    assert m["CR"] == pytest.approx(recall_score(y, pred, average="macro", zero_division=0))
    assert m["OP"] == pytest.approx(precision_score(y, pred, average="micro", zero_division=0))
    assert m["OR"] == pytest.approx(recall_score(y, pred, average="micro", zero_division=0))
    assert m["OF1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))


def test_cf1_is_not_macro_f1() -> None:
    # torchmetrics #1665 example shape: per-class (P, R) = (1, 1/3) and (1/3, 1)
    # class0: Ng=3, predicted 1 correct -> P=1, R=1/3; class1: Ng=1, predicted 3 (1 correct) -> P=1/3, R=1
    s = np.array([[0.9, 0.9], [0.1, 0.8], [0.1, 0.7], [0.1, 0.1]])
    y = np.array([[1, 1], [1, 0], [1, 0], [0, 0]])
    m = multilabel_metrics(s, y)
    cp = cr = (1 + 1 / 3) / 2
    assert m["CP"] == pytest.approx(cp) and m["CR"] == pytest.approx(cr)
    assert m["CF1"] == pytest.approx(2 / 3)
    macro_f1 = f1_score(y, (s >= 0.5).astype(int), average="macro")
    assert macro_f1 == pytest.approx(0.5)
    assert m["CF1"] != pytest.approx(macro_f1)


def test_precision_zero_for_class_never_predicted() -> None:
    s = np.array([[0.9, 0.2], [0.8, 0.3], [0.1, 0.4]])
    y = np.array([[1, 1], [0, 1], [1, 0]])
    m = multilabel_metrics(s, y)
    # class0: P = 1/2, R = 1/2; class1: never predicted -> P = 0, R = 0
    assert m["CP"] == pytest.approx(0.25)
    assert m["CR"] == pytest.approx(0.25)
    assert per_class_table(s, y).loc[1, "P"] == 0.0
    assert per_class_table(s, y).loc[1, "F1"] == 0.0


def test_image_without_predictions() -> None:
    s = np.array([[0.9, 0.1, 0.6], [0.2, 0.3, 0.1], [0.7, 0.6, 0.2]])  # image 1: all below threshold
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    m = multilabel_metrics(s, y)
    pred = (s >= 0.5).astype(int)
    assert m["OP"] == pytest.approx(precision_score(y, pred, average="micro"))  # 4/4
    assert m["OR"] == pytest.approx(recall_score(y, pred, average="micro"))  # 4/5
    assert m["OP"] == pytest.approx(1.0) and m["OR"] == pytest.approx(4 / 5)
    assert m["CR"] == pytest.approx(recall_score(y, pred, average="macro"))


def test_nothing_predicted_at_all() -> None:
    s = np.full((3, 2), 0.1)
    y = np.array([[1, 0], [0, 1], [1, 1]])
    m = multilabel_metrics(s, y, top_k_mode="top_k_and_threshold")
    for key in (*SEVEN, *(f"{k}_top3" for k in SEVEN)):
        assert m[key] == 0.0, key


@pytest.mark.parametrize("seed", range(4))
def test_prf_matches_sklearn_random(seed: int) -> None:
    s, y = _random_case(10 + seed, 400, 7, decimals=2)
    y[:, 3] = 0
    with pytest.warns(UserWarning):
        m = multilabel_metrics(s, y, threshold=0.55)
    keep = np.flatnonzero(y.any(axis=0))
    pred = (s >= 0.55).astype(int)
    assert m["CP"] == pytest.approx(
        precision_score(y[:, keep], pred[:, keep], average="macro", zero_division=0)
    )
    assert m["CR"] == pytest.approx(recall_score(y[:, keep], pred[:, keep], average="macro", zero_division=0))
    assert m["OP"] == pytest.approx(precision_score(y, pred, average="micro", zero_division=0))
    assert m["OR"] == pytest.approx(recall_score(y, pred, average="micro", zero_division=0))
    assert m["OF1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))


# ----------------------------------------------------------------------------------------------------------
# top-k
# ----------------------------------------------------------------------------------------------------------
def test_top3_both_modes_hand_made() -> None:
    # 2 images, 5 classes.
    s = np.array(
        [
            [0.9, 0.8, 0.3, 0.2, 0.1],  # top-3 = {0, 1, 2}; >= 0.5 among them: {0, 1}
            [0.4, 0.6, 0.6, 0.6, 0.7],  # top-3 = {4, 1, 2} (tie 0.6 x3 -> lower index first); all >= 0.5
        ]
    )
    y = np.array(
        [
            [1, 0, 1, 0, 0],
            [0, 0, 0, 1, 1],
        ]
    )
    # mode "top_k": predictions img0 {0,1,2}, img1 {1,2,4}
    #   class0: TP1 Np1 Ng1 -> P1 R1 ; class1: TP0 Np2 Ng0 (excluded from CP/CR)
    #   class2: TP1 Np2 Ng1 -> P.5 R1 ; class3: TP0 Np0 Ng1 -> P0 R0 ; class4: TP1 Np1 Ng1 -> P1 R1
    with pytest.warns(UserWarning):
        m = multilabel_metrics(s, y, top_k=3, top_k_mode="top_k")
    assert m["CP_top3"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert m["CR_top3"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert m["OP_top3"] == pytest.approx(3 / 6)
    assert m["OR_top3"] == pytest.approx(3 / 4)
    # mode "top_k_and_threshold": img0 {0,1}, img1 {1,2,4}
    #   class0: P1 R1 ; class2: TP0 Np1 -> P0 R0 ; class3: P0 R0 ; class4: P1 R1
    with pytest.warns(UserWarning):
        m2 = multilabel_metrics(s, y, top_k=3, top_k_mode="top_k_and_threshold")
    assert m2["CP_top3"] == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert m2["CR_top3"] == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert m2["OP_top3"] == pytest.approx(2 / 5)
    assert m2["OR_top3"] == pytest.approx(2 / 4)
    assert m2["OF1_top3"] == pytest.approx(2 * (2 / 5) * (2 / 4) / (2 / 5 + 2 / 4))
    # the all-label metrics do not depend on the mode
    for key in SEVEN:
        assert m[key] == m2[key]
    assert m["top_k_mode"] == "top_k" and m2["top_k_mode"] == "top_k_and_threshold"


def test_top_k_suffix_and_k_larger_than_c() -> None:
    s = np.array([[0.1, 0.2], [0.3, 0.9]])
    y = np.array([[1, 0], [0, 1]])
    m = multilabel_metrics(s, y, top_k=5)
    assert "OP_top5" in m and "OP_top3" not in m and "mAP_top5" not in m
    # k >= C: every label is predicted
    assert m["OP_top5"] == pytest.approx(2 / 4) and m["OR_top5"] == pytest.approx(1.0)
    m1 = multilabel_metrics(s, y, top_k=1)
    assert m1["OP_top1"] == pytest.approx(1 / 2)  # img0 predicts class1 (wrong), img1 class1 (right)


def test_top_k_equals_sklearn_on_explicit_mask() -> None:
    s, y = _random_case(21, 300, 10, decimals=1)  # many ties
    m = multilabel_metrics(s, y, top_k=3)
    order = np.argsort(-s, axis=1, kind="stable")[:, :3]
    pred = np.zeros_like(y)
    np.put_along_axis(pred, order, 1, axis=1)
    assert (pred.sum(axis=1) == 3).all()
    assert m["CP_top3"] == pytest.approx(precision_score(y, pred, average="macro", zero_division=0))
    assert m["OR_top3"] == pytest.approx(recall_score(y, pred, average="micro"))


# ----------------------------------------------------------------------------------------------------------
# output and validation
# ----------------------------------------------------------------------------------------------------------
def test_output_keys_types_and_json() -> None:
    s, y = _random_case(4, 60, 5, decimals=None)
    m = multilabel_metrics(s, y)
    expected = {"mAP", *SEVEN, *(f"{k}_top3" for k in SEVEN)}
    assert expected <= set(m)
    assert {"AP", "num_images", "num_classes", "classes_without_positives"} <= set(m)
    for key in expected:
        assert isinstance(m[key], float) and 0.0 <= m[key] <= 1.0, key
    assert len(m["AP"]) == 5 and all(isinstance(v, float) for v in m["AP"])
    json.loads(json.dumps(m))


def test_bool_and_float_labels_accepted() -> None:
    s, y = _random_case(5, 40, 3, decimals=None)
    a = multilabel_metrics(s, y)
    b = multilabel_metrics(s.astype(np.float32), y.astype(bool))
    c = multilabel_metrics(s, y.astype(np.float64))
    assert a["mAP"] == pytest.approx(b["mAP"], abs=1e-6) and a["mAP"] == c["mAP"]


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "shape mismatch"),
        (np.zeros(3), np.zeros(3), "2-D"),
        (np.zeros((3, 2)), np.array([[0, 1], [2, 0], [1, 1]]), r"labels must be in \{0, 1\}"),
        (np.zeros((2, 2)), np.array([[-1, 1], [1, -1]]), "-1"),
        (np.array([[0.1, np.nan], [0.2, 0.3]]), np.zeros((2, 2)), "NaN"),
        (np.array([[0.1, np.inf], [0.2, 0.3]]), np.zeros((2, 2)), "infinite"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "empty"),
    ],
)
def test_validation_errors(scores: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        multilabel_metrics(scores, labels)


def test_validation_of_options_and_1d_api() -> None:
    s, y = _random_case(6, 10, 3, decimals=None)
    with pytest.raises(ValueError, match="top_k_mode"):
        multilabel_metrics(s, y, top_k_mode="top3")
    with pytest.raises(ValueError, match="top_k"):
        multilabel_metrics(s, y, top_k=0)
    with pytest.raises(ValueError, match="shape mismatch"):
        average_precision(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="1-D"):
        average_precision(np.zeros((3, 1)), np.zeros((3, 1)))
    assert np.isnan(average_precision(np.array([0.2, 0.3]), np.array([0, 0])))
    with pytest.raises(ValueError, match="shape mismatch"):
        per_class_table(np.zeros((3, 2)), np.zeros((2, 2)))


def test_coco_sized_input_with_ties() -> None:
    """COCO's test size (40k x 80) with heavy ties (3 decimals) goes through (speed: benchmarks/metrics_speed.py)."""
    rng = np.random.default_rng(0)
    y = rng.random((40_000, 80)) < 0.03
    y[0] = True
    s = np.round(rng.random((40_000, 80)).astype(np.float32), 3)
    m = multilabel_metrics(s, y)
    assert 0.0 < m["mAP"] < 0.2  # random scores: AP near the positive rate


def test_per_class_table_is_dataframe_float64() -> None:
    s, y = _random_case(8, 30, 4, decimals=1)
    t = per_class_table(s, y, threshold=0.4)
    assert isinstance(t, pd.DataFrame) and t.shape == (4, 4)
    assert all(t.dtypes == np.float64)
    pred = (s >= 0.4).astype(int)
    np.testing.assert_allclose(t["P"], precision_score(y, pred, average=None, zero_division=0))
    np.testing.assert_allclose(t["R"], recall_score(y, pred, average=None))
    np.testing.assert_allclose(t["F1"], f1_score(y, pred, average=None, zero_division=0))


# ----------------------------------------------------------------------------------------------------------
# CorLoc
# ----------------------------------------------------------------------------------------------------------
def test_corloc_hand_made() -> None:
    # 3 images, 3 classes. Inclusive-pixel IoU: a 10x10 box [0,0,9,9] has area 100.
    boxes = np.zeros((3, 3, 4))
    boxes[0, 0] = [0, 0, 9, 9]  # GT [0,0,9,9] -> IoU 1 -> hit
    boxes[0, 1] = [0, 0, 9, 9]  # GT [5,0,14,9]: inter 5x10=50, union 150 -> 1/3 -> miss
    boxes[1, 0] = [0, 0, 9, 9]  # GTs [50,50,59,59] (miss) and [0,0,9,14] (IoU 100/150 = 2/3) -> hit
    boxes[1, 2] = [0, 0, 9, 9]  # label 1 but no GT box of class 2 -> not a pair
    boxes[2, 1] = [0, 0, 9, 9]  # GT [0,0,9,19]: IoU 100/200 = 0.5 -> hit (>=); exclusive would give 0.5 too
    boxes[2, 2] = [0, 0, 9, 9]  # label 0 -> not a pair even with a GT box
    labels = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0]])
    gt = [
        [(0, [0, 0, 9, 9]), (1, [5, 0, 14, 9])],
        [(0, [50, 50, 59, 59]), (0, [0, 0, 9, 14])],
        [(1, [0, 0, 9, 19]), (2, [0, 0, 9, 9])],
    ]
    with pytest.warns(UserWarning, match=r"class indices \[2\]"):
        out = corloc(boxes, labels, gt)
    assert out["CorLoc_per_class"][0] == pytest.approx(1.0)  # 2/2
    assert out["CorLoc_per_class"][1] == pytest.approx(0.5)  # 1/2
    assert np.isnan(out["CorLoc_per_class"][2])
    assert out["CorLoc"] == pytest.approx(0.75)
    assert out["CorLoc_pooled"] == pytest.approx(3 / 4)
    assert out["CorLoc_num_pairs"] == [2, 2, 0]
    json.loads(json.dumps(out))


def test_corloc_inclusive_convention_matters() -> None:
    # pred [0,0,1,1] (2x2 = 4 px) vs GT [1,0,2,1]: inclusive intersection 1x2 = 2 px, union 6 -> IoU 1/3.
    # With width = x2 - x1 (exclusive convention) the intersection would be empty (IoU 0).
    boxes = np.array([[[0.0, 0.0, 1.0, 1.0]]])
    out = corloc(boxes, np.array([[1]]), [[(0, [1.0, 0.0, 2.0, 1.0])]], iou_threshold=0.3)
    assert out["CorLoc"] == 1.0
    out = corloc(boxes, np.array([[1]]), [[(0, [1.0, 0.0, 2.0, 1.0])]], iou_threshold=0.34)
    assert out["CorLoc"] == 0.0


def test_corloc_nan_box_is_miss_and_validation() -> None:
    boxes = np.full((1, 1, 4), np.nan)
    assert corloc(boxes, np.array([[1]]), [[(0, [0, 0, 5, 5])]])["CorLoc"] == 0.0
    with pytest.raises(ValueError, match=r"\[N, C, 4\]"):
        corloc(np.zeros((1, 1, 3)), np.array([[1]]), [[]])
    with pytest.raises(ValueError, match="gt_boxes has 2 entries"):
        corloc(np.zeros((1, 1, 4)), np.array([[1]]), [[], []])
    with pytest.raises(ValueError, match="class index 3"):
        corloc(np.zeros((1, 1, 4)), np.array([[1]]), [[(3, [0, 0, 1, 1])]])
    with pytest.raises(ValueError, match="shape mismatch"):
        corloc(np.zeros((1, 2, 4)), np.array([[1]]), [[]])
