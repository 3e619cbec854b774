"""Tests of the proposal sources of the Table 5 ablation (kdwsd.proposals.sources) and of their config keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from kdwsd.data.prepared import Split
from kdwsd.errors import PipelineInputError
from kdwsd.proposals import (
    METHOD_SECTIONS,
    PROPOSAL_METHODS,
    RandomBoxesParams,
    SelectiveSearchParams,
    box_iou,
    ground_truth_boxes,
    propose,
    random_boxes,
    recall_at_iou,
    selective_search,
)

REPO = Path(__file__).resolve().parents[1]
PROPOSALS_SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"][
    "proposals"
]["properties"]


def _check_format(boxes: np.ndarray, scores: np.ndarray, height: int, width: int) -> None:
    """The proposal-shard format: float32, inclusive pixels inside the image, scores sorted descending."""
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and scores.shape == (len(boxes),)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width - 1).all() and (boxes[:, 3] <= height - 1).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert (np.diff(scores) <= 0).all()


@pytest.fixture(scope="module")
def drawn_rectangle() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = cv2.resize(rng.uniform(60, 190, (9, 12, 3)).astype(np.float32), (400, 300))
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    cv2.rectangle(image, (120, 80), (269, 199), (230, 40, 40), thickness=-1)
    return image, np.array([120, 80, 269, 199], np.float32)


def _split(n: int = 3, with_boxes: bool = True) -> Split:
    gt = [[(0, np.array([10, 12, 40, 50], np.float32)), (1, np.array([10, 12, 40, 50], np.float32)),
           (2, np.array([60, 5, 90, 30], np.float32))] if with_boxes else [] for _ in range(n)]  # fmt: skip
    return Split(name="train", image_ids=np.arange(100, 100 + n), paths=[Path(f"/nowhere/{i}.jpg") for i in range(n)],
                 sizes=np.array([[80, 120]] * n), labels=np.zeros((n, 3), np.uint8), classes=["a", "b", "c"],
                 gt_boxes=gt)  # fmt: skip


# ---------------------------------------------------------------------------------------- selective search
def test_selective_search_finds_a_drawn_rectangle(drawn_rectangle: tuple[np.ndarray, np.ndarray]) -> None:
    image, box = drawn_rectangle
    boxes, scores = selective_search(image, 200)
    _check_format(boxes, scores, *image.shape[:2])
    assert 10 < len(boxes) <= 200
    assert box_iou(boxes, box[None]).max() > 0.8
    # Rank-based scores: 1 for the first, 1 - i / N after.
    np.testing.assert_allclose(scores, 1 - np.arange(len(boxes)) / len(boxes), rtol=1e-6)


def test_selective_search_working_resolution_maps_back(drawn_rectangle: tuple[np.ndarray, np.ndarray]) -> None:
    image, box = drawn_rectangle
    boxes, _ = selective_search(image, 200, max_side=160)  # searched at 160 x 120, boxes in 400 x 300 pixels
    assert boxes[:, 2].max() > 300 and box_iou(boxes, box[None]).max() > 0.75


def test_selective_search_is_deterministic_per_image_id(drawn_rectangle: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = drawn_rectangle
    first = selective_search(image, 50, image_id=7)
    np.testing.assert_array_equal(first[0], selective_search(image, 50, image_id=7)[0])
    # OpenCV's ranking is random: another seed reorders the same search.
    other = selective_search(image, 50, image_id=7, seed=1)[0]
    assert not np.array_equal(first[0], other)


def test_selective_search_rejects_bad_parameters(drawn_rectangle: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = drawn_rectangle
    with pytest.raises(ValueError, match="unknown SelectiveSearchParams parameter"):
        selective_search(image, 10, alpha=0.5)
    with pytest.raises(ValueError, match="mode"):
        selective_search(image, 10, mode="slow")
    with pytest.raises(ValueError, match="max_boxes"):
        selective_search(image, 0)


# ------------------------------------------------------------------------------------------------ random
def test_random_boxes_shapes_bounds_and_determinism() -> None:
    boxes, scores = random_boxes(5, 80, 120, 500, min_size=8)
    _check_format(boxes, scores, 80, 120)
    assert boxes.shape == (500, 4) and (scores == 1).all()
    widths, heights = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    assert widths.min() >= 8 and heights.min() >= 8 and widths.max() > 100
    np.testing.assert_array_equal(boxes, random_boxes(5, 80, 120, 500, min_size=8)[0])
    assert not np.array_equal(boxes, random_boxes(6, 80, 120, 500, min_size=8)[0])
    assert not np.array_equal(boxes, random_boxes(5, 80, 120, 500, min_size=8, seed=1)[0])
    # Uniform sizes: the mean width is about (8 + 120) / 2.
    assert abs(widths.mean() - 64) < 6


def test_random_boxes_in_an_image_smaller_than_min_size() -> None:
    boxes, _ = random_boxes(0, 5, 3, 10, min_size=8)
    _check_format(boxes, np.ones(10, np.float32), 5, 3)
    assert (boxes == [0, 0, 2, 4]).all()


def test_random_boxes_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="min_size"):
        random_boxes(0, 50, 50, 10, min_size=1)
    with pytest.raises(ValueError, match="unknown RandomBoxesParams"):
        random_boxes(0, 50, 50, 10, max_side=3)


# ---------------------------------------------------------------------------------------------- ground truth
def test_ground_truth_boxes_have_full_recall_and_score_one() -> None:
    split = _split()
    boxes, scores = ground_truth_boxes(split.gt_boxes[0], 10)
    assert boxes.shape == (2, 4) and (scores == 1).all()  # the box two classes share is kept once
    _check_format(boxes, scores, 80, 120)
    run = propose("ground_truth", split, range(len(split)), 10)
    gt = [np.array([b for _, b in g]) for g in split.gt_boxes]
    assert recall_at_iou([b for b, _ in run.proposals], gt, (0.5, 0.7)) == {0.5: 1.0, 0.7: 1.0}
    assert len(ground_truth_boxes(split.gt_boxes[0], 1)[0]) == 1


def test_ground_truth_without_boxes_is_a_clear_error() -> None:
    with pytest.raises(PipelineInputError, match=r"split train: proposals\.method: ground_truth needs box annotations"):
        propose("ground_truth", _split(with_boxes=False), [0], 10)


# ---------------------------------------------------------------------------------------------- dispatch
def test_propose_dispatches_and_keeps_image_order() -> None:
    split = _split(4)
    run = propose("random", split, [2, 0], 7, params={"seed": 3}, progress=False)
    assert len(run.proposals) == 2 and run.processes == 1
    np.testing.assert_array_equal(run.proposals[0][0], random_boxes(102, 80, 120, 7, seed=3)[0])
    np.testing.assert_array_equal(run.proposals[1][0], random_boxes(100, 80, 120, 7, seed=3)[0])
    with pytest.raises(ValueError, match=r"unknown proposals\.method 'rpn'"):
        propose("rpn", split, [0], 7)
    with pytest.raises(ValueError, match="no parameters"):
        propose("ground_truth", split, [0], 7, params={"seed": 1})


def test_propose_selective_search_pool_matches_one_process(
    tmp_path: Path, drawn_rectangle: tuple[np.ndarray, np.ndarray]
) -> None:
    image, _ = drawn_rectangle
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), np.ascontiguousarray(np.roll(image, 40 * i, axis=1)[:, :, ::-1]))
    split = Split(name="test", image_ids=np.array([4, 9]), paths=paths, sizes=np.array([[300, 400]] * 2),
                  labels=np.zeros((2, 1), np.uint8), classes=["a"], gt_boxes=[[], []])  # fmt: skip
    one = propose("selective_search", split, [0, 1], 30, 1, {"max_side": 160}, progress=False)
    two = propose("selective_search", split, [0, 1], 30, 2, {"max_side": 160}, progress=False)
    assert two.processes == 2
    for (b1, s1), (b2, s2) in zip(one.proposals, two.proposals, strict=True):
        np.testing.assert_array_equal(b1, b2)
        np.testing.assert_array_equal(s1, s2)


# ---------------------------------------------------------------------------------------------- config keys
def _defaults(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(("section", "cls"), [("selective_search", SelectiveSearchParams),
                                              ("random", RandomBoxesParams)])  # fmt: skip
def test_method_sections_match_the_dataclasses(section: str, cls: type) -> None:
    props = PROPOSALS_SCHEMA[section]["properties"]
    assert {k: v["default"] for k, v in props.items()} == _defaults(cls)
    assert all(v.get("description") for v in props.values()), f"proposals.{section}: a key lacks a description"
    assert PROPOSALS_SCHEMA[section]["additionalProperties"] is False


def test_method_enum_and_sections_agree() -> None:
    assert PROPOSALS_SCHEMA["method"]["enum"] == list(PROPOSAL_METHODS)
    assert PROPOSALS_SCHEMA["method"]["default"] == "edgeboxes"
    assert PROPOSALS_SCHEMA["ablation"]["items"]["enum"] == list(PROPOSAL_METHODS)
    for method, section in METHOD_SECTIONS.items():
        # workflow/rules/proposals.smk relies on this naming: the section is the method's name, EdgeBoxes' `params`.
        assert section == (None if method == "ground_truth" else "params" if method == "edgeboxes" else method)
        assert section is None or section in PROPOSALS_SCHEMA


@pytest.mark.parametrize("method", [m for m in PROPOSAL_METHODS if m != "edgeboxes"])
def test_ablation_overlays(method: str) -> None:
    overlay = yaml.safe_load((REPO / "config" / "ablation" / f"{method}.yaml").read_text())
    assert overlay == {"run": f"synthetic-proposals-{method}", "proposals": {"method": method}}
    assert yaml.safe_load((REPO / "config" / "config.yaml").read_text())["run"] == "synthetic"
