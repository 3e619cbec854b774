"""EdgeBoxes object proposals (Zitnick & Dollár 2014) with OpenCV contrib's implementation.

:func:`edge_boxes` runs one image; :func:`compute_proposals` runs a list of image files with a worker
pool. Every parameter has a default measured on real photographs (``docs/proposals.md``,
``benchmarks/proposals_real_photos.py``) and can be overridden by keyword, e.g. from the YAML config.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from kdwsd.data.images import read_image
from kdwsd.proposals.edges import EdgeMapParams, compute_edge_maps

__all__ = [
    "EdgeBoxesParams",
    "ProposalRun",
    "check_image",
    "check_max_boxes",
    "compute_proposals",
    "edge_boxes",
    "map_images",
    "read_rgb",
    "split_params",
]


@dataclass(frozen=True)
class EdgeBoxesParams:
    """Parameters of the EdgeBoxes search (OpenCV names in brackets) and of the working resolution.

    Attributes:
        alpha: step size of the sliding-window search; each step moves the window by about
            ``1 - alpha`` IoU [alpha]. 0.65 with ``beta`` 0.75 is the paper's setting for IoU 0.7.
        beta: NMS threshold between proposals [beta].
        eta: adaptation rate of the NMS threshold (1 = fixed) [eta].
        min_score: minimum box score [minScore].
        min_box_area: minimum box area in pixels of the **original** image (converted to the working
            resolution internally) [minBoxArea].
        max_aspect_ratio: maximum box aspect ratio (long side / short side) [maxAspectRatio].
        edge_min_mag: edge pixels weaker than this are ignored [edgeMinMag].
        edge_merge_thr: orientation-change budget when edges are grouped into segments [edgeMergeThr].
        cluster_min_mag: edge segments with a smaller total magnitude are dropped [clusterMinMag].
        gamma: affinity sensitivity between edge segments [gamma].
        kappa: box-size penalty exponent of the score [kappa].
        max_side: the image is resized (never enlarged) so that its longer side is at most this many
            pixels before edges and boxes are computed; boxes are mapped back to the original image.
            ``None`` keeps the original resolution.
    """

    alpha: float = 0.65
    beta: float = 0.75
    eta: float = 1.0
    min_score: float = 0.01
    min_box_area: float = 1000.0
    max_aspect_ratio: float = 10.0
    edge_min_mag: float = 0.1
    edge_merge_thr: float = 0.5
    cluster_min_mag: float = 0.5
    gamma: float = 2.0
    kappa: float = 1.5
    max_side: int | None = 320

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_side":
                if value is not None:
                    if isinstance(value, bool) or not isinstance(value, int | float) or value < 16:
                        raise ValueError(f"max_side must be a number >= 16 or None, got {value!r}")
                    object.__setattr__(self, "max_side", int(value))
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"EdgeBoxes parameter {f.name} must be a number >= 0, got {value!r}")
        if not 0 < self.alpha < 1 or not 0 < self.beta <= 1 or not 0 < self.eta <= 1:
            raise ValueError("alpha must be in (0, 1), beta and eta in (0, 1]")
        if self.max_aspect_ratio < 1:
            raise ValueError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The accepted parameter names."""
        return frozenset(f.name for f in fields(cls))


def split_params(params: Mapping[str, Any] | None = None) -> tuple[EdgeMapParams, EdgeBoxesParams]:
    """Split a flat parameter mapping (e.g. the YAML ``proposals`` block) into the two parameter sets.

    Raises:
        ValueError: for an unknown parameter name or an invalid value.
        FileNotFoundError: for ``edge_method="structured"`` with a model path that does not exist.
    """
    params = dict(params or {})
    edge_names, box_names = EdgeMapParams.field_names(), EdgeBoxesParams.field_names()
    unknown = sorted(set(params) - edge_names - box_names)
    if unknown:
        raise ValueError(f"unknown EdgeBoxes parameter(s) {unknown}; accepted: {sorted(edge_names | box_names)}")
    edge_params = EdgeMapParams(**{k: v for k, v in params.items() if k in edge_names})
    box_params = EdgeBoxesParams(**{k: v for k, v in params.items() if k in box_names})
    return edge_params, box_params


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is a uint8 [H, W, 3] array of at least 2 x 2 pixels."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape [H, W, 3] (RGB), got {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image too small for proposals: {image.shape[1]} x {image.shape[0]} px (2 x 2 at least)")


def check_max_boxes(max_boxes: Any) -> None:
    """Raise ValueError unless ``max_boxes`` is an integer >= 1."""
    if isinstance(max_boxes, bool) or not isinstance(max_boxes, int | np.integer) or max_boxes < 1:
        raise ValueError(f"max_boxes must be an integer >= 1, got {max_boxes!r}")


def working_image(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """The image shrunk (never enlarged, area interpolation) so that its longer side is at most ``max_side``
    (None: as is), and the scale applied: proposal methods search at this working resolution and divide
    their boxes by the scale to return to the original pixels."""
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image, 1.0
    scale = max_side / max(height, width)
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _run_edge_boxes(
    image: np.ndarray, max_boxes: int, edge_params: EdgeMapParams, box_params: EdgeBoxesParams
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`edge_boxes` on an already validated image with already validated parameters."""
    height, width = image.shape[:2]
    image, scale = working_image(image, box_params.max_side)
    edges, orientation = compute_edge_maps(np.ascontiguousarray(image), edge_params)

    eb = cv2.ximgproc.createEdgeBoxes(
        alpha=box_params.alpha,
        beta=box_params.beta,
        eta=box_params.eta,
        minScore=box_params.min_score,
        maxBoxes=int(max_boxes),
        edgeMinMag=box_params.edge_min_mag,
        edgeMergeThr=box_params.edge_merge_thr,
        clusterMinMag=box_params.cluster_min_mag,
        maxAspectRatio=box_params.max_aspect_ratio,
        minBoxArea=box_params.min_box_area * scale * scale,
        gamma=box_params.gamma,
        kappa=box_params.kappa,
    )
    xywh, scores = eb.getBoundingBoxes(edges, orientation)
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(xywh) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)

    # OpenCV box (x, y, w, h) covers working pixels x..x+w-1, i.e. the continuous span [x, x+w); map the
    # span to the original image and back to the inclusive-pixel convention (x2 = right edge - 1).
    inv = 1.0 / scale
    x1 = np.round(xywh[:, 0] * inv)
    y1 = np.round(xywh[:, 1] * inv)
    x2 = np.round((xywh[:, 0] + xywh[:, 2]) * inv) - 1
    y2 = np.round((xywh[:, 1] + xywh[:, 3]) * inv) - 1
    boxes = np.stack([x1, y1, x2, y2], axis=1)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width - 1)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height - 1)
    boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0])
    boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1])

    order = np.argsort(-scores, kind="stable")[:max_boxes]
    return boxes[order].astype(np.float32), scores[order]


def edge_boxes(image: np.ndarray, max_boxes: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
    """EdgeBoxes proposals for one image.

    Args:
        image: uint8 [H, W, 3] RGB.
        max_boxes: maximum number of boxes returned (>= 1).
        **params: any field of :class:`~kdwsd.proposals.edges.EdgeMapParams` (``edge_method``,
            ``structured_model``, ``color_space``, ``smoothing_sigma``, ``scales``, ``surround``, ...) or
            of :class:`EdgeBoxesParams` (``alpha``, ``beta``, ``eta``, ``min_score``, ``min_box_area``,
            ``max_aspect_ratio``, ``max_side``, ...).

    Returns:
        ``(boxes, scores)``: float32 [N, 4] ``x1, y1, x2, y2`` in pixels of ``image``, inclusive-pixel
        convention (``0 <= x1 <= x2 <= W - 1``, ``0 <= y1 <= y2 <= H - 1``), and float32 [N] EdgeBoxes
        scores sorted descending; ``N <= max_boxes`` (N = 0 for an image without edges).

    Raises:
        ValueError: bad image (dtype, shape), ``max_boxes`` or parameter.
        FileNotFoundError: ``edge_method="structured"`` with a model path that does not exist.
    """
    check_image(image)
    check_max_boxes(max_boxes)
    edge_params, box_params = split_params(params)
    return _run_edge_boxes(image, int(max_boxes), edge_params, box_params)


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as uint8 [H, W, 3] RGB (grey and 16-bit files are converted).

    Raises:
        PipelineInputError (a ValueError): naming the file when it is missing, truncated or undecodable.
    """
    return cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)


class ProposalRun(NamedTuple):
    """What :func:`compute_proposals` returns.

    Attributes:
        proposals: per image, in input order, ``(boxes float32 [N, 4], scores float32 [N])``.
        seconds: wall-clock seconds for the whole list (reading included).
        images_per_s: images / seconds (NaN for an empty list).
        processes: worker processes used (each with one OpenCV thread).
    """

    proposals: list[tuple[np.ndarray, np.ndarray]]
    seconds: float
    images_per_s: float
    processes: int


# Worker-process state, set once by the pool initializer (the per-image function, sent to each worker once).
_WORKER: dict[str, Any] = {}


def _init_worker(fn: Callable[[Any], tuple[np.ndarray, np.ndarray]]) -> None:
    cv2.setNumThreads(1)
    _WORKER["fn"] = fn


def _worker_call(job: Any) -> tuple[np.ndarray, np.ndarray]:
    return _WORKER["fn"](job)


def _edge_boxes_file(path: str, *, max_boxes: int, edge_params: EdgeMapParams,
                     box_params: EdgeBoxesParams) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    return _run_edge_boxes(read_rgb(path), max_boxes, edge_params, box_params)


def map_images(
    fn: Callable[[Any], tuple[np.ndarray, np.ndarray]],
    jobs: Sequence[Any],
    processes: int = 1,
    *,
    desc: str = "proposals",
    progress: bool = True,
    start_method: str | None = None,
) -> ProposalRun:
    """``fn(job)`` for every job (e.g. an image path) with a pool of one-OpenCV-thread worker processes.

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of one) when ``start_method``
    is ``"spawn"``. ``start_method`` defaults to ``"fork"`` where available (safe for Snakemake ``script:``
    files, which ``"spawn"`` would re-execute in every worker), else ``"spawn"``.

    Returns:
        :class:`ProposalRun` with the results in job order and the timing.
    """
    if int(processes) < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    processes = max(1, min(int(processes), len(jobs)))
    bar = tqdm(total=len(jobs), desc=desc, unit="img", disable=not progress)
    start = time.perf_counter()
    results: list[tuple[np.ndarray, np.ndarray]] = []
    if processes == 1:
        previous_threads = cv2.getNumThreads()
        try:
            _init_worker(fn)
            for job in jobs:
                results.append(_worker_call(job))
                bar.update()
        finally:
            cv2.setNumThreads(previous_threads)
            _WORKER.clear()
    else:
        if start_method is None:
            start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(start_method)
        with context.Pool(processes, initializer=_init_worker, initargs=(fn,)) as pool:
            for result in pool.imap(_worker_call, jobs, chunksize=1):
                results.append(result)
                bar.update()
    bar.close()
    seconds = time.perf_counter() - start
    rate = len(jobs) / seconds if jobs and seconds > 0 else float("nan")
    return ProposalRun(results, seconds, rate, processes)


def compute_proposals(
    image_paths: Sequence[str | os.PathLike[str]],
    max_boxes: int,
    processes: int = 1,
    params: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
    start_method: str | None = None,
) -> ProposalRun:
    """EdgeBoxes proposals for a list of image files, with a pool of worker processes.

    Each worker uses one OpenCV thread, so ``processes`` is the number of cores used. Parameters are
    validated before any worker starts.

    Args:
        image_paths: image files (any format OpenCV reads; read as RGB).
        max_boxes: maximum boxes per image.
        processes: worker processes; 1 runs in this process.
        params: keyword parameters of :func:`edge_boxes` (e.g. the YAML ``proposals`` block).
        progress: show a tqdm progress bar.
        start_method: multiprocessing start method (see :func:`map_images`).

    Returns:
        :class:`ProposalRun` with one ``(boxes, scores)`` per image, in input order, and the timing.

    Raises:
        ValueError: naming the file, when an image cannot be read; or a bad parameter.
    """
    check_max_boxes(max_boxes)
    if int(processes) < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    edge_params, box_params = split_params(params)
    fn = functools.partial(_edge_boxes_file, max_boxes=int(max_boxes), edge_params=edge_params, box_params=box_params)
    return map_images(fn, [os.fspath(p) for p in image_paths], processes, desc="EdgeBoxes", progress=progress,
                      start_method=start_method)  # fmt: skip
