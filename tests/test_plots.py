"""Tests of kdwsd.plots: files are written, valid and sensibly sized; ordering and label helpers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kdwsd.metrics import recall_at_n
from kdwsd.plots import (
    _format_count,
    _order_by_frequency,
    output_paths,
    plot_examples,
    plot_per_class_improvement,
    plot_recall_vs_boxes,
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
    plot_per_class_improvement(_names(80), rng.normal(0.05, 0.03, 80), counts, big, title="COCO", formats=())
    w_small, _ = _check_png(small)
    w_big, _ = _check_png(big)
    assert w_big > 2.5 * w_small
    plot_per_class_improvement(_names(81), rng.normal(0.05, 0.03, 81), rng.integers(1, 60000, 81), big, formats=())
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
    with pytest.raises(ValueError, match="delta_err"):
        plot_per_class_improvement(_names(3), np.zeros(3), np.ones(3), tmp_path / "x.png", delta_err=np.ones(4))


def test_per_class_improvement_error_bars_and_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    delta = rng.normal(0.03, 0.03, size=12)
    err = np.abs(rng.normal(0.01, 0.005, size=12))
    err[2] = np.nan  # e.g. a class evaluated with one seed only
    out = tmp_path / "err.png"
    plot_per_class_improvement(_names(12), delta, rng.integers(50, 50_000, 12), out, delta_err=err,
                               err_label="95 % CI (3 seeds)")  # fmt: skip
    _check_png(out)
    svg = (tmp_path / "err.svg").read_text()
    # the reader is told the unit, the ordering, what the whiskers are and what the magenta numbers count
    for text in ("percentage points", "sorted by number of training images", "95 % CI (3 seeds)",
                 "training images of the class (1.2k = 1,200)"):  # fmt: skip
        assert text in svg
    assert (tmp_path / "err.pdf").is_file()
    asym = np.vstack([err, 2 * err])
    plot_per_class_improvement(_names(12), delta, np.ones(12), tmp_path / "asym.png", delta_err=asym)


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


def test_plot_examples_gt_and_labelled_teacher_boxes(tmp_path: Path) -> None:
    images, boxes, truth, predictions, names = _example_inputs()
    gt = [[(0, [12, 14, 98, 78]), (2, [60, 70, 290, 220])], [(1, [30, 30, 250, 280])], []]
    tags = [[(0, 0.91), (2, 0.55), (4, 0.05)], [], [(3, 0.2 - 0.01 * j) for j in range(10)]]
    out = tmp_path / "examples_gt.png"
    plot_examples(images, boxes, truth, predictions, names, out, gt_boxes=gt, teacher_box_labels=tags, max_boxes=5)
    _check_png(out, min_w=800, min_h=500)
    svg = (tmp_path / "examples_gt.svg").read_text()
    assert "person 0.91" in svg and "dining table 0.55" in svg and "gold dashed: ground truth" in svg
    assert "tennis racket 0.16" in svg and "tennis racket 0.15" not in svg  # only max_boxes = 5 per image
    with pytest.raises(ValueError, match="teacher_box_labels for 3 teacher boxes"):
        bad = [[(0, 0.5)], [], tags[2]]
        plot_examples(images, boxes, truth, predictions, names, out, teacher_box_labels=bad)
    with pytest.raises(ValueError, match="class index 7"):
        plot_examples(images, boxes, truth, predictions, names, out, gt_boxes=[[(7, [0, 0, 1, 1])], [], []])


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
def _curve(path: Path, n: int = 8, **cols) -> Path:
    df = pd.DataFrame({"epoch": np.arange(1, n + 1), **cols, "lr": 1e-3, "images_per_s": 50.0, "seconds": 9.0})
    df.to_csv(path, index=False)
    return path


def test_plot_training_curves_panels_per_loss_term(tmp_path: Path) -> None:
    e = np.arange(8)
    paths = {
        "teacher": _curve(tmp_path / "teacher.csv", loss=np.exp(-e / 3)),
        "student_stage1_seed0": _curve(tmp_path / "s1.csv", loss=5 * np.exp(-e / 2), rois=300.0),
        "baseline": _curve(tmp_path / "baseline.csv", loss=np.exp(-e / 4), label=np.exp(-e / 4)),
        "kd_full": _curve(
            tmp_path / "kd.csv", loss=0.5 + np.exp(-e / 4), label=np.exp(-e / 4), kd=0.5 + 0 * e,
            tau_mean=1 + e / 10, val_mAP=np.linspace(0.3, 0.7, 8),
        ),
    }  # fmt: skip
    out = tmp_path / "curves.png"
    titles = plot_training_curves(paths, out)
    _check_png(out, min_w=900, min_h=500)
    assert titles == [
        "teacher: WSDDN loss (BCE)",
        "student stage 1: feature loss",
        "student stage 2: label loss (BCE)",
        "student stage 2: KD loss",
        "student stage 2: mean τ",
        "validation mAP",
    ]  # and no throughput / lr / seconds / rois panel
    assert (tmp_path / "curves.pdf").read_bytes()[:5] == b"%PDF-"
    # val_mAP only appears when logged; a model can be assigned a stage explicitly
    titles = plot_training_curves({"x": paths["teacher"]}, tmp_path / "t.png", stages={"x": "teacher"})
    assert titles == ["teacher: WSDDN loss (BCE)"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"step": [1], "loss": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="epoch"):
        plot_training_curves({"x": bad}, tmp_path / "y.png")
    with pytest.raises(ValueError, match="stages"):
        plot_training_curves({"x": paths["teacher"]}, tmp_path / "y.png", stages={"x": "stage3"})


def test_output_paths_and_formats(tmp_path: Path) -> None:
    assert output_paths(tmp_path / "a.png") == [tmp_path / "a.png", tmp_path / "a.pdf", tmp_path / "a.svg"]
    assert output_paths(tmp_path / "a.svg", ("png",)) == [tmp_path / "a.svg", tmp_path / "a.png"]
    plot_per_class_improvement(_names(3), np.zeros(3), np.ones(3), tmp_path / "z.png", formats=("png",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.png"]


def test_plot_recall_vs_boxes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    props, gts = [], []
    for _ in range(10):
        xy = rng.uniform(0, 100, (300, 2))
        props.append(np.c_[xy, xy + rng.uniform(5, 60, (300, 2))])
        g = rng.uniform(0, 100, (3, 2))
        gts.append(np.c_[g, g + rng.uniform(10, 40, (3, 2))])
    df = recall_at_n(props, gts, ns=(1, 10, 50, 100, 300))
    both = pd.concat([df.assign(source="random A"), df.assign(source="random B", recall=df["recall"] / 2)])
    plot_recall_vs_boxes(both, tmp_path / "recall.png", title="proposal recall")
    _check_png(tmp_path / "recall.png")
    with pytest.raises(ValueError, match="recall_at_n"):
        plot_recall_vs_boxes(pd.DataFrame({"n": [1]}), tmp_path / "x.png")


def test_no_pyplot_state(tmp_path) -> None:
    """The module draws on Figure objects: using it imports no pyplot (no global figure state, no GUI backend),
    checked in a fresh interpreter, where nothing else could have imported pyplot."""
    code = (
        "import sys, numpy as np; from kdwsd.plots import plot_per_class_improvement; "
        "plot_per_class_improvement(['a', 'b'], np.array([0.1, -0.05]), np.array([5, 3]), "
        f"{str(tmp_path / 'p.png')!r}, formats=()); print('matplotlib.pyplot' in sys.modules)"
    )  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "p.png").stat().st_size > 1000
