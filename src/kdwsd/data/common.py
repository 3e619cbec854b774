"""Helpers shared by the dataset preparations (coco.py, voc.py, nuswide.py): missing-image policy, the hashes
and summaries of the data report, timestamps."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_EXAMPLES",
    "MISSING_POLICIES",
    "existing_files",
    "labels_sha256",
    "now_iso",
    "resolve_missing",
    "split_list_sha256",
    "split_summary",
]

log = logging.getLogger(__name__)

#: How images that are listed but absent on disk are handled.
MISSING_POLICIES = ("drop", "fail")
#: How many example file names of dropped images the report lists.
MAX_EXAMPLES = 20


def split_list_sha256(files: Mapping[str, Iterable[str]]) -> str:
    """sha256 of the sorted ``"split<TAB>file_name"`` lines (one ``\\n`` after each): the image-list hash."""
    lines = sorted(f"{split}\t{name}" for split, names in files.items() for name in names)
    return hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()


def labels_sha256(splits: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 of the sorted ``"split<TAB>file_name<TAB>sorted category ids"`` lines of COCO-format splits."""
    lines = []
    for split, coco in splits.items():
        cats: dict[int, set[int]] = {}
        for ann in coco["annotations"]:
            cats.setdefault(ann["image_id"], set()).add(int(ann["category_id"]))
        for im in coco["images"]:
            ids = ",".join(str(c) for c in sorted(cats.get(im["id"], ())))
            lines.append(f"{split}\t{im['file_name']}\t{ids}")
    return hashlib.sha256("".join(line + "\n" for line in sorted(lines)).encode()).hexdigest()


def existing_files(image_dir: Path, names: Iterable[str]) -> set[str]:
    """The subset of ``names`` (paths relative to ``image_dir``) that exist as files.

    Lists each folder once (fast on network file systems with ~10^5 images) instead of one ``stat`` each.
    """
    listing: dict[str, set[str]] = {}
    found = set()
    for name in names:
        parent, _, base = name.rpartition("/")
        if parent not in listing:
            folder = image_dir / parent if parent else image_dir
            try:
                listing[parent] = {e.name for e in os.scandir(folder) if e.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                listing[parent] = set()
        if base in listing[parent]:
            found.add(name)
    return found


def resolve_missing(
    split: str,
    names: Sequence[str],
    image_dir: Path,
    policy: str,
    *,
    what: str = "image",
) -> set[str]:
    """Return the listed ``names`` that are missing under ``image_dir``; raise if ``policy == "fail"``.

    Raises:
        ValueError: unknown policy.
        FileNotFoundError: ``image_dir`` does not exist, or (``policy="fail"``) an image is missing; the
            message gives the count and the first few paths.
    """
    if policy not in MISSING_POLICIES:
        raise ValueError(f"missing_images must be one of {MISSING_POLICIES}, got {policy!r}")
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{split}: image folder {image_dir} does not exist")
    missing = set(names) - existing_files(image_dir, names)
    if missing and policy == "fail":
        examples = ", ".join(str(image_dir / n) for n in sorted(missing)[:5])
        raise FileNotFoundError(
            f"{split}: {len(missing)} of {len(names)} listed {what}s are missing under {image_dir} "
            f"(e.g. {examples}); set missing_images: drop to drop them"
        )
    if missing:
        log.warning("%s: %d of %d listed %ss are missing under %s; dropped", split, len(missing), len(names),
                    what, image_dir)
    return missing


def split_summary(coco: Mapping[str, Any], classes: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """Per-split facts for the report: image / annotation counts, images per class, the list hash."""
    per_class: dict[int, set[int]] = {cid: set() for cid, _ in classes}
    for ann in coco["annotations"]:
        per_class[int(ann["category_id"])].add(ann["image_id"])
    return {
        "images": len(coco["images"]),
        "annotations": len(coco["annotations"]),
        "class_image_counts": {name: len(per_class[cid]) for cid, name in classes},
        "empty_classes": [name for cid, name in classes if not per_class[cid]],
    }


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second (report timestamps)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
