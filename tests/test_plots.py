"""Tests of kdwsd.plots: files are written, valid and sensibly sized; ordering and label helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kdwsd.plots import (
    _format_count,
    _order_by_frequency,
    plot_examples,
    plot_per_class_improvement,
    plot_training_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path, min_w: int = 300, min_h: int = 200) -> tuple[int, int]:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5_000
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        arr = np.asarray(im.convert("L"))
    assert w >= min_w and h >= min_h
    assert arr.std() > 5  # not a blank canvas
    return w, h


def _names(c: int) -> list[str]:
    return [f"class {i}" for i in range(c)]


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------
def test_order_by_frequency_descending_stable() -> None:
    counts = np.array([5, 100, 7, 100, 0, 45000])
    assert _order_by_frequency(counts).tolist() == [5, 1, 3, 2, 0, 4]
    assert _order_by_frequency([3.0, 1.0, 2.0]).tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0"),
        (7, "7"),
        (120, "120"),
        (999, "999"),
        (1000, "1k"),
        (1234, "1.2k"),
        (3000, "3k"),
        (9960, "10k"),
        (45000, "45k"),
        (45174, "45k"),
        (45600, "46k"),
        (np.int64(82081), "82k"),
        (150.0, "150"),
    ],
)
def test_format_count(n: float, text: str) -> None:
    assert _format_count(n) == text


def test_format_count_rejects_negative() -> None:
    with pytest.raises(ValueError, match="count"):
        _format_count(-1)


# ----------------------------------------------------------------------------------------------------------
# per-class improvement
# ----------------------------------------------------------------------------------------------------------
def test_per_class_improvement_10_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    delta = rng.normal(0.03, 0.03, size=10)
    delta[3] = -0.02
    counts = rng.integers(50, 50_000, size=10)
    out = tmp_path / "sub" / "ten.png"
    plot_per_class_improvement(_names(10), delta, counts, out, title="synthetic")
    _check_png(out)


def test_per_class_improvement_80_classes_is_wider(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    small = tmp_path / "ten.png"
    big = tmp_path / "coco.png"
    plot_per_class_improvement(_names(10), rng.normal(0.05, 0.03, 10), rng.integers(50, 9000, 10), small)
    counts = np.r_[45174, rng.integers(60, 9000, size=79)]
    plot_per_class_improvement(_names(80), rng.normal(0.05, 0.03, 80), counts, big, title="COCO")
    w_small, _ = _check_png(small)
    w_big, _ = _check_png(big)
    assert w_big > 2.5 * w_small
    plot_per_class_improvement(_names(81), rng.normal(0.05, 0.03, 81), rng.integers(1, 60000, 81), big)
    _check_png(big)


def test_per_class_improvement_nan_negative_and_svg(tmp_path: Path) -> None:
    delta = np.array([-0.01, np.nan, 0.0, 0.02, -0.05])
    out = tmp_path / "fig.svg"
    plot_per_class_improvement(_names(5), delta, np.array([10, 2000, 3, 900, 1500]), out)
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    plot_per_class_improvement(_names(5), np.full(5, np.nan), np.ones(5), tmp_path / "allnan.png")
    plot_per_class_improvement(_names(3), np.zeros(3), np.ones(3), tmp_path / "zeros.png")
    _check_png(tmp_path / "zeros.png")


def test_per_class_improvement_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one entry per class"):
        plot_per_class_improvement(_names(3), np.zeros(4), np.ones(3), tmp_path / "x.png")


# ----------------------------------------------------------------------------------------------------------
# examples
# ----------------------------------------------------------------------------------------------------------
def _example_inputs() -> tuple[list[np.ndarray], list[np.ndarray], list[set[int]], dict, list[str]]:
    rng = np.random.default_rng(2)
    sizes = [(240, 320), (300, 300), (200, 400)]
    images = [rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]
    boxes = [
        np.array([[10, 10, 100, 80], [50, 60, 300, 230], [0, 0, 319, 239]], dtype=np.float32),
        np.zeros((0, 4), dtype=np.float32),  # no box
        np.tile(np.array([[20.0, 30.0, 120.0, 150.0]]), (10, 1)) + np.arange(10)[:, None] * 5,
    ]
    truth = [{0, 2}, {1}, set()]
    names = ["person", "dog", "dining table", "tennis racket", "cat"]
    predictions = {
        "baseline": [[(0, 0.9), (3, 0.4), (2, 0.3)], [(4, 0.8), (1, 0.7), (0, 0.1)], [(3, 0.2)]],
        # unsorted input and more than 3 pairs: the function keeps the top 3
        "kd_full": [[(4, 0.1), (2, 0.8), (0, 0.95), (1, 0.05)], [(1, 0.9), (0, 0.2), (4, 0.3)], []],
    }
    return images, boxes, truth, predictions, names


def test_plot_examples_three_images(tmp_path: Path) -> None:
    images, boxes, truth, predictions, names = _example_inputs()
    out = tmp_path / "examples.png"
    plot_examples(images, boxes, truth, predictions, names, out, image_titles=["a", "b", "c"])
    w, h = _check_png(out, min_w=800, min_h=500)
    assert w > h  # one row of three columns


def test_plot_examples_wraps_and_limits(tmp_path: Path) -> None:
    images, boxes, truth, predictions, names = _example_inputs()
    k = 4
    out = tmp_path / "examples_many.png"
    plot_examples(
        images * k,
        boxes * k,
        truth * k,
        {m: p * k for m, p in predictions.items()},
        names,
        out,
        max_images=8,
        max_cols=4,
        title="examples",
    )
    w, h = _check_png(out, min_w=1000, min_h=800)
    assert h > 0.6 * w  # two rows of four


def test_plot_examples_grayscale_and_validation(tmp_path: Path) -> None:
    images, boxes, truth, predictions, names = _example_inputs()
    images[0] = images[0][..., 0]
    plot_examples(images, boxes, truth, predictions, names, tmp_path / "gray.png")
    with pytest.raises(ValueError, match="same length"):
        plot_examples(images, boxes[:2], truth, predictions, names, tmp_path / "x.png")
    with pytest.raises(ValueError, match="baseline"):
        bad = {"baseline": predictions["baseline"][:2]}
        plot_examples(images, boxes, truth, bad, names, tmp_path / "x.png")
    with pytest.raises(ValueError, match="class index 9"):
        plot_examples(images, boxes, [{9}, set(), set()], predictions, names, tmp_path / "x.png")


# ----------------------------------------------------------------------------------------------------------
# training curves
# ----------------------------------------------------------------------------------------------------------
def test_plot_training_curves(tmp_path: Path) -> None:
    paths = {}
    for i, model in enumerate(["baseline", "kd_full"]):
        df = pd.DataFrame({"epoch": np.arange(1, 11), "loss": np.exp(-np.arange(10) / (3 + i))})
        if i == 1:
            df["val_mAP"] = np.linspace(0.3, 0.7, 10)
        paths[model] = tmp_path / f"{model}.csv"
        df.to_csv(paths[model], index=False)
    out = tmp_path / "curves.png"
    plot_training_curves(paths, out)
    _check_png(out)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"step": [1], "loss": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="epoch"):
        plot_training_curves({"x": bad}, tmp_path / "y.png")


def test_no_pyplot_state() -> None:
    # the module draws on Figure objects; importing and using it must not create pyplot figures
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []
