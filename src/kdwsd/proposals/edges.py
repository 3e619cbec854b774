"""Edge and orientation maps for EdgeBoxes.

Two edge methods:

* ``"structured"``: OpenCV's structured-edge forest (Dollár & Zitnick), the edge detector the original
  EdgeBoxes uses. It needs the trained model file ``model.yml.gz`` from OpenCV's extra-data repository
  (:data:`STRUCTURED_MODEL_URL`); no Python package ships it.
* ``"gradient"`` (default): a training-free replacement built from image gradients — the maximum over
  the CIE-Lab channels of the Sobel gradient magnitude after Gaussian smoothing, averaged over a small
  pyramid, with surround suppression of texture edges, then percentile normalisation to ``[0, 1]``.
  ``docs/proposals.md`` has the measurements behind each step and its defaults.

Both methods finish the same way: OpenCV's ``computeOrientation`` (orientation from the second
derivatives of the smoothed edge map) and ``edgesNms`` (non-maximum suppression along the orientation).
Those two methods live on a ``StructuredEdgeDetection`` object; for the gradient method the object is
created from a minimal valid model file (an options block and one single-leaf tree), whose
``detectEdges`` is useless but whose ``computeOrientation`` / ``edgesNms`` work on any edge map.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "COLOR_SPACES",
    "EDGE_METHODS",
    "STRUCTURED_MODEL_SHA256",
    "STRUCTURED_MODEL_URL",
    "EdgeMapParams",
    "compute_edge_maps",
    "gradient_edges",
    "orientation_and_nms",
    "structured_edges",
]

#: Where OpenCV's trained structured-edge forest is published (opencv_extra test data, ~2 MB gzip).
STRUCTURED_MODEL_URL = "https://github.com/opencv/opencv_extra/raw/4.x/testdata/cv/ximgproc/model.yml.gz"
#: SHA-256 of ``model.yml.gz``: no public source states it and the file could not be downloaded here, so it
#: is unknown. Whoever downloads the model must record the hash at first download and verify it after.
STRUCTURED_MODEL_SHA256: str | None = None

EDGE_METHODS = ("auto", "gradient", "structured")
COLOR_SPACES = ("lab", "luv", "rgb", "gray")

# The options block and one single-leaf tree: enough for OpenCV to build a StructuredEdgeDetection
# object. `gradientNormalizationRadius` is the triangle-filter radius computeOrientation smooths the
# edge map with (4 in the trained model); it is substituted per call.
_MINIMAL_MODEL_YAML = """%YAML:1.0
options:
   stride: 2
   shrinkNumber: 2
   patchSize: 32
   patchInnerSize: 16
   numberOfGradientOrientations: 4
   gradientSmoothingRadius: 0
   regFeatureSmoothingRadius: 2
   ssFeatureSmoothingRadius: 8
   gradientNormalizationRadius: {orientation_radius}
   selfsimilarityGridSize: 5
   numberOfTrees: 1
   numberOfTreesToEvaluate: 1
childs:
   - [ 0 ]
featureIds:
   - [ 0 ]
thresholds:
   - [ 0. ]
edgeBoundaries:
   - [ 0, 0 ]
edgeBins:
   - [ 0 ]
