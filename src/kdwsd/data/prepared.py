"""The prepared-dataset layout shared by every dataset (see ``docs/formats.md`` section 1).

A dataset stage (synthetic generator, COCO / NUS-WIDE / VOC preparation) writes, into one folder:
``classes.tsv``, ``<split>.json`` (COCO format), ``<split>.txt`` (the image list), ``dataset.json`` and
``report.json``. Everything downstream reads it back through :func:`load_split`, which derives the
image-level label matrix from the COCO JSON with pycocotools — one code path for every dataset.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kdwsd.errors import PipelineInputError

__all__ = [
    "COCO_KEYS",
    "Split",
    "coco_from_json",
    "load_classes",
    "load_split",
    "read_dataset_meta",
    "split_names",
    "write_json_atomic",
    "write_prepared_dataset",
]


@dataclass
class Split:
    """One split of a prepared dataset, in image-list order.

    Attributes:
        name: split name (``train``, ``val``, ``test``).
        image_ids: int64[N] COCO image ids.
        paths: N absolute image paths.
        sizes: int64[N, 2] original ``(height, width)``.
        labels: uint8[N, C] image-level labels derived from the annotations.
        classes: C class names, in label-column order.
        gt_boxes: per image, a list of ``(class_index, float32[4] x1,y1,x2,y2)`` (inclusive pixels);
            empty lists for datasets without boxes. Only for QC / CorLoc / plots, never for training.
    """

    name: str
    image_ids: np.ndarray
    paths: list[Path]
    sizes: np.ndarray
    labels: np.ndarray
    classes: list[str]
    gt_boxes: list[list[tuple[int, np.ndarray]]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def has_boxes(self) -> bool:
        return any(len(b) > 0 for b in self.gt_boxes)

    def subset(self, indices: Sequence[int]) -> Split:
        """The images at ``indices`` (positions in this split), in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return Split(name=self.name, image_ids=self.image_ids[idx], paths=[self.paths[i] for i in idx],
                     sizes=self.sizes[idx], labels=self.labels[idx], classes=list(self.classes),
                     gt_boxes=[self.gt_boxes[i] for i in idx])  # fmt: skip


def write_json_atomic(path: Path | str, obj: Any, indent: int | None = None) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
    os.replace(tmp, path)


