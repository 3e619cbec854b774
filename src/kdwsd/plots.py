"""Figures: per-class AP improvement (paper Fig. 4), example predictions (paper Fig. 1), training curves,
proposal recall vs number of boxes.

Everything is drawn on ``matplotlib.figure.Figure`` objects attached to the Agg canvas, never through
``pyplot``: nothing opens a window, no global state (current figure, backend) changes, and figures are freed
as soon as they go out of scope. Every figure is written to ``out_path`` (format from its suffix: ``.png``
raster at 150 dpi, ``.svg``/``.pdf`` vector; no suffix means PNG) **and** next to it in each of ``formats``
(default PNG, PDF and SVG: ``fig.png`` also gives ``fig.pdf`` and ``fig.svg``), so the paper can take the
vector files.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

__all__ = [
    "CURVE_PANELS",
    "FORMATS",
    "curve_stage",
    "output_paths",
    "plot_examples",
    "plot_per_class_improvement",
    "plot_recall_vs_boxes",
    "plot_training_curves",
]

DPI = 150
POSITIVE_COLOR = "#33b31a"  # green, as the paper's bars
NEGATIVE_COLOR = "#d62728"
COUNT_COLOR = "#c0179a"  # magenta, as the paper's count labels
BOX_COLOR = "#00e600"
CORRECT_COLOR = "#0010d0"
WRONG_COLOR = "#e00000"

GT_COLOR = "#ffd700"  # gold: ground-truth boxes, distinct from the teacher's green
FORMATS = ("png", "pdf", "svg")

PathLike = str | os.PathLike[str]


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def output_paths(out_path: PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """The files a plot function writes: ``out_path`` itself, then ``out_path`` with each other suffix of
    ``formats`` (so a rule can declare them: ``plots/x.png`` -> ``[plots/x.png, plots/x.pdf, plots/x.svg]``)."""
    path = Path(out_path)
    out = [path]
    for fmt in formats:
        other = path.with_suffix("." + fmt.lower().lstrip("."))
        if other not in out:
            out.append(other)
    return out


def _save(fig: Figure, out_path: PathLike, formats: Sequence[str] = FORMATS) -> None:
    """Write ``fig`` to every path of :func:`output_paths` (parents created), rasters at :data:`DPI`."""
    for path in output_paths(out_path, formats):
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = path.suffix.lower().lstrip(".") or "png"
        # metadata without a date, so a rerun gives the same bytes for the vector formats
        meta = {"Date": None} if fmt in ("svg", "pdf") else None
        if fmt == "pdf":
            meta = {"CreationDate": None}
        fig.savefig(path, format=fmt, dpi=DPI, facecolor="white", metadata=meta)


# ----------------------------------------------------------------------------------------------------------
# per-class improvement (paper Fig. 4)
# ----------------------------------------------------------------------------------------------------------
def _order_by_frequency(train_counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """Class indices sorted by training-image count, most frequent first; equal counts keep class order.

    Args:
        train_counts: [C] number of training images per class.

    Returns:
        int64 [C] permutation.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    return np.argsort(-counts, kind="stable").astype(np.int64)


def _format_count(n: float) -> str:
    """Compact training-image count: ``< 1000`` as a plain integer (``120``); ``>= 1000`` in thousands with
    one decimal below 10k and none above (``1234 -> "1.2k"``, ``3000 -> "3k"``, ``45123 -> "45k"``)."""
    if not np.isfinite(n) or n < 0:
        raise ValueError(f"a count must be a finite number >= 0; got {n!r}")
    n = round(float(n))
    if n < 1000:
        return str(n)
    k = n / 1000.0
    if round(k, 1) < 10:
        text = f"{k:.1f}"
        text = text.removesuffix(".0")
    else:
        text = f"{k:.0f}"
    return f"{text}k"


