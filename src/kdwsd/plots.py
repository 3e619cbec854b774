"""Figures: per-class AP improvement (paper Fig. 4), example predictions (paper Fig. 1), training curves.

Everything is drawn on ``matplotlib.figure.Figure`` objects attached to the Agg canvas, never through
``pyplot``: nothing opens a window, no global state (current figure, backend) changes, and figures are freed
as soon as they go out of scope. The output format follows the file suffix: ``.png`` (raster, 150 dpi),
``.svg`` (vector), any other suffix matplotlib knows (e.g. ``.pdf``); no suffix means PNG.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

__all__ = ["plot_examples", "plot_per_class_improvement", "plot_training_curves"]

DPI = 150
POSITIVE_COLOR = "#33b31a"  # green, as the paper's bars
NEGATIVE_COLOR = "#d62728"
COUNT_COLOR = "#c0179a"  # magenta, as the paper's count labels
BOX_COLOR = "#00e600"
CORRECT_COLOR = "#0010d0"
WRONG_COLOR = "#e00000"

PathLike = str | os.PathLike[str]


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_path: PathLike) -> None:
    """Write ``fig`` to ``out_path`` (parents created), format from the suffix, rasters at :data:`DPI`."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lower().lstrip(".") or "png"
    fig.savefig(path, format=fmt, dpi=DPI, facecolor="white")


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


def plot_per_class_improvement(
    class_names: Sequence[str],
    delta_ap: np.ndarray,
    train_counts: np.ndarray,
    out_path: PathLike,
    title: str = "",
    ylabel: str = "AP improvement (%)",
) -> None:
    """Bar chart of the per-class AP change, in the style of the paper's Fig. 4.

    Classes are sorted by training-image count (descending; ties keep class order). Each bar is
    ``100 * delta_ap`` -- **the input is a difference of AP fractions, drawn in percentage points** --
    green when >= 0 and red when < 0, with the class's training-image count written at its end (``45k``,
    ``1.2k``, ``120``). A class with NaN delta (e.g. no test positive) gets no bar and ``n/a``. The mean
    change over finite classes is drawn as a dashed line and given in the legend.

    Args:
        class_names: [C] class names (x tick labels).
        delta_ap: float [C], AP(model) - AP(baseline) as fractions.
        train_counts: [C] training images per class.
        out_path: output file (``.png`` at 150 dpi, or ``.svg``/``.pdf``).
        title: text at the top left of the plot.
        ylabel: y-axis label.
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
    order = _order_by_frequency(counts)
    d = 100.0 * delta[order]
    n_sorted = counts[order]
    names_sorted = [names[i] for i in order]
    finite = np.isfinite(d)

    many = c > 24
    fig = _new_figure((max(6.4, 0.8 + 0.245 * c), 4.6 if many else 4.2))
    ax = fig.add_subplot()
    x = np.arange(c)
    heights = np.where(finite, d, 0.0)
    colors = np.where(heights >= 0, POSITIVE_COLOR, NEGATIVE_COLOR)
    ax.bar(x, heights, width=0.82, color=colors, edgecolor="black", linewidth=0.5, zorder=3)
    ax.axhline(0.0, color="black", linewidth=0.9, zorder=4)
    mean = float(d[finite].mean()) if finite.any() else float("nan")
    if np.isfinite(mean):
        ax.axhline(mean, color="0.35", linewidth=1.0, linestyle="--", zorder=2)

    fontsize = 7 if many else 8.5
    texts = []
    for xi, h, n, ok in zip(x, heights, n_sorted, finite, strict=True):
        label = _format_count(n) if np.isfinite(n) else "?"
        if not ok:
            label = f"n/a ({label})"
        up = h >= 0
        texts.append(
            ax.annotate(
                label,
                (xi, h),
                xytext=(0, 2 if up else -2),
                textcoords="offset points",
                ha="center",
                va="bottom" if up else "top",
                rotation=90 if many else 0,
                fontsize=fontsize,
                color=COUNT_COLOR,
                zorder=5,
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
    ax.yaxis.grid(True, linestyle="--", linewidth=0.6, color="0.8", zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    n_pos = int((d[finite] > 0).sum())
    n_neg = int((d[finite] < 0).sum())
    n_fin = int(finite.sum())
    handles = [
        Patch(
            facecolor=POSITIVE_COLOR, edgecolor="black", linewidth=0.5, label=f"improved ({n_pos}/{n_fin})"
        ),
        Patch(
            facecolor=NEGATIVE_COLOR,
            edgecolor="black",
            linewidth=0.5,
            label=f"worse ({n_neg}/{n_fin})",
        ),
        Line2D([], [], color="0.35", linestyle="--", label=f"mean {mean:+.2f} pp"),
        Line2D([], [], linestyle="none", marker="$k$", color=COUNT_COLOR, label="training images per class"),
    ]
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=4 if c > 12 else 2,
        fontsize=8,
        frameon=False,
        borderaxespad=0.3,
        handlelength=1.6,
    )
    summary = f"mean ΔAP {mean:+.2f} pp over {n_fin} classes"
    # title on its own line, the summary below it, so neither is cut off on a narrow (few-class) figure
    fig.suptitle(f"{title}\n{summary}" if title else summary, fontsize=11)

    lo = float(min(0.0, heights.min()))
    hi = float(max(0.0, heights.max()))
    if hi == lo:
        hi = lo + 1.0
    _fit_ylim_to_texts(fig, ax, texts, lo, hi)
    _save(fig, out_path)


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
) -> None:
    """Grid of example images with the teacher's boxes and each model's top-k labels (paper Fig. 1 style).

    Every cell shows one image with the teacher's top-10 boxes in green and, under it, the ground-truth
    label names followed by, for each model in ``predictions`` (in its order, e.g. ``{"baseline": ...,
    "kd_full": ...}``), its ``top_k`` highest-scoring labels with their scores: correct labels (in
    ``true_labels``) in blue with a check mark, wrong ones in red with a cross. Cells are laid out in rows
    of at most ``max_cols`` images.

    Args:
        images: per image an RGB uint8 array [H, W, 3] (grayscale [H, W] and float [0, 1] also work).
        teacher_boxes: per image float [<=10, 4] ``x1, y1, x2, y2`` in that image's pixel frame (inclusive
            pixels, drawn from ``x1 - 0.5`` to ``x2 + 0.5``); an empty array draws no box. At most 10 are
            drawn.
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
    n = min(n_all, max_images)
    if n == 0:
        raise ValueError("no image to plot")
    c = len(class_names)
    for i in range(n):
        bad = [k for k in true_labels[i] if not 0 <= int(k) < c]
        bad += [cl for model in predictions for cl, _ in predictions[model][i] if not 0 <= int(cl) < c]
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
        boxes = np.asarray(teacher_boxes[i], dtype=np.float64).reshape(-1, 4)[:10]
        for x1, y1, x2, y2 in boxes:
            if np.isfinite([x1, y1, x2, y2]).all():
                ax.add_patch(
                    Rectangle(
                        (x1 - 0.5, y1 - 0.5),
                        x2 - x1 + 1,
                        y2 - y1 + 1,
                        fill=False,
                        edgecolor=BOX_COLOR,
                        linewidth=1.0,
                    )
                )
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
    fig.supxlabel(
        f"green: teacher's top-10 boxes   ·   blue ✓: correct label   ·   red ✗: wrong label   (top-{top_k} "
        "labels per model with scores)",
        fontsize=8,
        color="0.3",
    )
    _save(fig, out_path)


