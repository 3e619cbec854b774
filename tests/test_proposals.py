"""Tests of kdwsd.proposals: EdgeBoxes wrapper, edge maps, shard store, recall QC, worker pool."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from kdwsd.proposals import (
    ProposalStore,
    box_iou,
    compute_edge_maps,
    compute_proposals,
    edge_boxes,
    qc_row,
    recall_at_iou,
    shard_filename,
    shard_indices,
    split_params,
    write_shard,
)
from kdwsd.proposals.edges import EdgeMapParams


def _textured_background(height: int, width: int, seed: int) -> np.ndarray:
    """uint8 [H, W, 3]: smooth colour blotches plus pixel noise."""
    rng = np.random.default_rng(seed)
    blotches = cv2.resize(rng.uniform(60, 190, (12, 16, 3)).astype(np.float32), (width, height))
    noise = rng.normal(0, 12, (height, width, 3))
    return np.clip(blotches + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rectangle_image() -> tuple[np.ndarray, np.ndarray]:
    image = _textured_background(480, 640, seed=1)
    box = np.array([150, 110, 379, 289], np.float32)  # inclusive pixels
    cv2.rectangle(image, (150, 110), (379, 289), (230, 40, 40), thickness=-1)
    return image, box


@pytest.fixture(scope="module")
def circle_image() -> tuple[np.ndarray, np.ndarray]:
    image = _textured_background(400, 560, seed=2)
    cx, cy, r = 330, 190, 90
    cv2.circle(image, (cx, cy), r, (30, 60, 220), thickness=-1)
    return image, np.array([cx - r, cy - r, cx + r, cy + r], np.float32)


# ---------------------------------------------------------------------------------------------- EdgeBoxes
@pytest.mark.parametrize("fixture", ["rectangle_image", "circle_image"])
def test_drawn_object_is_found_among_top_boxes(fixture: str, request: pytest.FixtureRequest) -> None:
    image, gt = request.getfixturevalue(fixture)
    boxes, _ = edge_boxes(image, 500)
    best_top50 = box_iou(gt[None], boxes[:50]).max()
    assert best_top50 >= 0.7, f"best IoU among the top 50 boxes: {best_top50:.3f}"


def test_output_types_sorting_and_clipping(rectangle_image: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = rectangle_image
    height, width = image.shape[:2]
    boxes, scores = edge_boxes(image, 37)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and scores.shape == (len(boxes),)
    assert 0 < len(boxes) <= 37
    assert np.all(np.diff(scores) <= 0), "scores must be sorted descending"
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0)
    assert np.all(boxes[:, 2] <= width - 1) and np.all(boxes[:, 3] <= height - 1)
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
    # the default working resolution (max side 320) must not shrink the boxes' frame: some box reaches
    # beyond the 320 x 240 working image
    assert boxes[:, 2].max() > 320


def test_native_resolution_and_more_boxes(rectangle_image: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = rectangle_image
    boxes, scores = edge_boxes(image[:240, :320].copy(), 200, max_side=None, min_box_area=500)
    assert len(boxes) <= 200 and np.all(np.diff(scores) <= 0)
    assert boxes[:, 2].max() <= 319 and boxes[:, 3].max() <= 239


def test_uniform_image_gives_no_boxes() -> None:
    boxes, scores = edge_boxes(np.full((120, 160, 3), 128, np.uint8), 10)
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((50, 60, 3), np.float32), "uint8"),
        (np.zeros((50, 60), np.uint8), "shape"),
        (np.zeros((50, 60, 4), np.uint8), "shape"),
        (np.zeros((50, 60, 3, 1), np.uint8), "shape"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_image_is_rejected(image: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        edge_boxes(image, 10)  # type: ignore[arg-type]


def test_bad_parameters_are_rejected(rectangle_image: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = rectangle_image
    with pytest.raises(ValueError, match="max_boxes"):
        edge_boxes(image, 0)
    with pytest.raises(ValueError, match="unknown EdgeBoxes parameter"):
        edge_boxes(image, 10, alfa=0.6)
    with pytest.raises(ValueError, match="color_space"):
        edge_boxes(image, 10, color_space="hsv")
    with pytest.raises(ValueError, match="alpha"):
        edge_boxes(image, 10, alpha=1.5)
    with pytest.raises(ValueError, match="structured_model"):
        edge_boxes(image, 10, edge_method="structured")


def test_missing_structured_model_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.yml.gz"
    image = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(FileNotFoundError, match=r"structured edge model not found: .*model\.yml\.gz"):
        edge_boxes(image, 10, structured_model=str(missing))
    with pytest.raises(FileNotFoundError, match="opencv_extra"):
        split_params({"edge_method": "structured", "structured_model": missing})


def test_structured_method_runs_with_a_model_file(tmp_path: Path) -> None:
    # The real forest cannot be downloaded here; the minimal model (one single-leaf tree) is a valid model
    # file whose forest predicts no edges, which exercises the structured code path end to end.
    from kdwsd.proposals.edges import _MINIMAL_MODEL_YAML

    model = tmp_path / "model.yml"
    model.write_text(_MINIMAL_MODEL_YAML.format(orientation_radius=4))
    image = _textured_background(90, 120, seed=3)
    assert split_params({"structured_model": model})[0].edge_method == "structured"
    boxes, scores = edge_boxes(image, 10, structured_model=str(model))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    # an explicit gradient method ignores a configured model
    boxes, _ = edge_boxes(image, 10, edge_method="gradient", structured_model=str(model), min_box_area=100)
    assert len(boxes) > 0


def test_yaml_style_parameters_are_normalised() -> None:
    edge_params, box_params = split_params({"scales": [1, 0.5], "max_side": 256, "alpha": 0.6})
    assert edge_params.scales == (1.0, 0.5) and edge_params.edge_method == "gradient"
    assert box_params.max_side == 256 and box_params.alpha == 0.6


def test_edge_maps_are_thin_and_in_range(rectangle_image: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = rectangle_image
    thick, orientation = compute_edge_maps(image, EdgeMapParams(nms=False))
    thin, _ = compute_edge_maps(image, EdgeMapParams())
    for edges in (thick, thin):
        assert edges.shape == image.shape[:2] and edges.dtype == np.float32
        assert edges.min() >= 0 and edges.max() <= 1
    assert orientation.dtype == np.float32 and orientation.min() >= 0 and orientation.max() < math.pi + 1e-5
    assert (thin > 0.1).sum() < 0.7 * (thick > 0.1).sum()
    # the rectangle's top edge is horizontal: its orientation (radians, edge normal) is about pi/2
    assert abs(float(orientation[110, 260]) - math.pi / 2) < 0.3


# ----------------------------------------------------------------------------------------------- worker pool
def test_compute_proposals_pool_matches_single_process(
    tmp_path: Path, rectangle_image: tuple[np.ndarray, np.ndarray], circle_image: tuple[np.ndarray, np.ndarray]
) -> None:
    paths = []
    for i, (image, _) in enumerate([rectangle_image, circle_image, rectangle_image]):
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    single = compute_proposals(paths, 20, processes=1, params={"alpha": 0.6}, progress=False)
    pooled = compute_proposals(paths, 20, processes=2, params={"alpha": 0.6}, progress=False)
    assert single.processes == 1 and pooled.processes == 2
    assert len(single.proposals) == len(pooled.proposals) == 3
    assert single.images_per_s > 0 and single.seconds > 0
    for (b1, s1), (b2, s2) in zip(single.proposals, pooled.proposals, strict=True):
        np.testing.assert_array_equal(b1, b2)
        np.testing.assert_array_equal(s1, s2)
    # reading as RGB: same result as edge_boxes on the in-memory RGB image
    direct, _ = edge_boxes(rectangle_image[0], 20, alpha=0.6)
    np.testing.assert_array_equal(single.proposals[0][0], direct)


def test_compute_proposals_names_an_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("hello")
    with pytest.raises(ValueError, match=r"not_an_image\.jpg"):
        compute_proposals([bad], 10, processes=1, progress=False)
    with pytest.raises(ValueError, match=r"missing\.png.*does not exist"):
        compute_proposals([tmp_path / "missing.png"], 10, processes=1, progress=False)


# ------------------------------------------------------------------------------------------------ store
def test_shard_round_trip_with_an_empty_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    boxes_a = rng.uniform(0, 100, (5, 4)).astype(np.float32)
    scores_a = np.sort(rng.uniform(0, 1, 5).astype(np.float32))[::-1]
    boxes_c = rng.uniform(0, 100, (2, 4)).astype(np.float32)
    scores_c = np.array([0.9, 0.1], np.float32)
    shard0 = tmp_path / "props" / shard_filename(0, 2)
    shard1 = tmp_path / "props" / shard_filename(1, 2)
    write_shard(shard0, [11, 12], [boxes_a, np.zeros((0, 4), np.float32)], [scores_a, np.zeros(0, np.float32)])
    write_shard(shard1, [13], [boxes_c], [scores_c])
    assert shard0.name == "shard-0-of-2.npz"
    assert sorted(p.name for p in shard0.parent.iterdir()) == ["shard-0-of-2.npz", "shard-1-of-2.npz"]

    with np.load(shard0, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["boxes", "image_ids", "offsets", "scores"]
        assert npz["image_ids"].dtype == np.int64 and npz["offsets"].tolist() == [0, 5, 5]
        assert npz["boxes"].dtype == np.float32 and npz["boxes"].shape == (5, 4)
        assert npz["scores"].dtype == np.float32

    store = ProposalStore([shard0, shard1])
    assert len(store) == 3 and store.image_ids.tolist() == [11, 12, 13]
    assert 12 in store and np.int64(13) in store and 14 not in store and "x" not in store
    boxes, scores = store.get(11)
    np.testing.assert_array_equal(boxes, boxes_a)
    np.testing.assert_array_equal(scores, scores_a)
    boxes, scores = store.get(12)
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    np.testing.assert_array_equal(store.get(13)[0], boxes_c)
    with pytest.raises(KeyError, match="14"):
        store.get(14)
    with pytest.raises(ValueError, match="read-only"):
        store.get(11)[0][0, 0] = 1.0


def test_shard_validation(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    box = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="sorted"):
        write_shard(path, [1], [box], [np.array([0.1, 0.2], np.float32)])
    with pytest.raises(ValueError, match="length"):
        write_shard(path, [1, 2], [box], [np.zeros(2, np.float32)])
    with pytest.raises(ValueError, match="duplicates"):
        write_shard(path, [1, 1], [box, box], [np.zeros(2, np.float32)] * 2)
    with pytest.raises(ValueError, match=r"\[n, 4\]"):
        write_shard(path, [1], [np.zeros((2, 3), np.float32)], [np.zeros(2, np.float32)])
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left behind

    write_shard(tmp_path / "a.npz", [1], [box], [np.zeros(2, np.float32)])
    write_shard(tmp_path / "b.npz", [1], [box], [np.zeros(2, np.float32)])
    with pytest.raises(ValueError, match="image id 1 is in both"):
        ProposalStore([tmp_path / "a.npz", tmp_path / "b.npz"])
    write_shard(tmp_path / "empty.npz", [], [], [])
    assert len(ProposalStore([tmp_path / "empty.npz"])) == 0


def test_shard_indices_partition_the_images() -> None:
    n, k = 23, 4
    parts = [shard_indices(n, s, k) for s in range(k)]
    assert all(p.dtype == np.int64 for p in parts)
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))
    assert parts[1].tolist() == [1, 5, 9, 13, 17, 21]
    assert shard_indices(0, 0, 1).tolist() == []
    for bad in [(5, 4, 4), (5, -1, 4), (5, 0, 0)]:
        with pytest.raises(ValueError):
            shard_indices(*bad)


# --------------------------------------------------------------------------------------------------- QC
def test_box_iou_uses_inclusive_pixels() -> None:
    a = np.array([[0, 0, 9, 9], [0, 0, 0, 0]], np.float32)
    b = np.array([[0, 0, 9, 4], [0, 0, 0, 0], [10, 10, 19, 19]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [0.5, 0.01, 0.0])
    np.testing.assert_allclose(iou[1], [0.02, 1.0, 0.0])


def test_recall_at_iou_hand_computed_case() -> None:
    gt = [
        np.array([[0, 0, 9, 9], [20, 20, 29, 29]], np.float32),  # 10 x 10 boxes
        np.zeros((0, 4), np.float32),  # an image without boxes does not count
        np.array([[0, 0, 49, 49]], np.float32),
    ]
    proposals = [
        # IoU with gt 0: 50/100 = 0.5; with gt 1: 90/100 = 0.9 (one column off)
        np.array([[0, 0, 9, 4], [21, 20, 29, 29]], np.float32),
        np.array([[0, 0, 5, 5]], np.float32),
        np.zeros((0, 4), np.float32),  # no proposal: a miss
    ]
    assert recall_at_iou(proposals, gt) == pytest.approx({0.5: 2 / 3, 0.7: 1 / 3})
    assert recall_at_iou(proposals, gt, thresholds=(0.95,)) == {0.95: 0.0}
    # only the first proposal of each image: the 0.9 box is second
    assert recall_at_iou(proposals, gt, top_n=1) == pytest.approx({0.5: 1 / 3, 0.7: 0.0})
    assert math.isnan(recall_at_iou([np.zeros((1, 4))], [np.zeros((0, 4))])[0.5])


def test_qc_row_columns() -> None:
    boxes = [np.zeros((3, 4), np.float32), np.array([[0, 0, 9, 9]], np.float32)]
    gt = [np.zeros((0, 4), np.float32), np.array([[0, 0, 9, 9]], np.float32)]
    row = qc_row("test", boxes, 4.5, gt)
    assert list(row) == ["split", "images", "boxes_per_image", "images_per_s", "recall_0.5", "recall_0.7"]
    assert row["split"] == "test" and row["images"] == 2 and row["boxes_per_image"] == 2.0
    assert row["images_per_s"] == 4.5 and row["recall_0.5"] == 1.0 and row["recall_0.7"] == 1.0
    no_boxes = qc_row("train", boxes, 4.5, None)
    assert no_boxes["recall_0.5"] is None and no_boxes["recall_0.7"] is None
