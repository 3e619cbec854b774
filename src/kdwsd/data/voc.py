"""PASCAL VOC 2007 preparation (image labels for training; boxes for the teacher's CorLoc / detection AP).

Input (official layout of ``VOCtrainval_06-Nov-2007.tar`` and ``VOCtest_06-Nov-2007.tar``, extracted into
one folder each or merged into one)::

    <root>/VOCdevkit/VOC2007/JPEGImages/000005.jpg
    <root>/VOCdevkit/VOC2007/Annotations/000005.xml
    <root>/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt   (in the trainval tar)
    <root>/VOCdevkit/VOC2007/ImageSets/Main/test.txt       (in the test tar)

Output: the prepared layout, ``train`` = trainval (5,011 images), ``test`` = test (4,952 images).
Classes: the 20 VOC classes in the devkit's (alphabetical) order, category ids 1..20.

Boxes: VOC gives 1-based inclusive pixel coordinates ``xmin, ymin, xmax, ymax``. They are converted to
0-based inclusive ``x1 = xmin - 1`` … ``y2 = ymax - 1`` and written as COCO ``bbox = [x1, y1, w, h]`` with
``w = x2 - x1 + 1``, ``h = y2 - y1 + 1`` (``kdwsd.data.prepared.load_split`` inverts this exactly). Every
object is kept, with its ``difficult`` flag (and ``truncated``) as extra annotation attributes; because
labels are derived from all annotations, an image whose only object of a class is *difficult* is a positive
for that class — the report counts these (``difficult_only_labels``) so the choice is visible.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kdwsd.data.common import (
    MAX_EXAMPLES,
    labels_sha256,
    now_iso,
    resolve_missing,
    split_list_sha256,
    split_summary,
)
from kdwsd.data.download import ensure_archives
from kdwsd.data.prepared import write_prepared_dataset
from kdwsd.errors import PipelineInputError

__all__ = ["VOC_CLASSES", "VOC_SPLITS", "locate_voc2007", "parse_voc_xml", "prepare_from_config",
           "prepare_voc2007", "voc_box_to_coco"]

log = logging.getLogger(__name__)

#: The 20 VOC classes in devkit order (category id = index + 1).
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)
#: prepared split -> ImageSets/Main list name
VOC_SPLITS = {"train": "trainval", "test": "test"}
#: Official image counts.
OFFICIAL_COUNTS = {"train": 5_011, "test": 4_952}


def voc_box_to_coco(xmin: float, ymin: float, xmax: float, ymax: float) -> list[float]:
    """VOC 1-based inclusive corners -> COCO ``[x, y, w, h]`` in 0-based inclusive pixels."""
    x1, y1, x2, y2 = xmin - 1, ymin - 1, xmax - 1, ymax - 1
    return [x1, y1, x2 - x1 + 1, y2 - y1 + 1]


def _num(text: str | None, path: Path, what: str) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"annotation file {path}: {what} is not a number: {text!r}") from None
    return int(value) if value.is_integer() else value


def parse_voc_xml(path: Path | str) -> dict[str, Any]:
    """Parse one VOC annotation file -> ``{"width", "height", "objects": [{name, bbox, difficult, ...}]}``.

    ``bbox`` is COCO ``[x, y, w, h]`` (see :func:`voc_box_to_coco`). Raises ``ValueError`` naming the file
    when it is not XML or lacks ``size`` / ``bndbox`` fields, ``FileNotFoundError`` when it is absent.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file {path} does not exist") from None
    except ET.ParseError as exc:
        raise ValueError(f"annotation file {path} is not valid XML: {exc}") from exc
    size = root.find("size")
    if size is None:
        raise PipelineInputError(path, "<size>", "element missing (image width/height unknown)",
                                 "Re-extract the VOC annotations (VOCdevkit/VOC2007/Annotations)")
    width = int(_num(size.findtext("width"), path, "size/width"))
    height = int(_num(size.findtext("height"), path, "size/height"))
    objects = []
    for k, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise ValueError(f"annotation file {path}: object {k} lacks <name> or <bndbox>")
        corners = [_num(box.findtext(t), path, f"object {k} bndbox/{t}")
                   for t in ("xmin", "ymin", "xmax", "ymax")]
        if corners[2] < corners[0] or corners[3] < corners[1]:
            raise ValueError(f"annotation file {path}: object {k} has an empty box {corners}")
        objects.append({
            "name": name,
            "bbox": voc_box_to_coco(*corners),
            "difficult": int(_num(obj.findtext("difficult") or "0", path, f"object {k} difficult")),
            "truncated": int(_num(obj.findtext("truncated") or "0", path, f"object {k} truncated")),
        })
    return {"width": width, "height": height, "objects": objects}