"""


@dataclass(frozen=True)
class EdgeMapParams:
    """Parameters of the edge and orientation maps (all have measured defaults, see docs/proposals.md).

    Attributes:
        edge_method: ``"structured"`` (needs ``structured_model``), ``"gradient"`` (training-free) or
            ``"auto"`` (default): structured when ``structured_model`` is set, gradient otherwise. After
            construction it holds the resolved method.
        structured_model: path of OpenCV's ``model.yml.gz`` (or the unpacked ``model.yml``); used only by
            the structured method, which raises ``FileNotFoundError`` at construction when it is missing.
        color_space: gradient method: channels whose gradients are combined (maximum of the per-channel
            squared magnitude): ``"lab"``, ``"luv"``, ``"rgb"`` or ``"gray"``.
        smoothing_sigma: gradient method: Gaussian sigma (pixels of the map's resolution) applied to the
            colour image before the Sobel derivatives; 0 disables it.
        scales: gradient method: pyramid scales whose gradient magnitudes (resized back) are averaged.
        surround: gradient method: surround-suppression strength ``k`` in
            ``E = max(E - k * gaussian(E, surround_sigma), 0)``, which removes texture edges (edges
            surrounded by many other edges) and keeps isolated object boundaries; 0 disables it.
        surround_sigma: gradient method: sigma (pixels) of the surround.
        normalize_percentile: gradient method: the edge map is divided by this percentile of its values
            and clipped to ``[0, 1]``, so that EdgeBoxes' absolute thresholds (``edge_min_mag``,
            ``cluster_min_mag``) mean the same on every image.
        nms: thin the edges by non-maximum suppression along the orientation (OpenCV ``edgesNms``).
        nms_radius: radius of that suppression (pixels).
        orientation_radius: triangle-filter radius used to smooth the edge map before the orientation
            is computed (4 in OpenCV's trained model).
    """

    edge_method: str = "auto"
    structured_model: str | None = None
    color_space: str = "lab"
    smoothing_sigma: float = 1.0
    scales: tuple[float, ...] = (1.0,)
    surround: float = 1.0
    surround_sigma: float = 8.0
    normalize_percentile: float = 99.0
    nms: bool = True
    nms_radius: int = 2
    orientation_radius: int = 4

    def __post_init__(self) -> None:
        # YAML gives lists and ints: normalise the types so that the object is hashable and comparable.
        scales = (self.scales,) if isinstance(self.scales, int | float) else tuple(self.scales)
        object.__setattr__(self, "scales", tuple(float(s) for s in scales))
        if self.structured_model is not None:
            object.__setattr__(self, "structured_model", os.fspath(self.structured_model))
        if self.edge_method not in EDGE_METHODS:
            raise ValueError(f"edge_method must be one of {EDGE_METHODS}, got {self.edge_method!r}")
        if self.edge_method == "auto":
            object.__setattr__(self, "edge_method", "structured" if self.structured_model else "gradient")
        if self.edge_method == "structured":
            if not self.structured_model:
                raise ValueError('edge_method="structured" needs structured_model (path of model.yml.gz)')
            _check_model_file(self.structured_model)
        if self.color_space not in COLOR_SPACES:
            raise ValueError(f"color_space must be one of {COLOR_SPACES}, got {self.color_space!r}")
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ValueError(f"scales must be a non-empty list of values in (0, 1], got {self.scales}")
        if self.smoothing_sigma < 0 or self.surround < 0 or self.surround_sigma <= 0:
            raise ValueError("smoothing_sigma and surround must be >= 0 and surround_sigma > 0")
        if not 0 < self.normalize_percentile <= 100:
            raise ValueError(f"normalize_percentile must be in (0, 100], got {self.normalize_percentile}")
        if self.nms_radius < 1 or self.orientation_radius < 1:
            raise ValueError("nms_radius and orientation_radius must be >= 1")

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The accepted parameter names."""
        return frozenset(f.name for f in fields(cls))


@functools.lru_cache(maxsize=4)
def _minimal_detector(orientation_radius: int) -> Any:
    """A ``StructuredEdgeDetection`` built from the minimal model file (orientation and NMS only)."""
    with tempfile.TemporaryDirectory(prefix="kdwsd-sed-") as tmp:
        path = Path(tmp) / "minimal_model.yml"
        path.write_text(_MINIMAL_MODEL_YAML.format(orientation_radius=int(orientation_radius)))
        return cv2.ximgproc.createStructuredEdgeDetection(str(path))


def _check_model_file(model_path: str) -> Path:
    """The model path, or ``FileNotFoundError`` naming it and where the model comes from."""
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"structured edge model not found: {path} — download OpenCV's model.yml.gz from "
            f"{STRUCTURED_MODEL_URL}, or use edge_method='gradient'"
        )
    return path


@functools.lru_cache(maxsize=2)
def _structured_detector(model_path: str) -> Any:
    """OpenCV's structured-edge forest loaded from ``model_path`` (cached per process)."""
    path = _check_model_file(model_path)
    try:
        return cv2.ximgproc.createStructuredEdgeDetection(str(path))
    except cv2.error as exc:
        raise ValueError(f"could not load the structured edge model {path}: {exc}") from exc


def _to_color_space(rgb01: np.ndarray, color_space: str) -> np.ndarray:
    """float32 [H, W, 3] RGB in [0, 1] -> float32 [H, W, C] (C = 3, or 1 for gray) in that space."""
    if color_space == "lab":
        return cv2.cvtColor(rgb01, cv2.COLOR_RGB2Lab)
    if color_space == "luv":
        return cv2.cvtColor(rgb01, cv2.COLOR_RGB2Luv)
    if color_space == "gray":
        return cv2.cvtColor(rgb01, cv2.COLOR_RGB2GRAY)[:, :, None]
    return rgb01


