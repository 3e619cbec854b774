"""MS-COCO 2014 preparation, plus the helpers every real dataset shares.

Input (official layout, from the three official zips or a user's copy)::

    <root>/train2014/COCO_train2014_000000000009.jpg ...     (train2014.zip)
    <root>/val2014/COCO_val2014_000000000042.jpg ...         (val2014.zip)
    <root>/annotations/instances_train2014.json              (annotations_trainval2014.zip)
    <root>/annotations/instances_val2014.json

The pieces may sit under different roots (one folder per extracted archive); :func:`locate_coco2014`
searches them all. Output: the prepared layout of ``docs/formats.md`` section 1, with ``train`` = train2014
and ``test`` = val2014. Labels are read with pycocotools (the same code path as the rest of the pipeline);
the class order is the category-id order (ASL / CSRA / Query2Label convention) and is written to
``classes.tsv``. Images without any instance annotation are dropped by default (ML-GCN / ASL / CSRA do so;
Query2Label keeps them); the literature's counts are 82,081 train / 40,137 val, recorded in the report next
to what the files gave.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
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
from kdwsd.data.download import ensure_archives, file_digest
from kdwsd.data.prepared import COCO_KEYS, write_prepared_dataset
from kdwsd.errors import PipelineInputError

__all__ = [
    "LITERATURE_COUNTS",
    "load_coco_annotations",
    "locate_coco2014",
    "prepare_coco2014",
    "prepare_from_config",
]

log = logging.getLogger(__name__)

#: Annotated-image counts quoted in the literature (ML-GCN / ASL / this paper's Caffe test layers).
LITERATURE_COUNTS = {"train": 82_081, "test": 40_137}
#: Full official image counts (train2014 / val2014), to tell a full copy from a subset.
OFFICIAL_LISTED = {"train": 82_783, "test": 40_504}


def load_coco_annotations(path: Path | str) -> Any:
    """Load a COCO instances JSON with pycocotools, with clear errors naming the file.

    Raises:
        FileNotFoundError: no such file.
        PipelineInputError: missing ``images`` / ``annotations`` / ``categories``.
        ValueError: not valid JSON, not a JSON object, or an annotation naming an unknown image or category.
    """
    from pycocotools.coco import COCO

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
            coco = COCO(str(path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"annotation file {path} is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"annotation file {path} is not valid JSON (not UTF-8 text): {exc}") from exc
    except AssertionError as exc:  # pycocotools asserts the top level is a dict
        raise ValueError(f"annotation file {path} is not a COCO annotation object: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise ValueError(f"annotation file {path} is malformed: {type(exc).__name__}: {exc}") from exc
    for key in COCO_KEYS:  # pycocotools indexes a file without them as having no annotations
        if not isinstance(coco.dataset.get(key), list):
            raise PipelineInputError(path, f"key '{key}'", f"no '{key}' list (is it an instances_*.json file?)",
                                     "Use the official instances_<split>2014.json or re-download the annotations")
    for ann in coco.dataset["annotations"]:
        if ann.get("image_id") not in coco.imgs:
            raise ValueError(f"annotation file {path}: annotation {ann.get('id')} names unknown image "
                             f"{ann.get('image_id')}")
        if ann.get("category_id") not in coco.cats:
            raise ValueError(f"annotation file {path}: annotation {ann.get('id')} names unknown category "
                             f"{ann.get('category_id')}")
    return coco


# ======================================================================================================
# COCO 2014
# ======================================================================================================
#: prepared split -> official COCO 2014 split
COCO_SPLITS = {"train": "train2014", "test": "val2014"}


def locate_coco2014(roots: Path | str | Sequence[Path | str]) -> dict[str, dict[str, Path]]:
    """Find the annotation file and image folder of each split under ``roots``.

    Looks, in every root, for ``annotations/instances_<s>2014.json`` (or ``instances_<s>2014.json``) and for
    the image folder ``<s>2014/`` (or ``images/<s>2014/``, or the root itself when it is named ``<s>2014``).

    Returns ``{"train": {"annotations": path, "images": path}, "test": {...}}``.
    """
    roots = [Path(roots)] if isinstance(roots, str | os.PathLike) else [Path(r) for r in roots]
    out: dict[str, dict[str, Path]] = {}
    for split, official in COCO_SPLITS.items():
        ann_names = [Path("annotations") / f"instances_{official}.json", Path(f"instances_{official}.json")]
        img_names = [Path(official), Path("images") / official]
        ann = next((r / n for r in roots for n in ann_names if (r / n).is_file()), None)
        img = next((r / n for r in roots for n in img_names if (r / n).is_dir()), None)
        if img is None:
            img = next((r for r in roots if r.name == official and r.is_dir()), None)
        if ann is None or img is None:
            looked = ", ".join(str(r) for r in roots)
            what = f"annotations/instances_{official}.json" if ann is None else f"the {official}/ folder"
            raise FileNotFoundError(f"COCO 2014: could not find {what} under {looked}")
        out[split] = {"annotations": ann.resolve(), "images": img.resolve()}
    return out


def prepare_coco2014(
    roots: Path | str | Sequence[Path | str],
    out_dir: Path | str,
    *,
    drop_unlabeled: bool = True,
    missing_images: str = "drop",
    keep_segmentation: bool = False,
    archive_checksums: Mapping[str, Any] | None = None,
    name: str = "coco2014",
) -> dict[str, Any]:
    """Prepare MS-COCO 2014 into ``out_dir`` and return the data report (also written to ``report.json``).

    Args:
        roots: folder(s) holding the official layout (see :func:`locate_coco2014`).
        out_dir: the prepared-dataset folder (``results/<run>/data``).
        drop_unlabeled: drop images without any instance annotation (counted either way).
        missing_images: ``"drop"`` (count and drop images listed in the JSON but absent on disk) or
            ``"fail"``.
        keep_segmentation: copy the ``segmentation`` polygons / RLE into ``<split>.json`` (off: nothing
            downstream uses them and they are most of the file's size).
        archive_checksums: the checksum record of the archives, copied into the report.
        name: dataset name for ``dataset.json``.
    """
    paths = locate_coco2014(roots)
    classes: list[tuple[int, str]] | None = None
    splits: dict[str, dict[str, Any]] = {}
    report_splits: dict[str, Any] = {}
    ann_files: dict[str, Any] = {}
    for split, where in paths.items():
        ann_path, image_dir = where["annotations"], where["images"]
        coco = load_coco_annotations(ann_path)
        cats = sorted((int(c["id"]), str(c["name"])) for c in coco.dataset["categories"])
        if classes is None:
            classes = cats
        elif cats != classes:
            raise ValueError(f"annotation file {ann_path}: categories differ from "
                             f"{paths['train']['annotations']}")
        ann_files[split] = {"path": str(ann_path), **file_digest(ann_path, ("sha256",))}

        images = sorted(coco.dataset["images"], key=lambda im: int(im["id"]))
        labeled = {i for i, anns in coco.imgToAnns.items() if anns}
        unlabeled = [im for im in images if im["id"] not in labeled]
        candidates = [im for im in images if im["id"] in labeled] if drop_unlabeled else images
        missing = resolve_missing(split, [im["file_name"] for im in candidates], image_dir, missing_images)
        kept = [im for im in candidates if im["file_name"] not in missing]
        if not kept:
            raise ValueError(f"{split}: no images left from {ann_path} (all unlabeled or missing)")
        kept_ids = {im["id"] for im in kept}
        keys = ["id", "image_id", "category_id", "bbox", "area", "iscrowd"]
        if keep_segmentation:
            keys.append("segmentation")
        anns = [
            {k: a[k] for k in keys if k in a}
            for a in sorted(coco.dataset["annotations"], key=lambda a: int(a["id"]))
            if a["image_id"] in kept_ids
        ]
        splits[split] = {
            "images": [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in kept],
            "annotations": anns,
        }
        report_splits[split] = {
            "source_split": COCO_SPLITS[split],
            "image_root": str(image_dir),
            "listed": len(images),
            "unlabeled": len(unlabeled),
            "unlabeled_dropped": len(unlabeled) if drop_unlabeled else 0,
            "missing": len(missing),
            "missing_examples": sorted(missing)[:MAX_EXAMPLES],
            "kept": len(kept),
            "literature_kept": LITERATURE_COUNTS[split],
            "image_list_sha256": split_list_sha256({split: [im["file_name"] for im in kept]}),
        }
        if len(images) == OFFICIAL_LISTED[split] and drop_unlabeled and not missing \
                and len(kept) != LITERATURE_COUNTS[split]:
            log.warning("%s: %d annotated images kept, the literature quotes %d", split, len(kept),
                        LITERATURE_COUNTS[split])
    assert classes is not None
    for split in splits:
        report_splits[split].update(split_summary(splits[split], classes))
    report = {
        "dataset": name,
        "created": now_iso(),
        "source": {"roots": [str(Path(r)) for r in ([roots] if isinstance(roots, str | os.PathLike)
                                                  else roots)],
                   "annotation_files": ann_files},
        "options": {"drop_unlabeled": drop_unlabeled, "missing_images": missing_images,
                    "keep_segmentation": keep_segmentation},
        "class_order": "category id",
        "num_classes": len(classes),
        "splits": report_splits,
        "split_list_sha256": split_list_sha256(
            {s: [im["file_name"] for im in d["images"]] for s, d in splits.items()}),
        "labels_sha256": labels_sha256(splits),
        "archives": dict(archive_checksums or {}),
    }
    write_prepared_dataset(out_dir, name, classes, splits,
                           {s: str(paths[s]["images"]) for s in splits}, report)
    log.info("%s: prepared %s", name, {s: r["kept"] for s, r in report_splits.items()})
    return report


def prepare_from_config(dataset_cfg: Mapping[str, Any], out_dir: Path | str, *,
                        progress: bool = True) -> dict[str, Any]:
    """Workflow entry point: verify + extract the archives (or use ``use_existing``), then prepare."""
    roots, checksums = ensure_archives(dataset_cfg, progress=progress)
    return prepare_coco2014(
        roots, out_dir,
        drop_unlabeled=bool(dataset_cfg.get("drop_unlabeled", True)),
        missing_images=str(dataset_cfg.get("missing_images", "drop")),
        keep_segmentation=bool(dataset_cfg.get("keep_segmentation", False)),
        archive_checksums=checksums,
        name=str(dataset_cfg.get("name", "coco2014")),
    )
