"""Proposal sources other than EdgeBoxes, and the one dispatch the proposals stage calls (paper Table 5).

``proposals.method`` in the config picks the source; :func:`propose` runs it for some images of a split:

* ``edgeboxes`` (default): :func:`kdwsd.proposals.edge_boxes` (``proposals.params``).
* ``selective_search``: OpenCV contrib's selective search (Uijlings et al. 2013), fast mode by default
  (``proposals.selective_search``, :class:`SelectiveSearchParams`). OpenCV returns boxes in its own
  ranking (hierarchy level times a random number, Uijlings' "pseudo-random" order) without scores, so the
  score of the box at rank ``i`` of ``N`` is ``1 - i / N`` (1 for the first, > 0 for all).
* ``random``: uniformly random boxes, a floor (``proposals.random``, :class:`RandomBoxesParams`): width and
  height are uniform integers in ``[min_size, W]`` and ``[min_size, H]``, the top-left corner is then uniform
  over the positions where the box fits. Seeded by ``(seed, image id)``, so an image gets the same boxes in
  any shard layout or order. Every score is 1: the order carries no information.
* ``ground_truth``: the split's annotated boxes, each once, score 1: an oracle standing in for the paper's
  Faster R-CNN row. Only for datasets with boxes (synthetic, VOC); an error otherwise.

All return boxes ``x1, y1, x2, y2`` in original-image pixels, inclusive-pixel convention, scores sorted
descending: the proposal-shard format of ``docs/formats.md`` section 2.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from kdwsd.data.prepared import Split
from kdwsd.errors import PipelineInputError
from kdwsd.proposals.edgeboxes import (
    ProposalRun,
    check_image,
    check_max_boxes,
    compute_proposals,
    edge_boxes,
    map_images,
    read_rgb,
    working_image,
)

__all__ = [
    "METHOD_SECTIONS",
    "PROPOSAL_METHODS",
    "RandomBoxesParams",
    "SelectiveSearchParams",
    "ground_truth_boxes",
    "propose",
    "propose_image",
    "random_boxes",
    "selective_search",
]

PROPOSAL_METHODS = ("edgeboxes", "selective_search", "random", "ground_truth")
# The config section (under `proposals:`) holding each method's parameters; ground truth has none.
METHOD_SECTIONS = {"edgeboxes": "params", "selective_search": "selective_search", "random": "random",
                   "ground_truth": None}  # fmt: skip


def _check_fields(obj: Any, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be a number >= 0, got {value!r}")


def _make(cls: type, params: Mapping[str, Any] | None) -> Any:
    params = dict(params or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} parameter(s) {unknown}; accepted: {sorted(names)}")
    return cls(**params)


@dataclass(frozen=True)
class SelectiveSearchParams:
    """Parameters of OpenCV's selective search (``proposals.selective_search`` in the config).

    Attributes:
        mode: ``fast`` (Uijlings' fast setting: HSV + Lab, 2 similarity sets), ``single`` (one segmentation)
            or ``quality`` (the slow setting, ~4x more boxes and time).
        base_k: k of the first graph segmentation (Felzenszwalb); larger = fewer, bigger segments.
        inc_k: k increment of the further segmentations (fast / quality).
        sigma: Gaussian smoothing of the graph segmentation.
        min_side: boxes with a side shorter than this (original pixels) are dropped.
        max_side: the image is shrunk (never enlarged) to this longer side before the search, as
            EdgeBoxes' ``max_side``: the search time grows with the pixel count; ``None`` = full size.
        seed: seeds the random part of OpenCV's ranking (C ``srand``, with the image id added), so a run
            is reproducible.
    """

    mode: str = "fast"
    base_k: int = 150
    inc_k: int = 150
    sigma: float = 0.8
    min_side: int = 2
    max_side: int | None = 320
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("fast", "single", "quality"):
            raise ValueError(f"selective search mode must be fast, single or quality, got {self.mode!r}")
        _check_fields(self, ("base_k", "inc_k", "sigma", "min_side", "seed"))
        if self.max_side is not None and (isinstance(self.max_side, bool) or self.max_side < 16):
            raise ValueError(f"selective search max_side must be >= 16 or None, got {self.max_side!r}")


@dataclass(frozen=True)
class RandomBoxesParams:
    """Parameters of the uniformly random boxes (``proposals.random`` in the config).

    Attributes:
        seed: combined with the image id into the generator's seed.
        min_size: smallest box side in pixels (at least 2: a box needs an extent to be pooled).
    """

    seed: int = 0
    min_size: int = 8

    def __post_init__(self) -> None:
        _check_fields(self, ("seed", "min_size"))
        if self.min_size < 2:
            raise ValueError(f"random boxes min_size must be >= 2, got {self.min_size}")


@functools.cache
def _libc() -> Any:
    # OpenCV's selective search ranks with std::rand(); seeding it is the only way to a reproducible order.
    return ctypes.CDLL(ctypes.util.find_library("c") or None)


def _run_selective_search(image: np.ndarray, max_boxes: int, params: SelectiveSearchParams,
                          image_id: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`selective_search` on a validated image with validated parameters."""
    height, width = image.shape[:2]
    image, scale = working_image(image, params.max_side)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(np.ascontiguousarray(image[:, :, ::-1]))  # OpenCV expects BGR
    if params.mode == "fast":
        ss.switchToSelectiveSearchFast(int(params.base_k), int(params.inc_k), float(params.sigma))
    elif params.mode == "quality":
        ss.switchToSelectiveSearchQuality(int(params.base_k), int(params.inc_k), float(params.sigma))
    else:
        ss.switchToSingleStrategy(int(params.base_k), float(params.sigma))
    _libc().srand(ctypes.c_uint((int(params.seed) * 1_000_003 + int(image_id)) % 2**32))
    xywh = np.asarray(ss.process(), dtype=np.float64).reshape(-1, 4)
    # Same span mapping as EdgeBoxes: (x, y, w, h) covers the continuous [x, x + w) of the working image.
    inv = 1.0 / scale
    boxes = np.stack([np.round(xywh[:, 0] * inv), np.round(xywh[:, 1] * inv),
                      np.round((xywh[:, 0] + xywh[:, 2]) * inv) - 1,
                      np.round((xywh[:, 1] + xywh[:, 3]) * inv) - 1], axis=1)  # fmt: skip
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width - 1)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height - 1)
    keep = (boxes[:, 2] - boxes[:, 0] + 1 >= params.min_side) & (boxes[:, 3] - boxes[:, 1] + 1 >= params.min_side)
    boxes = boxes[keep]
    # Boxes that coincide after the rescale are kept once, at their best rank.
    _, first = np.unique(boxes, axis=0, return_index=True)
    boxes = boxes[np.sort(first)][:max_boxes]
    scores = 1.0 - np.arange(len(boxes), dtype=np.float32) / max(len(boxes), 1)
    return boxes.astype(np.float32), scores.astype(np.float32)