def locate_voc2007(roots: Path | str | Sequence[Path | str]) -> dict[str, Path]:
    """Find, for each split, the ``VOC2007`` folder whose ``ImageSets/Main`` holds its list.

    Accepts roots that contain ``VOCdevkit/VOC2007``, ``VOC2007`` or are ``VOC2007`` themselves.
    Returns ``{"train": voc2007_dir, "test": voc2007_dir}`` (the same folder when the tars were merged).
    """
    roots = [Path(roots)] if isinstance(roots, str | os.PathLike) else [Path(r) for r in roots]
    out: dict[str, Path] = {}
    for split, listname in VOC_SPLITS.items():
        for r in roots:
            for cand in (r / "VOCdevkit" / "VOC2007", r / "VOC2007", r):
                if (cand / "ImageSets" / "Main" / f"{listname}.txt").is_file():
                    out[split] = cand.resolve()
                    break
            if split in out:
                break
        else:
            looked = ", ".join(str(r) for r in roots)
            raise FileNotFoundError(
                f"VOC 2007: could not find VOCdevkit/VOC2007/ImageSets/Main/{listname}.txt under {looked}"
            )
    return out


def _read_list(path: Path) -> list[str]:
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(set(ids)) != len(ids):
        raise ValueError(f"image list {path} has duplicate entries")
    for i in ids:
        if not i.isdigit():
            raise ValueError(f"image list {path}: entry {i!r} is not a VOC image id")
    return ids