def _gradient_magnitude(image: np.ndarray, sigma: float) -> np.ndarray:
    """float32 [H, W, C] -> float32 [H, W]: max over channels of the Sobel gradient magnitude."""
    if sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if image.ndim == 2:
        image = image[:, :, None]
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3).reshape(image.shape)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3).reshape(image.shape)
    return np.sqrt((gx * gx + gy * gy).max(axis=2))


def _normalize(edges: np.ndarray, percentile: float) -> np.ndarray:
    """Divide by the given percentile (the maximum if that is 0) and clip to [0, 1]; float32 [H, W]."""
    ref = float(np.percentile(edges, percentile))
    if ref <= 1e-12:
        ref = float(edges.max())
    if ref <= 1e-12:
        return np.zeros_like(edges, dtype=np.float32)
    return np.clip(edges * np.float32(1.0 / ref), 0.0, 1.0).astype(np.float32, copy=False)


def gradient_edges(image: np.ndarray, params: EdgeMapParams) -> np.ndarray:
    """Training-free edge strength from colour gradients.

    Args:
        image: uint8 [H, W, 3] RGB.
        params: ``color_space``, ``smoothing_sigma``, ``scales``, ``surround``, ``surround_sigma`` and
            ``normalize_percentile`` are used.

    Returns:
        float32 [H, W] edge strength in [0, 1] (not yet thinned).
    """
    x = _to_color_space(image.astype(np.float32) * np.float32(1 / 255), params.color_space)
    height, width = x.shape[:2]
    total = np.zeros((height, width), np.float32)
    for scale in params.scales:
        if scale == 1.0:
            total += _gradient_magnitude(x, params.smoothing_sigma)
            continue
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(x, size, interpolation=cv2.INTER_AREA)
        mag = _gradient_magnitude(small, params.smoothing_sigma)
        total += cv2.resize(mag, (width, height), interpolation=cv2.INTER_LINEAR)
    edges = total / np.float32(len(params.scales))
    if params.surround > 0:
        surround = cv2.GaussianBlur(edges, (0, 0), params.surround_sigma)
        edges = np.maximum(edges - np.float32(params.surround) * surround, 0.0)
    return _normalize(edges, params.normalize_percentile)


def structured_edges(image: np.ndarray, model_path: str) -> np.ndarray:
    """Edge probability from OpenCV's structured-edge forest.

    Args:
        image: uint8 [H, W, 3] RGB.
        model_path: path of ``model.yml.gz`` (see :data:`STRUCTURED_MODEL_URL`).

    Returns:
        float32 [H, W] edge probability in [0, 1] (not yet thinned).
    """
    detector = _structured_detector(model_path)
    return detector.detectEdges(image.astype(np.float32) * np.float32(1 / 255))


def orientation_and_nms(
    edges: np.ndarray, *, nms: bool = True, nms_radius: int = 2, orientation_radius: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Orientation map and (optionally) non-maximum-suppressed edges, with OpenCV's implementation.

    Args:
        edges: float32 [H, W] edge strength in [0, 1].
        nms: thin the edges along the orientation.
        nms_radius: suppression radius in pixels.
        orientation_radius: triangle-filter radius used before the orientation is computed.

    Returns:
        ``(edges, orientation)``: float32 [H, W] edges (thinned if ``nms``) and float32 [H, W] orientation
        in radians, in [0, pi).
    """
    edges = np.ascontiguousarray(edges, dtype=np.float32)
    detector = _minimal_detector(int(orientation_radius))
    orientation = detector.computeOrientation(edges)
    if nms:
        edges = detector.edgesNms(edges, orientation, r=int(nms_radius), s=0, m=1.0, isParallel=False)
    return edges, orientation


def compute_edge_maps(image: np.ndarray, params: EdgeMapParams) -> tuple[np.ndarray, np.ndarray]:
    """Edge and orientation maps ready for ``EdgeBoxes.getBoundingBoxes``.

    Args:
        image: uint8 [H, W, 3] RGB (validated by the caller).
        params: the edge-map parameters.

    Returns:
        ``(edges, orientation)``, both float32 [H, W]: edges in [0, 1], orientation in radians.
    """
    if params.edge_method == "structured":
        assert params.structured_model is not None  # guaranteed by EdgeMapParams
        edges = structured_edges(image, params.structured_model)
    else:
        edges = gradient_edges(image, params)
    return orientation_and_nms(
        edges, nms=params.nms, nms_radius=params.nms_radius, orientation_radius=params.orientation_radius
    )