def _fit_ylim_to_texts(fig: Figure, ax, texts: list, lo: float, hi: float) -> None:
    """Widen the y-limits so the (offset, fixed-size) count labels stay inside the axes."""
    span = max(hi - lo, 1e-9)
    ylo, yhi = lo - 0.04 * span, hi + 0.08 * span
    ax.set_ylim(ylo, yhi)
    if not texts:
        return
    for _ in range(4):  # the data size of a text depends on the limits: iterate to a fixed point
        renderer = fig.canvas.get_renderer()
        inv = ax.transData.inverted()
        top, bottom = yhi, ylo
        for t in texts:
            bb = t.get_window_extent(renderer)
            (_, y0), (_, y1) = inv.transform([[bb.x0, bb.y0], [bb.x1, bb.y1]])
            top, bottom = max(top, y1), min(bottom, y0)
        pad = 0.02 * (top - bottom)
        new_hi = top + pad if top > yhi - 1e-12 else yhi
        new_lo = bottom - pad if bottom < ylo + 1e-12 else ylo
        if math.isclose(new_hi, yhi) and math.isclose(new_lo, ylo):
            break
        ylo, yhi = new_lo, new_hi
        ax.set_ylim(ylo, yhi)


def _error_bounds(err: np.ndarray | Sequence | None, c: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(below, above) error half-lengths, each float [C], from a symmetric [C] or a [2, C] array."""
    if err is None:
        return None
    e = np.asarray(err, dtype=np.float64)
    if e.shape == (c,):
        return e, e
    if e.shape == (2, c):
        return e[0], e[1]
    raise ValueError(f"delta_err must have shape [C] (symmetric) or [2, C] (below, above) with C = {c}; got {e.shape}")


def plot_per_class_improvement(
    class_names: Sequence[str],
    delta_ap: np.ndarray,
    train_counts: np.ndarray,
    out_path: PathLike,
    title: str = "",
    ylabel: str = "ΔAP (percentage points)",
    *,
    delta_err: np.ndarray | None = None,
    err_label: str = "95 % interval over seeds",
    formats: Sequence[str] = FORMATS,
) -> None:
    """Bar chart of the per-class AP change, in the style of the paper's Fig. 4.

    Classes are sorted by training-image count (descending; ties keep class order; the x-axis label says
    so). Each bar is ``100 * delta_ap`` -- **the input is a difference of AP fractions, drawn in percentage
    points** -- green when >= 0 and red when < 0, with the class's training-image count written at its end
    (``45k`` = 45,000, ``1.2k``, ``120``). With ``delta_err`` each bar gets an error bar (e.g. the seed mean's
    95 % interval or its sd). A class with NaN delta (e.g. no test positive) gets no bar and ``n/a``. The
    mean change over finite classes is drawn as a dashed line and given in the legend.

    Args:
        class_names: [C] class names (x tick labels).
        delta_ap: float [C], AP(model) - AP(baseline) as fractions (the mean over seeds when there are several).
        train_counts: [C] training images per class.
        out_path: output file (see :func:`output_paths`).
        title: text at the top of the plot.
        ylabel: y-axis label.
        delta_err: optional float [C] (symmetric half-width) or [2, C] (length below, length above the bar
            end), in AP fractions like ``delta_ap``; NaN entries draw no error bar.
        err_label: legend text of the error bars (say what they are: interval or sd, over how many seeds).
        formats: files written next to ``out_path`` (see :func:`output_paths`).
    """
    names = [str(n) for n in class_names]
    delta = np.asarray(delta_ap, dtype=np.float64).reshape(-1)
    counts = np.asarray(train_counts, dtype=np.float64).reshape(-1)
    c = len(names)
    if c == 0:
        raise ValueError("no classes to plot")
    if delta.shape != (c,) or counts.shape != (c,):
        raise ValueError(
            f"class_names ({c}), delta_ap ({delta.size}) and train_counts ({counts.size}) must have one "
            "entry per class"
        )
    bounds = _error_bounds(delta_err, c)
    order = _order_by_frequency(counts)
    d = 100.0 * delta[order]
    n_sorted = counts[order]
    names_sorted = [names[i] for i in order]
    finite = np.isfinite(d)

    many = c > 24
    fig = _new_figure((max(6.4, 0.8 + 0.245 * c), 4.8 if many else 4.4))
    ax = fig.add_subplot()
    x = np.arange(c)
    heights = np.where(finite, d, 0.0)
    colors = np.where(heights >= 0, POSITIVE_COLOR, NEGATIVE_COLOR)
    ax.bar(x, heights, width=0.82, color=colors, edgecolor="black", linewidth=0.5, zorder=3)
    ax.axhline(0.0, color="black", linewidth=0.9, zorder=4)
    mean = float(d[finite].mean()) if finite.any() else float("nan")
    if np.isfinite(mean):
        ax.axhline(mean, color="0.35", linewidth=1.0, linestyle="--", zorder=2)

    # the label of a bar goes beyond its error bar, so whisker and text never overlap
    top, bottom = heights.copy(), heights.copy()
    err_handle = None
    if bounds is not None:
        below = 100.0 * np.nan_to_num(bounds[0][order], nan=0.0)
        above = 100.0 * np.nan_to_num(bounds[1][order], nan=0.0)
        has = finite & (np.isfinite(bounds[0][order]) | np.isfinite(bounds[1][order]))
        if has.any():
            err_handle = ax.errorbar(
                x[has], heights[has], yerr=np.vstack([below[has], above[has]]), fmt="none", ecolor="black",
                elinewidth=0.8, capsize=1.5 if many else 2.5, capthick=0.8, zorder=5,
            )  # fmt: skip
        top = np.where(has, heights + above, heights)
        bottom = np.where(has, heights - below, heights)

    fontsize = 7 if many else 8.5
    texts = []
    for xi, h, tp, bt, n, ok in zip(x, heights, top, bottom, n_sorted, finite, strict=True):
        label = _format_count(n) if np.isfinite(n) else "?"
        if not ok:
            label = f"n/a ({label})"
        up = h >= 0
        texts.append(
            ax.annotate(
                label,
                (xi, max(h, tp) if up else min(h, bt)),
                xytext=(0, 2 if up else -2),
                textcoords="offset points",
                ha="center",
                va="bottom" if up else "top",
                rotation=90 if many else 0,
                fontsize=fontsize,
                color=COUNT_COLOR,
                zorder=6,
                bbox={
                    "boxstyle": "square,pad=0.05",
                    "facecolor": "white",
                    "edgecolor": "none",
                    "alpha": 0.75,
                },
            )
        )

    ax.set_xticks(x)
    ax.set_xticklabels(
        names_sorted,
        rotation=45 if many else 35,
        ha="right",
        rotation_mode="anchor",
        fontsize=8 if many else 9,
    )
    ax.set_xlim(-0.6, c - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("classes, sorted by number of training images (most frequent first)", fontsize=9)
    ax.yaxis.grid(True, linestyle="--", linewidth=0.6, color="0.8", zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    n_pos = int((d[finite] > 0).sum())
    n_neg = int((d[finite] < 0).sum())
    n_fin = int(finite.sum())
    handles = [
        Patch(facecolor=POSITIVE_COLOR, edgecolor="black", linewidth=0.5, label=f"improved ({n_pos}/{n_fin})"),
        Patch(facecolor=NEGATIVE_COLOR, edgecolor="black", linewidth=0.5, label=f"worse ({n_neg}/{n_fin})"),
        Line2D([], [], color="0.35", linestyle="--", label=f"mean {mean:+.2f} pp"),
    ]
    if err_handle is not None:
        err_handle.set_label(err_label)
        handles.append(err_handle)
    # a sample count as the marker ("120"): the number is a count of images, "k" only appears as its unit
    handles.append(
        Line2D([], [], linestyle="none", marker="$120$", markersize=14, color=COUNT_COLOR,
               label="training images of the class (1.2k = 1,200)")
    )  # fmt: skip
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=len(handles) if c > 12 else 2,
        fontsize=8,
        frameon=False,
        borderaxespad=0.3,
        handlelength=1.8,
    )
    summary = f"mean ΔAP {mean:+.2f} pp over {n_fin} classes"
    # title on its own line, the summary below it, so neither is cut off on a narrow (few-class) figure
    fig.suptitle(f"{title}\n{summary}" if title else summary, fontsize=11)

    lo = float(min(0.0, bottom.min()))
    hi = float(max(0.0, top.max()))
    if hi == lo:
        hi = lo + 1.0
    _fit_ylim_to_texts(fig, ax, texts, lo, hi)
    _save(fig, out_path, formats)


# ----------------------------------------------------------------------------------------------------------
# example predictions (paper Fig. 1)
# ----------------------------------------------------------------------------------------------------------
_LINE_IN = 0.19  # height of one text line (inches) at font size 9
_CELL_W_IN = 2.7
_IMG_H_IN = 2.3


def _top_predictions(pairs: Sequence[tuple[int, float]], k: int) -> list[tuple[int, float]]:
    """The ``k`` highest-scoring ``(class, score)`` pairs, ties in the given order."""
    items = [(int(cl), float(sc)) for cl, sc in pairs]
    order = sorted(range(len(items)), key=lambda i: -items[i][1])
    return [items[i] for i in order[:k]]


def _example_lines(
    true_labels: set[int],
    preds: Mapping[str, list[tuple[int, float]]],
    class_names: Sequence[str],
    wrap: int,
) -> list[tuple[str, str, str]]:
    """Text lines under one image as ``(text, color, weight)``."""
    lines: list[tuple[str, str, str]] = [("ground truth:", "black", "bold")]
    gt = ", ".join(class_names[i] for i in sorted(true_labels)) or "(none)"
    lines += [(chunk, "0.2", "normal") for chunk in textwrap.wrap(gt, wrap)]
    for model, pairs in preds.items():
        lines.append((f"{model}:", "black", "bold"))
        if not pairs:
            lines.append(("(no prediction)", "0.4", "normal"))
        for cl, sc in pairs:
            ok = cl in true_labels
            mark = "✓" if ok else "✗"
            lines.append(
                (f"{mark} {class_names[cl]}  {sc:.2f}", CORRECT_COLOR if ok else WRONG_COLOR, "normal")
            )
    return lines


def plot_examples(
    images: Sequence[np.ndarray],
    teacher_boxes: Sequence[np.ndarray],
    true_labels: Sequence[set[int]],
    predictions: Mapping[str, Sequence[Sequence[tuple[int, float]]]],
    class_names: Sequence[str],
    out_path: PathLike,
    max_images: int = 8,
    *,
    top_k: int = 3,
    max_cols: int = 4,
    image_titles: Sequence[str] | None = None,
    title: str = "",
    gt_boxes: Sequence[Sequence[tuple[int, Sequence[float]]]] | None = None,
    teacher_box_labels: Sequence[Sequence[tuple[int, float]]] | None = None,
    max_boxes: int = 10,
    formats: Sequence[str] = FORMATS,
) -> None:
    """Grid of example images with the teacher's boxes and each model's top-k labels (paper Fig. 1 style).

    Every cell shows one image with the ground-truth boxes (gold, dashed, class name at the bottom left) and
    the teacher's boxes (green; with ``teacher_box_labels`` each is tagged ``class score`` at its top left)
    and, under it, the ground-truth label names followed by, for each model in ``predictions`` (in its
    order, e.g. ``{"baseline": ..., "kd_full": ...}``), its ``top_k`` highest-scoring labels with their
    scores: correct labels (in ``true_labels``) in blue with a check mark, wrong ones in red with a cross.
    Cells are laid out in rows of at most ``max_cols`` images.

    Args:
        images: per image an RGB uint8 array [H, W, 3] (grayscale [H, W] and float [0, 1] also work).
        teacher_boxes: per image float [B, 4] ``x1, y1, x2, y2`` in that image's pixel frame (inclusive
            pixels, drawn from ``x1 - 0.5`` to ``x2 + 0.5``), best first; an empty array draws no box. The
            first ``max_boxes`` are drawn.
        true_labels: per image the set of ground-truth class indices.
        predictions: model name -> per image a list of ``(class_index, score)``; the ``top_k`` highest are
            shown (pass all C pairs or just the top ones).
        class_names: [C] names.
        out_path: output file (``.png`` at 150 dpi, or ``.svg``).
        max_images: only the first ``max_images`` images are drawn.
        top_k: labels shown per model.
        max_cols: images per grid row.
        image_titles: optional caption above each image (e.g. the image id).
        title: optional figure title.
        gt_boxes: optional, per image the :func:`kdwsd.metrics.corloc` list of ``(class_index, box)``.
        teacher_box_labels: optional, per image one ``(class_index, score)`` per row of ``teacher_boxes``
            (e.g. the teacher's top classes and their image scores, with ``class_boxes`` of those classes).
        max_boxes: teacher boxes drawn per image.
        formats: files written next to ``out_path`` (see :func:`output_paths`).
    """
    n_all = len(images)
    if len(teacher_boxes) != n_all or len(true_labels) != n_all:
        raise ValueError(
            f"images ({n_all}), teacher_boxes ({len(teacher_boxes)}) and true_labels ({len(true_labels)}) "
            "must have the same length"
        )
    for model, per_image in predictions.items():
        if len(per_image) != n_all:
            raise ValueError(f"predictions[{model!r}] has {len(per_image)} entries for {n_all} images")
    if image_titles is not None and len(image_titles) != n_all:
        raise ValueError(f"image_titles has {len(image_titles)} entries for {n_all} images")
    if gt_boxes is not None and len(gt_boxes) != n_all:
        raise ValueError(f"gt_boxes has {len(gt_boxes)} entries for {n_all} images")
    if teacher_box_labels is not None:
        if len(teacher_box_labels) != n_all:
            raise ValueError(f"teacher_box_labels has {len(teacher_box_labels)} entries for {n_all} images")
        for i in range(n_all):
            nb = len(np.asarray(teacher_boxes[i]).reshape(-1, 4))
            if len(teacher_box_labels[i]) != nb:
                raise ValueError(f"image {i}: {len(teacher_box_labels[i])} teacher_box_labels for {nb} teacher boxes")
    n = min(n_all, max_images)
    if n == 0:
        raise ValueError("no image to plot")
    c = len(class_names)
    for i in range(n):
        bad = [k for k in true_labels[i] if not 0 <= int(k) < c]
        bad += [cl for model in predictions for cl, _ in predictions[model][i] if not 0 <= int(cl) < c]
        bad += [cl for cl, _ in (gt_boxes[i] if gt_boxes is not None else []) if not 0 <= int(cl) < c]
        tags = teacher_box_labels[i] if teacher_box_labels is not None else []
        bad += [cl for cl, _ in tags if not 0 <= int(cl) < c]
        if bad:
            raise ValueError(f"image {i}: class index {bad[0]} outside [0, {c})")

    ncols = max(1, min(n, max_cols))
    nrows = math.ceil(n / ncols)
    wrap = 30
    cell_lines = [
        _example_lines(
            {int(k) for k in true_labels[i]},
            {m: _top_predictions(p[i], top_k) for m, p in predictions.items()},
            class_names,
            wrap,
        )
        for i in range(n)
    ]
    text_rows = [
        max(len(cell_lines[i]) for i in range(r * ncols, min(n, (r + 1) * ncols))) for r in range(nrows)
    ]
    heights: list[float] = []
    for r in range(nrows):
        heights += [_IMG_H_IN, text_rows[r] * _LINE_IN + 0.05]
    fig = _new_figure((ncols * _CELL_W_IN, sum(heights) + (0.5 if title else 0.3)))
    grid = fig.add_gridspec(2 * nrows, ncols, height_ratios=heights)

    for i in range(n):
        r, col = divmod(i, ncols)
        ax = fig.add_subplot(grid[2 * r, col])
        img = np.asarray(images[i])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="antialiased")
        h, w = img.shape[:2]
        tag = {"fontsize": 6, "zorder": 6, "clip_on": True}
        for k, box in gt_boxes[i] if gt_boxes is not None else []:
            x1, y1, x2, y2 = (float(v) for v in box)
            ax.add_patch(
                Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1 + 1, y2 - y1 + 1, fill=False, edgecolor=GT_COLOR,
                          linewidth=1.2, linestyle="--", zorder=4)
            )  # fmt: skip
            ax.text(x1 - 0.5, y2 + 0.5, class_names[int(k)], ha="left", va="bottom", color="black",
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": GT_COLOR, "edgecolor": "none", "alpha": 0.8},
                    **tag)  # fmt: skip
        boxes = np.asarray(teacher_boxes[i], dtype=np.float64).reshape(-1, 4)[: max(0, max_boxes)]
        box_tags = list(teacher_box_labels[i])[: len(boxes)] if teacher_box_labels is not None else []
        for j, (x1, y1, x2, y2) in enumerate(boxes):
            if not np.isfinite([x1, y1, x2, y2]).all():
                continue
            ax.add_patch(
                Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1 + 1, y2 - y1 + 1, fill=False, edgecolor=BOX_COLOR,
                          linewidth=1.2, zorder=5)
            )  # fmt: skip
            if box_tags:
                k, sc = box_tags[j]
                ax.text(x1 - 0.5, y1 - 0.5, f"{class_names[int(k)]} {float(sc):.2f}", ha="left", va="top",
                        color="black", bbox={"boxstyle": "square,pad=0.1", "facecolor": BOX_COLOR,
                                             "edgecolor": "none", "alpha": 0.8}, **tag)  # fmt: skip
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_linewidth(0.5)
        if image_titles is not None:
            ax.set_title(str(image_titles[i]), fontsize=8)

        tax = fig.add_subplot(grid[2 * r + 1, col])
        tax.set_axis_off()
        tax.set_xlim(0, 1)
        tax.set_ylim(text_rows[r], 0)
        for j, (text, color, weight) in enumerate(cell_lines[i]):
            tax.text(0.5, j + 0.5, text, ha="center", va="center", fontsize=9, color=color, fontweight=weight)

    if title:
        fig.suptitle(title, fontsize=11)
    legend = "green: teacher's boxes" + (" (class, score)" if teacher_box_labels is not None else "")
    if gt_boxes is not None:
        legend += "   ·   gold dashed: ground truth"
    # two lines: one line is wider than a figure of fewer than four columns
    fig.supxlabel(
        f"{legend}\nblue ✓: correct label   ·   red ✗: wrong label   (top-{top_k} labels per model with scores)",
        fontsize=8,
        color="0.3",
    )
    _save(fig, out_path, formats)


# ----------------------------------------------------------------------------------------------------------
# training curves
# ----------------------------------------------------------------------------------------------------------
# (stage, CSV column) -> panel title. ``loss`` means a different objective per stage, so it is split by stage;
# bookkeeping columns (lr, images_per_s, seconds, rois) are not drawn.
CURVE_PANELS: dict[tuple[str, str], str] = {
    ("teacher", "loss"): "teacher: WSDDN loss (BCE)",
    ("stage1", "loss"): "student stage 1: feature loss",
    ("stage2", "label"): "student stage 2: label loss (BCE)",
    ("stage2", "kd"): "student stage 2: KD loss",
    ("stage2", "tau_mean"): "student stage 2: mean τ",
    ("*", "val_mAP"): "validation mAP",
}


def curve_stage(model: str) -> str:
    """Default stage of a training log from its model name: ``teacher*`` -> ``"teacher"``, a name containing
    ``stage1`` -> ``"stage1"``, anything else (baseline, kd_full, ...) -> ``"stage2"``."""
    if model.startswith("teacher"):
        return "teacher"
    return "stage1" if "stage1" in model else "stage2"


def plot_training_curves(
    log_csv_paths: Mapping[str, PathLike],
    out_path: PathLike,
    max_panels: int = 6,
    *,
    stages: Mapping[str, str] | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[str]:
    """Per-epoch training curves: one panel per loss term, plus validation mAP when logged.

    Panels (in this order, each only when some log has the column, see :data:`CURVE_PANELS`): the teacher's
    loss, stage 1's feature loss, stage 2's label and KD terms and its mean temperature ``tau_mean``, and
    ``val_mAP`` of any log. Each experiment is one colour in every panel and its seeds (``<name>_seed<k>``)
    one line style each, so that 5 experiments x 3 seeds stay readable; epochs without a value (validation
    every few epochs) are skipped, not broken lines. Throughput, learning rate and timing columns are not
    drawn.

    Args:
        log_csv_paths: model name -> per-epoch CSV written by ``kdwsd.train.loop.fit`` (needs ``epoch``).
        out_path: output file (see :func:`output_paths`).
        max_panels: maximum number of panels.
        stages: model name -> ``"teacher"``, ``"stage1"`` or ``"stage2"``; models not in it get
            :func:`curve_stage` of their name.
        formats: files written next to ``out_path``.

    Returns:
        The titles of the panels drawn, in order.
    """
    if not log_csv_paths:
        raise ValueError("no training log given")
    logs: dict[str, pd.DataFrame] = {}
    model_stage: dict[str, str] = {}
    for model, path in log_csv_paths.items():
        df = pd.read_csv(path)
        if "epoch" not in df.columns:
            raise ValueError(f"{path}: no 'epoch' column (columns: {list(df.columns)})")
        logs[model] = df.sort_values("epoch")
        stage = (stages or {}).get(model, curve_stage(model))
        if stage not in ("teacher", "stage1", "stage2"):
            raise ValueError(f"stages[{model!r}] = {stage!r}; use 'teacher', 'stage1' or 'stage2'")
        model_stage[model] = stage

    def series(key: tuple[str, str]) -> list[tuple[str, pd.DataFrame]]:
        stage, col = key
        return [
            (m, df) for m, df in logs.items()
            if (stage == "*" or model_stage[m] == stage) and col in df.columns and df[col].notna().any()
        ]  # fmt: skip

    panels = [key for key in CURVE_PANELS if series(key)][: max(1, max_panels)]
    if not panels:
        found = sorted({c for df in logs.values() for c in df.columns})
        raise ValueError(f"no loss term or val_mAP column in the training logs (columns: {found})")

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure((3.5 * ncols + 1.4, 2.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    family = {m: re.sub(r"_seed\d+$", "", m) for m in logs}
    families = list(dict.fromkeys(family.values()))
    colors = {f: f"C{i % 10}" for i, f in enumerate(families)}
    seed_rank = {m: [n for n in logs if family[n] == family[m]].index(m) for m in logs}
    styles = ["-", "--", ":", "-."]
    for ax, key in zip(axes, panels, strict=False):
        col = key[1]
        for model, df in series(key):
            points = df[["epoch", col]].dropna()
            y = 100.0 * points[col] if col == "val_mAP" else points[col]
            ax.plot(points["epoch"], y, color=colors[family[model]], linestyle=styles[seed_rank[model] % len(styles)],
                    marker="o" if len(points) <= 30 else None, markersize=3, linewidth=1.4, label=model)  # fmt: skip
        if col == "val_mAP":
            ax.set_ylabel("mAP (%)", fontsize=9)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_title(CURVE_PANELS[key], fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, linestyle="--", linewidth=0.5, color="0.85")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=colors[f], marker="o", markersize=3, linewidth=1.4, label=f) for f in families]
    runs = max(seed_rank.values()) + 1
    if runs > 1:  # one line style per seed of an experiment, in the order the logs were given
        names = ["first seed", "second seed", "third seed", "fourth seed"]
        handles += [Line2D([], [], color="0.3", linestyle=styles[k], linewidth=1.4, label=names[k])
                    for k in range(min(runs, len(styles)))]  # fmt: skip
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False, title="model",
               title_fontsize=8)  # fmt: skip
    _save(fig, out_path, formats)
    return [CURVE_PANELS[k] for k in panels]


# ----------------------------------------------------------------------------------------------------------
# proposal recall vs number of boxes
# ----------------------------------------------------------------------------------------------------------
def plot_recall_vs_boxes(
    df: pd.DataFrame,
    out_path: PathLike,
    *,
    title: str = "",
    formats: Sequence[str] = FORMATS,
) -> None:
    """Recall of the ground-truth boxes against the number of proposals per image (log x axis).

    Args:
        df: the output of :func:`kdwsd.metrics.recall_at_n` (columns ``iou, n, recall``), optionally with a
            ``source`` column (e.g. ``"EdgeBoxes"``, ``"Selective Search"``) to draw several proposal
            methods; each (source, IoU) is one line, IoU 0.5 solid and higher thresholds dashed.
        out_path: output file (see :func:`output_paths`).
        title: figure title.
        formats: files written next to ``out_path``.
    """
    missing = {"iou", "n", "recall"} - set(df.columns)
    if missing:
        raise ValueError(f"recall table lacks columns {sorted(missing)} (expected kdwsd.metrics.recall_at_n output)")
    data = df.copy()
    if "source" not in data.columns:
        data["source"] = ""
    sources = list(dict.fromkeys(data["source"]))
    ious = sorted(data["iou"].unique())
    styles = ["-", "--", ":", "-."]
    fig = _new_figure((5.2, 3.8))
    ax = fig.add_subplot()
    for si, src in enumerate(sources):
        for ii, t in enumerate(ious):
            part = data[(data["source"] == src) & (data["iou"] == t)].sort_values("n")
            if part.empty:
                continue
            label = f"{src}, IoU ≥ {t:g}" if src else f"IoU ≥ {t:g}"
            ax.plot(part["n"], 100.0 * part["recall"], color=f"C{si % 10}", linestyle=styles[ii % len(styles)],
                    marker="o", markersize=3, linewidth=1.4, label=label)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("proposals per image (best first)")
    ax.set_ylabel("recall of ground-truth boxes (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, which="major", linestyle="--", linewidth=0.5, color="0.85")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, out_path, formats)