# ----------------------------------------------------------------------------------------------------------
# training curves
# ----------------------------------------------------------------------------------------------------------
def plot_training_curves(
    log_csv_paths: Mapping[str, PathLike], out_path: PathLike, max_panels: int = 4
) -> None:
    """Line plot of per-epoch training logs, one line per model.

    Each CSV needs an ``epoch`` column; the first panel is ``loss`` and further panels (up to
    ``max_panels`` in all) show the other numeric columns found in any log (e.g. ``val_mAP``, ``lr``; a
    column whose name contains ``lr`` is drawn on a log scale). A model lacking a column is left out of that
    panel.

    Args:
        log_csv_paths: model name -> CSV path.
        out_path: output file (``.png`` at 150 dpi, or ``.svg``).
        max_panels: maximum number of panels.
    """
    if not log_csv_paths:
        raise ValueError("no training log given")
    logs: dict[str, pd.DataFrame] = {}
    for model, path in log_csv_paths.items():
        df = pd.read_csv(path)
        if "epoch" not in df.columns:
            raise ValueError(f"{path}: no 'epoch' column (columns: {list(df.columns)})")
        logs[model] = df.sort_values("epoch")
    columns: list[str] = []
    for df in logs.values():
        for col in df.columns:
            if col != "epoch" and col not in columns and pd.api.types.is_numeric_dtype(df[col]):
                columns.append(col)
    if "loss" in columns:
        columns.remove("loss")
        columns.insert(0, "loss")
    columns = columns[: max(1, max_panels)] or ["loss"]

    fig = _new_figure((3.6 * len(columns) + 0.8, 3.2))
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(logs))]
    for ax, col in zip(axes, columns, strict=True):
        for color, (model, df) in zip(colors, logs.items(), strict=True):
            if col not in df.columns or df[col].isna().all():
                continue
            ax.plot(
                df["epoch"],
                df[col],
                color=color,
                marker="o" if len(df) <= 30 else None,
                markersize=3,
                linewidth=1.4,
                label=model,
            )
        if "lr" in col.lower():
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(col, fontsize=10)
        ax.grid(True, linestyle="--", linewidth=0.5, color="0.85")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles, labels = [], []
    for ax in axes:
        for hdl, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(hdl)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    _save(fig, out_path)