def selective_search(image: np.ndarray, max_boxes: int, *, image_id: int = 0,
                     **params: Any) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Selective search proposals for one uint8 [H, W, 3] RGB image.

    Args:
        image: uint8 [H, W, 3] RGB.
        max_boxes: maximum number of boxes (>= 1), the first in OpenCV's ranking.
        image_id: added to ``seed`` for OpenCV's random ranking.
        **params: fields of :class:`SelectiveSearchParams`.

    Returns:
        ``(boxes float32 [N, 4], scores float32 [N])``, inclusive-pixel boxes of ``image``, rank scores
        ``1 - i / N`` (descending).
    """
    check_image(image)
    check_max_boxes(max_boxes)
    return _run_selective_search(image, int(max_boxes), _make(SelectiveSearchParams, params), image_id)


def random_boxes(image_id: int, height: int, width: int, max_boxes: int,
                 **params: Any) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``max_boxes`` uniformly random boxes for an image of ``height`` x ``width`` (see the module docstring).

    Returns:
        ``(boxes float32 [max_boxes, 4], scores float32 [max_boxes])`` (all scores 1), inclusive pixels.
    """
    check_max_boxes(max_boxes)
    p = _make(RandomBoxesParams, params)
    rng = np.random.default_rng([int(p.seed), int(image_id)])
    # A side below min_size cannot be drawn in an image smaller than min_size: the whole side then.
    lo_w, lo_h = min(p.min_size, width), min(p.min_size, height)
    w = rng.integers(lo_w, width + 1, size=max_boxes)
    h = rng.integers(lo_h, height + 1, size=max_boxes)
    x1 = rng.integers(0, width - w + 1)
    y1 = rng.integers(0, height - h + 1)
    boxes = np.stack([x1, y1, x1 + w - 1, y1 + h - 1], axis=1).astype(np.float32)
    return boxes, np.ones(max_boxes, np.float32)