def prepare_voc2007(
    roots: Path | str | Sequence[Path | str],
    out_dir: Path | str,
    *,
    drop_unlabeled: bool = True,
    missing_images: str = "drop",
    archive_checksums: Mapping[str, Any] | None = None,
    name: str = "voc2007",
) -> dict[str, Any]:
    """Prepare PASCAL VOC 2007 into ``out_dir`` and return the data report (also in ``report.json``).

    Args:
        roots: folder(s) holding the official layout (see :func:`locate_voc2007`).
        out_dir: the prepared-dataset folder.
        drop_unlabeled: drop images without any object (none in the official release; counted).
        missing_images: ``"drop"`` or ``"fail"`` for images listed but absent from ``JPEGImages``.
        archive_checksums: the archives' checksum record, copied into the report.
        name: dataset name for ``dataset.json``.
    """
    dirs = locate_voc2007(roots)
    classes = [(i + 1, c) for i, c in enumerate(VOC_CLASSES)]
    cat_id = {c: i for i, c in classes}
    splits: dict[str, dict[str, Any]] = {}
    report_splits: dict[str, Any] = {}
    seen_ids: dict[int, str] = {}
    ann_id = 0
    for split, listname in VOC_SPLITS.items():
        voc = dirs[split]
        list_path = voc / "ImageSets" / "Main" / f"{listname}.txt"
        ids = _read_list(list_path)
        image_dir = voc / "JPEGImages"
        file_names = [f"{i}.jpg" for i in ids]
        missing = resolve_missing(split, file_names, image_dir, missing_images)
        images, anns = [], []
        unlabeled, difficult_objects, difficult_only = [], 0, 0
        for stem, file_name in zip(ids, file_names, strict=True):
            if file_name in missing:
                continue
            info = parse_voc_xml(voc / "Annotations" / f"{stem}.xml")
            if not info["objects"]:
                unlabeled.append(file_name)
                if drop_unlabeled:
                    continue
            image_id = int(stem)
            if image_id in seen_ids:
                raise ValueError(f"image id {image_id} is in both {seen_ids[image_id]} and {list_path}")
            seen_ids[image_id] = str(list_path)
            images.append({"id": image_id, "file_name": file_name,
                           "width": info["width"], "height": info["height"]})
            plain = set()
            for obj in info["objects"]:
                if obj["name"] not in cat_id:
                    raise ValueError(f"annotation file {voc / 'Annotations' / f'{stem}.xml'}: unknown class "
                                     f"{obj['name']!r}")
                ann_id += 1
                x, y, w, h = obj["bbox"]
                anns.append({"id": ann_id, "image_id": image_id, "category_id": cat_id[obj["name"]],
                             "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                             "difficult": obj["difficult"], "truncated": obj["truncated"]})
                difficult_objects += obj["difficult"]
                if not obj["difficult"]:
                    plain.add(obj["name"])
            difficult_only += len({o["name"] for o in info["objects"]} - plain)
        if not images:
            raise ValueError(f"{split}: no images left from {list_path} (all unlabeled or missing)")
        splits[split] = {"images": images, "annotations": anns}
        report_splits[split] = {
            "source_split": listname,
            "image_root": str(image_dir),
            "listed": len(ids),
            "official_listed": OFFICIAL_COUNTS[split],
            "unlabeled": len(unlabeled),
            "unlabeled_dropped": len(unlabeled) if drop_unlabeled else 0,
            "missing": len(missing),
            "missing_examples": sorted(missing)[:MAX_EXAMPLES],
            "kept": len(images),
            "difficult_objects": difficult_objects,
            "difficult_only_labels": difficult_only,
            "image_list_sha256": split_list_sha256({split: [im["file_name"] for im in images]}),
            **split_summary(splits[split], classes),
        }
    report = {
        "dataset": name,
        "created": now_iso(),
        "source": {"roots": [str(Path(r)) for r in ([roots] if isinstance(roots, str | os.PathLike)
                                                  else roots)],
                   "voc2007_dirs": {s: str(d) for s, d in dirs.items()}},
        "options": {"drop_unlabeled": drop_unlabeled, "missing_images": missing_images},
        "class_order": "VOC devkit order (category id = position + 1)",
        "box_convention": "COCO [x, y, w, h] in 0-based inclusive pixels: x = xmin - 1, w = xmax - xmin + 1",
        "num_classes": len(classes),
        "splits": report_splits,
        "split_list_sha256": split_list_sha256(
            {s: [im["file_name"] for im in d["images"]] for s, d in splits.items()}),
        "labels_sha256": labels_sha256(splits),
        "archives": dict(archive_checksums or {}),
    }
    write_prepared_dataset(out_dir, name, classes, splits,
                           {s: str(dirs[s] / "JPEGImages") for s in splits}, report)
    log.info("%s: prepared %s", name, {s: r["kept"] for s, r in report_splits.items()})
    return report


def prepare_from_config(dataset_cfg: Mapping[str, Any], out_dir: Path | str, *,
                        progress: bool = True) -> dict[str, Any]:
    """Workflow entry point: verify + extract the archives (or use ``use_existing``), then prepare."""
    roots, checksums = ensure_archives(dataset_cfg, progress=progress)
    return prepare_voc2007(
        roots, out_dir,
        drop_unlabeled=bool(dataset_cfg.get("drop_unlabeled", True)),
        missing_images=str(dataset_cfg.get("missing_images", "drop")),
        archive_checksums=checksums,
        name=str(dataset_cfg.get("name", "voc2007")),
    )
