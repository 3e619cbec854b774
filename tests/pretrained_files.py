"""Small stand-ins for the pretrained files the paper configs fetch (tests/test_pretrained.py, the rehearsal):
a working structured-edge model and a VGG16 state dict in torchvision's layout."""

from __future__ import annotations

import io

import torch


def vgg16_state_dict_bytes(seed: int = 0) -> bytes:
    """``torch.save`` of a randomly initialised ``torchvision.models.vgg16().state_dict()`` (528 MB): the
    layout of torchvision's ImageNet file (``features.*``, ``classifier.0`` = fc6, ``classifier.3`` = fc7)."""
    from torchvision.models import vgg16

    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(vgg16(weights=None).state_dict(), buf)
    return buf.getvalue()


def _pair_feature(a: int, b: int, channel: int = 0, n_channels: int = 13, grid: int = 5, cells: int = 16) -> int:
    """Feature id of the self-similarity feature ``cell a - cell b`` of ``channel`` (OpenCV's layout: the
    ``cells²·n_channels`` regular features come first, then for each channel the ``grid²(grid²-1)/2`` pairs
    ``a < b`` in lexicographic order)."""
    pairs = grid * grid * (grid * grid - 1) // 2
    return cells * cells * n_channels + channel * pairs + sum(grid * grid - 1 - k for k in range(a)) + (b - a - 1)


def tiny_structured_model_yaml(threshold: float = 0.03) -> str:
    """A 9-node structured-edge forest (one tree) that marks an edge where the smoothed L channel differs
    across the patch centre by more than ``threshold``, horizontally or vertically.

    OpenCV's loader (``structured_edge_detection.cpp``) reads the ``options`` block and, per tree, the flat
    lists ``childs`` (0 = leaf; else left child = ``childs - 1``, right = ``childs``, both relative to the
    tree's root), ``featureIds``, ``thresholds`` (go left when ``feature < threshold``), ``edgeBoundaries``
    (leaf ``n`` paints bins ``edgeBins[edgeBoundaries[n]:edgeBoundaries[n + 1]]``) and ``edgeBins``
    (pixels ``row * patchInnerSize + col`` of the 16×16 inner patch). Edge leaves paint the central 8×8
    pixels twice, so a pixel inside a long edge reaches 1.0 (``step = 2·stride² / 16²`` per paint).
    """
    horizontal, vertical = _pair_feature(7, 17), _pair_feature(11, 13)  # grid cells left/right, above/below
    # (feature, threshold, childs) per inner node; None = leaf
    nodes = [(horizontal, -threshold, 2), None, (horizontal, threshold, 4), (vertical, -threshold, 6), None, None,
             (vertical, threshold, 8), None, None]  # fmt: skip
    edge_leaves = {1, 4, 5, 8}
    centre = [r * 16 + c for r in range(4, 12) for c in range(4, 12)] * 2
    bins, bounds = [], [0]
    for k in range(len(nodes)):
        bins += centre if k in edge_leaves else []
        bounds.append(len(bins))

    def row(xs: list) -> str:
        return "   - [ " + ", ".join(map(str, xs)) + " ]"

    return "\n".join([
        "%YAML:1.0", "options:", "   stride: 2", "   shrinkNumber: 2", "   patchSize: 32", "   patchInnerSize: 16",
        "   numberOfGradientOrientations: 4", "   gradientSmoothingRadius: 0", "   regFeatureSmoothingRadius: 2",
        "   ssFeatureSmoothingRadius: 8", "   gradientNormalizationRadius: 4", "   selfsimilarityGridSize: 5",
        "   numberOfTrees: 1", "   numberOfTreesToEvaluate: 1",
        "childs:", row([n[2] if n else 0 for n in nodes]),
        "featureIds:", row([n[0] if n else 0 for n in nodes]),
        "thresholds:", row([float(n[1]) if n else 0.0 for n in nodes]),
        "edgeBoundaries:", row(bounds),
        "edgeBins:", row(bins),
    ]) + "\n"  # fmt: skip