def write_prepared_dataset(
    out_dir: Path | str,
    name: str,
    classes: list[tuple[int, str]],
    splits: Mapping[str, Mapping[str, Any]],
    image_roots: Mapping[str, str],
    report: Mapping[str, Any],
) -> None:
    """Write a prepared dataset folder.

    Args:
        out_dir: destination folder (created).
        name: dataset name recorded in ``dataset.json``.
        classes: ``(category_id, name)`` pairs in label-column order.
        splits: split name -> COCO-format dict with ``images`` and ``annotations`` (``categories`` is
            written from ``classes``). The image order is the label-matrix order.
        image_roots: split name -> image folder; relative paths are relative to ``out_dir``.
        report: the data report (counts, hashes, checksums), written to ``report.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    categories = [{"id": int(cid), "name": str(cname)} for cid, cname in classes]
    if len({c["id"] for c in categories}) != len(categories):
        raise ValueError(f"{name}: duplicate category ids in class list")
    tsv = "index\tcategory_id\tname\n" + "".join(
        f"{i}\t{c['id']}\t{c['name']}\n" for i, c in enumerate(categories)
    )
    (out / "classes.tsv").write_text(tsv)
    counts = {}
    for split, coco in splits.items():
        if split not in image_roots:
            raise KeyError(f"{name}: no image root given for split '{split}'")
        doc = {
            "info": {"description": f"kdwsd prepared dataset {name}, split {split}"},
            "images": list(coco["images"]),
            "annotations": list(coco.get("annotations", [])),
            "categories": categories,
        }
        write_json_atomic(out / f"{split}.json", doc)
        lines = "".join(f"{im['id']}\t{im['file_name']}\n" for im in doc["images"])
        (out / f"{split}.txt").write_text(lines)
        counts[split] = len(doc["images"])
    meta = {
        "name": name,
        "num_classes": len(categories),
        "splits": counts,
        "image_roots": {k: str(v) for k, v in image_roots.items()},
    }
    write_json_atomic(out / "dataset.json", meta, indent=2)
    write_json_atomic(out / "report.json", dict(report), indent=2)


def read_dataset_meta(data_dir: Path | str) -> dict[str, Any]:
    """Read ``dataset.json`` with a clear error when the folder is not a prepared dataset."""
    path = Path(data_dir) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a prepared dataset (run the dataset stage first)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc


def load_classes(data_dir: Path | str) -> list[tuple[int, str]]:
    """Read ``classes.tsv`` -> ``[(category_id, name), ...]`` in label-column order."""
    path = Path(data_dir) / "classes.tsv"
    rows = path.read_text().splitlines()
    if not rows or rows[0].split("\t") != ["index", "category_id", "name"]:
        raise ValueError(f"{path}: expected header 'index<TAB>category_id<TAB>name'")
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        parts = row.split("\t")
        if len(parts) != 3 or int(parts[0]) != lineno - 2:
            raise ValueError(f"{path}:{lineno}: malformed row {row!r}")
        out.append((int(parts[1]), parts[2]))
    return out


COCO_KEYS = ("images", "annotations", "categories")


def coco_from_json(path: Path | str, hint: str) -> Any:
    """Read a COCO-format JSON into a ``pycocotools.coco.COCO``, refusing a file without ``images`` /
    ``annotations`` / ``categories`` lists (pycocotools would silently index it as having no annotations).

    Raises:
        FileNotFoundError: no such file.
        PipelineInputError: not JSON, not an object, or a required key missing; ``hint`` says what to do.
    """
    from pycocotools.coco import COCO

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PipelineInputError(path, "file", f"not valid JSON ({exc})", hint) from exc
    if not isinstance(doc, dict):
        raise PipelineInputError(path, "file", f"not a COCO annotation object (a JSON {type(doc).__name__})", hint)
    for key in COCO_KEYS:
        if not isinstance(doc.get(key), list):
            raise PipelineInputError(path, f"key '{key}'", "missing or not a list", hint)
    coco = COCO()
    coco.dataset = doc
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
        coco.createIndex()
    return coco


def split_names(data_dir: Path | str) -> list[str]:
    """The splits of a prepared dataset (``train``, ``test`` and, for the synthetic set, ``val``)."""
    return sorted(read_dataset_meta(data_dir)["image_roots"])


def load_split(data_dir: Path | str, split: str) -> Split:
    """Load one split; labels come from the COCO JSON through pycocotools.

    Raises:
        FileNotFoundError / ValueError naming the file when the folder is incomplete or malformed;
        PipelineInputError when ``<split>.json`` lacks a required key or every label of the split is 0.
    """
    data_dir = Path(data_dir)
    meta = read_dataset_meta(data_dir)
    if split not in meta["image_roots"]:
        raise KeyError(f"{data_dir}/dataset.json: no split '{split}' (have {sorted(meta['image_roots'])})")
    classes = load_classes(data_dir)
    json_path = data_dir / f"{split}.json"
    try:
        coco = coco_from_json(json_path, "Rerun the dataset stage to rewrite the prepared split")
    except (KeyError, TypeError) as exc:  # an image or annotation entry without id / image_id
        raise PipelineInputError(json_path, "file", f"malformed ({type(exc).__name__}: {exc})",
                                 "Rerun the dataset stage to rewrite the prepared split") from exc
    col = {cid: i for i, (cid, _) in enumerate(classes)}
    root = Path(meta["image_roots"][split])
    if not root.is_absolute():
        root = (data_dir / root).resolve()

    list_path = data_dir / f"{split}.txt"
    ids = [int(line.split("\t", 1)[0]) for line in list_path.read_text().splitlines() if line]
    n, c = len(ids), len(classes)
    labels = np.zeros((n, c), dtype=np.uint8)
    sizes = np.zeros((n, 2), dtype=np.int64)
    paths: list[Path] = []
    gt_boxes: list[list[tuple[int, np.ndarray]]] = []
    for i, image_id in enumerate(ids):
        if image_id not in coco.imgs:
            raise ValueError(f"{list_path}: image id {image_id} is not in {json_path}")
        info = coco.imgs[image_id]
        sizes[i] = (info["height"], info["width"])
        paths.append(root / info["file_name"])
        boxes = []
        for ann in coco.imgToAnns.get(image_id, []):
            if ann["category_id"] not in col:
                raise ValueError(f"{json_path}: annotation {ann.get('id')} has unknown category")
            k = col[ann["category_id"]]
            labels[i, k] = 1
            if "bbox" in ann:
                x, y, w, h = ann["bbox"]
                boxes.append((k, np.array([x, y, x + w - 1, y + h - 1], dtype=np.float32)))
        gt_boxes.append(boxes)
    if n and not labels.any():  # e.g. annotations lost: a teacher would happily train on all negatives
        raise PipelineInputError(json_path, f"split {split}", f"all {n} images have no label (no annotation "
                                 "names a known category)", "Check the source annotations and rerun the dataset stage")
    return Split(
        name=split,
        image_ids=np.asarray(ids, dtype=np.int64),
        paths=paths,
        sizes=sizes,
        labels=labels,
        classes=[name for _, name in classes],
        gt_boxes=gt_boxes,
    )