def ground_truth_boxes(gt: Sequence[tuple[int, np.ndarray]], max_boxes: int) -> tuple[np.ndarray, np.ndarray]:
    """One image's annotated boxes as proposals: each distinct box once (two classes may share one), score 1.

    Args:
        gt: ``(class_index, float32[4])`` pairs, as :attr:`kdwsd.data.prepared.Split.gt_boxes` holds them.
        max_boxes: the most kept, in annotation order.
    """
    check_max_boxes(max_boxes)
    boxes = np.array([b for _, b in gt], dtype=np.float32).reshape(-1, 4)
    _, first = np.unique(boxes, axis=0, return_index=True)
    boxes = boxes[np.sort(first)][:max_boxes]
    return boxes, np.ones(len(boxes), np.float32)


def propose_image(method: str, image: np.ndarray, max_boxes: int, params: Mapping[str, Any] | None = None,
                  *, image_id: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Proposals of ``method`` for one uint8 [H, W, 3] RGB image that belongs to no prepared split (a user's
    photo given to ``kdwsd predict``): the same boxes :func:`propose` gives for that image in a split.

    Raises:
        ValueError: an unknown method or parameter, or ``ground_truth`` (a new image has no annotations).
    """
    if method == "edgeboxes":
        return edge_boxes(image, max_boxes, **dict(params or {}))
    if method == "selective_search":
        return selective_search(image, max_boxes, image_id=image_id, **dict(params or {}))
    if method == "random":
        check_image(image)
        return random_boxes(image_id, image.shape[0], image.shape[1], max_boxes, **dict(params or {}))
    if method == "ground_truth":
        raise ValueError("proposals.method ground_truth needs annotated boxes, which a new image does not have; "
                         "choose edgeboxes, selective_search or random")  # fmt: skip
    raise ValueError(f"unknown proposals.method {method!r}; use one of {list(PROPOSAL_METHODS)}")


def _timed(fn: Callable[[int], tuple[np.ndarray, np.ndarray]], rows: Sequence[int]) -> ProposalRun:
    start = time.perf_counter()
    proposals = [fn(int(i)) for i in rows]
    seconds = time.perf_counter() - start
    return ProposalRun(proposals, seconds, len(rows) / seconds if rows and seconds > 0 else float("nan"), 1)


def propose(
    method: str,
    split: Split,
    rows: Sequence[int],
    max_boxes: int,
    processes: int = 1,
    params: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
) -> ProposalRun:
    """Proposals of ``method`` for the images ``rows`` of ``split``: the proposals stage's one dispatch.

    Args:
        method: one of :data:`PROPOSAL_METHODS`.
        split: the prepared split (paths, ids, sizes and, for ``ground_truth``, boxes).
        rows: indices into ``split``.
        max_boxes: maximum boxes per image.
        processes: worker processes (EdgeBoxes and selective search; the others take no time).
        params: the method's parameters (its config section, :data:`METHOD_SECTIONS`).
        progress: show a progress bar.

    Raises:
        ValueError: an unknown method or parameter.
        PipelineInputError: ``ground_truth`` on a split without boxes.
    """
    check_max_boxes(max_boxes)
    rows = [int(i) for i in rows]
    if method == "edgeboxes":
        return compute_proposals([split.paths[i] for i in rows], max_boxes, processes, params, progress=progress)
    if method == "selective_search":
        ss = _make(SelectiveSearchParams, params)
        jobs = [(os.fspath(split.paths[i]), int(split.image_ids[i])) for i in rows]
        return map_images(functools.partial(_ss_job, max_boxes=int(max_boxes), params=ss), jobs, processes,
                          desc="selective search", progress=progress)  # fmt: skip
    if method == "random":
        rp = dict(params or {})
        _make(RandomBoxesParams, rp)  # validate before the loop
        return _timed(lambda i: random_boxes(int(split.image_ids[i]), int(split.sizes[i][0]), int(split.sizes[i][1]),
                                             max_boxes, **rp), rows)  # fmt: skip
    if method == "ground_truth":
        if params:
            raise ValueError(f"ground_truth proposals take no parameters, got {sorted(params)}")
        if not split.has_boxes:
            raise PipelineInputError(
                split.paths[0].parent if len(split) else split.name, f"split {split.name}",
                "proposals.method: ground_truth needs box annotations, and this dataset has none",
                "use edgeboxes, selective_search or random (ground-truth boxes exist for synthetic and voc2007)",
            )
        return _timed(lambda i: ground_truth_boxes(split.gt_boxes[i], max_boxes), rows)
    raise ValueError(f"unknown proposals.method {method!r}; use one of {list(PROPOSAL_METHODS)}")


def _ss_job(job: tuple[str, int], *, max_boxes: int, params: SelectiveSearchParams) -> tuple[np.ndarray, np.ndarray]:
    path, image_id = job
    return _run_selective_search(read_rgb(path), max_boxes, params, image_id)
