"""The one image reader of the package, with integrity and size checks.

OpenCV decodes a truncated JPEG without an error (libjpeg's "Premature end of JPEG file" goes to the console
only) and fills the missing rows with grey, so a half-written file would be trained on silently. Every image
is therefore read as bytes once, checked for its end marker (JPEG ``FF D9`` / PNG ``IEND`` chunk) and then
decoded from memory; when the annotation's ``(height, width)`` is known, the decoded size must match it.
Other formats (BMP, TIFF, ...) are checked by decoding only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from kdwsd.errors import PipelineInputError

if TYPE_CHECKING:
    from kdwsd.data.prepared import Split

__all__ = ["BAD_IMAGE_POLICIES", "image_problem", "read_image", "validate_split_images"]

log = logging.getLogger("kdwsd.data")

BAD_IMAGE_POLICIES = ("error", "skip")
_JPEG_SOI, _JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
_PNG_MAGIC, _PNG_IEND = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
# Some writers pad a file after its end marker; look for the marker in this many trailing bytes. A truncated
# JPEG ends inside entropy-coded data, where FF D9 cannot occur (FF is stuffed as FF 00).
_TAIL = 1024
_HINT = ("Re-download or re-extract the image (or, for the training split, set dataset.on_bad_image: skip to drop "
         "it and report it)")


def _trailer_problem(data: np.ndarray) -> str | None:
    head, tail = data[:8].tobytes(), data[-_TAIL:].tobytes()
    if head.startswith(_JPEG_SOI) and _JPEG_EOI not in tail:
        return "truncated JPEG (no end-of-image marker FF D9)"
    if head.startswith(_PNG_MAGIC) and _PNG_IEND not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def image_problem(
    path: os.PathLike[str] | str, expected_hw: Sequence[int] | None = None
) -> tuple[np.ndarray | None, str | None]:
    """Read and check one image without raising.

    Returns:
        ``(image, None)`` with image uint8[H, W, 3] BGR, or ``(None, problem)`` where ``problem`` says what is
        wrong: missing file, truncated JPEG/PNG, undecodable, or a size other than ``expected_hw``.
    """
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except FileNotFoundError:
        return None, "file does not exist"
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})"
    if data.size == 0:
        return None, "empty file"
    problem = _trailer_problem(data)
    if problem:
        return None, problem
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        return None, "not a decodable image"
    if expected_hw is not None:
        h, w = (int(v) for v in expected_hw)
        if image.shape[:2] != (h, w):
            swapped = " (EXIF orientation?)" if image.shape[:2] == (w, h) else ""
            return None, (f"decoded size {image.shape[0]}x{image.shape[1]} (HxW) differs from the annotation's "
                          f"{h}x{w}{swapped}")
    return image, None


def read_image(
    path: os.PathLike[str] | str, *, expected_hw: Sequence[int] | None = None, image_id: Any = None
) -> np.ndarray:
    """Read an image as uint8[H, W, 3] BGR, refusing truncated, undecodable or wrongly-sized files.

    Args:
        path: the image file.
        expected_hw: the annotation's ``(height, width)``; checked when given.
        image_id: named in the error (defaults to the file name).
    Raises:
        PipelineInputError: naming the file, the image id and what is wrong.
    """
    image, problem = image_problem(path, expected_hw)
    if problem is not None:
        raise PipelineInputError(path, f"image id {image_id}" if image_id is not None else "image", problem, _HINT)
    return image  # type: ignore[return-value]


def validate_split_images(split: Split, policy: str = "error") -> tuple[Split, dict[str, Any]]:
    """Check every image of a prepared split (decode, end marker, size against the annotation).

    Args:
        split: the prepared split.
        policy: ``error`` raises on the first bad image; ``skip`` drops bad images.
    Returns:
        ``(kept_split, report)``; ``report`` = ``{"split", "policy", "checked", "dropped", "bad": [{"image_id",
        "path", "problem"}, ...]}`` (JSON-serialisable, to be written next to the stage's outputs).
    Raises:
        PipelineInputError: under ``error``, for the first bad image; under ``skip``, when no image is left.
    """
    if policy not in BAD_IMAGE_POLICIES:
        raise ValueError(f"on_bad_image must be one of {BAD_IMAGE_POLICIES}, got {policy!r}")
    keep, bad = [], []
    for i, (path, image_id, hw) in enumerate(zip(split.paths, split.image_ids, split.sizes, strict=True)):
        _, problem = image_problem(path, hw)
        if problem is None:
            keep.append(i)
            continue
        if policy == "error":
            raise PipelineInputError(path, f"image id {int(image_id)}", problem, _HINT)
        bad.append({"image_id": int(image_id), "path": str(path), "problem": problem})
    if bad:
        log.warning("split %s: dropped %d of %d bad images (first: %s: %s)", split.name, len(bad), len(split),
                    bad[0]["path"], bad[0]["problem"])  # fmt: skip
    if len(split) and not keep:
        raise PipelineInputError(split.paths[0].parent, f"split {split.name}", "every image is bad",
                                 "Check the image folder (see the report of dropped images)")  # fmt: skip
    report = {"split": split.name, "policy": policy, "checked": len(split), "dropped": len(bad), "bad": bad}
    return (split.subset(keep) if bad else split), report
