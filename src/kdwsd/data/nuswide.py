"""NUS-WIDE (81 concepts) preparation, from the official label files or from the ASL re-crawl.

The official NUS-WIDE images are not freely downloadable (only on request, see docs/datasets.md), so two
sources are supported; the report records which one was used and hashes of the final image list + split
and of the labels, so two users can tell whether they ran on the same data.

**Official label files + a user-supplied image folder** (``source: official``). Assumed layout (the
NUS-WIDE page's ``Groundtruth.zip``, ``ImageList.zip`` and ``ConceptsList.zip``, as read by public
preparation scripts; the files could not be inspected here)::

    ConceptsList/Concepts81.txt                      81 concept names, one a line (alphabetical)
    ImageList/TrainImagelist.txt                     161,789 lines like  actor\\0001_2124494179.jpg
    ImageList/TestImagelist.txt                      107,859 lines
    Groundtruth/TrainTestLabels/Labels_<concept>_Train.txt   one 0/1 a line, aligned with TrainImagelist
    Groundtruth/TrainTestLabels/Labels_<concept>_Test.txt    one 0/1 a line, aligned with TestImagelist
    <image_dir>/actor/0001_2124494179.jpg            the images: list entries with '\\' read as '/'

Each piece may sit under any of the given roots, with or without the ``ConceptsList/`` … folder level and
with an optional ``NUS-WIDE/`` prefix. Image ids are positions in the official lists (train 1..N_train, test
N_train+1..), so they do not change when images are dropped.

**ASL re-crawl** (``source: asl``): ``nus_wid_data.csv`` with rows ``path, "['label', ...]", train|val``
(the ASL authors' 70/30 split, unlabeled images already removed) and the image archive, whose paths are
taken relative to an image root found by probing (or given as ``image_dir``). ``val`` becomes ``test``.
Class order: ``Concepts81.txt`` if one is found among the roots, else the sorted label names (the
Query2Label reader's convention, which equals Concepts81's alphabetical order).

Both: classes get category ids 1..C in that order; annotations are image-level (no ``bbox``); images
without any label are dropped by default and counted; listed images missing on disk (or unreadable) are
dropped and counted, or fail, per ``missing_images``.
"""

from __future__ import annotations

import ast
import csv
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
from kdwsd.data.prepared import write_prepared_dataset

__all__ = [
    "NUS_NUM_CONCEPTS",
    "locate_nuswide_official",
    "prepare_from_config",
    "prepare_nuswide",
    "prepare_nuswide_asl",
    "read_concepts",
]

log = logging.getLogger(__name__)

NUS_NUM_CONCEPTS = 81
#: official list counts (NExTplusplus/NUS-WIDE, ANCHORS.md E.2)
OFFICIAL_COUNTS = {"train": 161_789, "test": 107_859}
_PREFIXES = ("", "NUS-WIDE", "NUS_WIDE", "nuswide", "nus_wide")
_OFFICIAL_PARTS = {
    "concepts": ("Concepts81.txt", "ConceptsList/Concepts81.txt"),
    "labels": ("TrainTestLabels", "Groundtruth/TrainTestLabels"),
    "train_list": ("TrainImagelist.txt", "ImageList/TrainImagelist.txt"),
    "test_list": ("TestImagelist.txt", "ImageList/TestImagelist.txt"),
}


def _as_list(roots: Path | str | Sequence[Path | str]) -> list[Path]:
    return [Path(roots)] if isinstance(roots, str | os.PathLike) else [Path(r) for r in roots]


def _find(roots: Sequence[Path], names: Sequence[str], want_dir: bool = False) -> Path | None:
    for r in roots:
        for prefix in _PREFIXES:
            for name in names:
                p = r / prefix / name if prefix else r / name
                if (p.is_dir() if want_dir else p.is_file()):
                    return p.resolve()
    return None


def locate_nuswide_official(roots: Path | str | Sequence[Path | str]) -> dict[str, Path]:
    """Find ``Concepts81.txt``, ``TrainTestLabels/``, ``TrainImagelist.txt`` and ``TestImagelist.txt``."""
    roots = _as_list(roots)
    out = {}
    for key, names in _OFFICIAL_PARTS.items():
        found = _find(roots, names, want_dir=(key == "labels"))
        if found is None:
            raise FileNotFoundError(
                f"NUS-WIDE: could not find {names[-1]} under {', '.join(str(r) for r in roots)}"
            )
        out[key] = found
    return out


def read_concepts(path: Path | str, expected: int | None = NUS_NUM_CONCEPTS) -> list[str]:
    """Read a concept list (one name a line); check the count and uniqueness."""
    path = Path(path)
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if expected is not None and len(names) != expected:
        raise ValueError(f"concept list {path} has {len(names)} names, expected {expected}")
    if len(set(names)) != len(names):
        raise ValueError(f"concept list {path} has duplicate names")
    return names


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"NUS-WIDE file {path} does not exist")
    return [line.strip() for line in path.read_text(errors="strict").splitlines() if line.strip()]


def _read_01(path: Path, n: int) -> list[bool]:
    values = _read_lines(path)
    if len(values) != n:
        raise ValueError(f"label file {path} has {len(values)} lines, but its image list has {n}")
    out = []
    for lineno, v in enumerate(values, start=1):
        if v not in ("0", "1"):
            raise ValueError(f"label file {path}:{lineno}: expected 0 or 1, got {v!r}")
        out.append(v == "1")
    return out


def _image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the image header, or ``None`` if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None


def _build_split(
    split: str,
    entries: Sequence[tuple[int, str, list[int]]],
    image_dir: Path,
    *,
    drop_unlabeled: bool,
    missing_images: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Turn ``(image_id, file_name, category ids)`` rows into a COCO split dict + its report counts."""
    unlabeled = [f for _, f, cats in entries if not cats]
    candidates = [e for e in entries if e[2]] if drop_unlabeled else list(entries)
    missing = resolve_missing(split, [f for _, f, _ in candidates], image_dir, missing_images)
    images, anns, unreadable = [], [], []
    for image_id, file_name, cats in candidates:
        if file_name in missing:
            continue
        size = _image_size(image_dir / file_name)
        if size is None:
            unreadable.append(file_name)
            continue
        images.append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1]})
        for c in cats:
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": c, "iscrowd": 0})
    if unreadable and missing_images == "fail":
        raise ValueError(f"{split}: {len(unreadable)} images under {image_dir} cannot be read as images "
                         f"(e.g. {image_dir / unreadable[0]}); set missing_images: drop to drop them")
    if unreadable:
        log.warning("%s: %d unreadable images dropped", split, len(unreadable))
    if not images:
        raise ValueError(f"{split}: no images left under {image_dir} (all unlabeled, missing or unreadable)")
    counts = {
        "image_root": str(image_dir),
        "listed": len(entries),
        "unlabeled": len(unlabeled),
        "unlabeled_dropped": len(unlabeled) if drop_unlabeled else 0,
        "missing": len(missing),
        "missing_examples": sorted(missing)[:MAX_EXAMPLES],
        "unreadable": len(unreadable),
        "unreadable_examples": sorted(unreadable)[:MAX_EXAMPLES],
        "kept": len(images),
    }
    return {"images": images, "annotations": anns}, counts


def _finish(
    name: str,
    classes: list[tuple[int, str]],
    splits: dict[str, dict[str, Any]],
    counts: dict[str, dict[str, Any]],
    image_roots: dict[str, str],
    source: dict[str, Any],
    options: dict[str, Any],
    archive_checksums: Mapping[str, Any] | None,
    out_dir: Path | str,
) -> dict[str, Any]:
    # ids of annotations must be unique within a split file; renumber after filtering
    for coco in splits.values():
        for k, ann in enumerate(coco["annotations"], start=1):
            ann["id"] = k
    for split in splits:
        counts[split].update(split_summary(splits[split], classes))
        counts[split]["image_list_sha256"] = split_list_sha256(
            {split: [im["file_name"] for im in splits[split]["images"]]})
    report = {
        "dataset": name,
        "created": now_iso(),
        "source": source,
        "options": options,
        "class_order": source.get("class_order", "Concepts81.txt"),
        "num_classes": len(classes),
        "splits": counts,
        "split_list_sha256": split_list_sha256(
            {s: [im["file_name"] for im in d["images"]] for s, d in splits.items()}),
        "labels_sha256": labels_sha256(splits),
        "archives": dict(archive_checksums or {}),
    }
    write_prepared_dataset(out_dir, name, classes, splits, image_roots, report)
    log.info("%s: prepared %s", name, {s: r["kept"] for s, r in counts.items()})
    return report


def prepare_nuswide(
    label_roots: Path | str | Sequence[Path | str],
    image_dir: Path | str,
    out_dir: Path | str,
    *,
    drop_unlabeled: bool = True,
    missing_images: str = "drop",
    expected_num_classes: int | None = NUS_NUM_CONCEPTS,
    archive_checksums: Mapping[str, Any] | None = None,
    name: str = "nuswide",
) -> dict[str, Any]:
    """Prepare NUS-WIDE from the official label files and a user-supplied image folder.

    Args:
        label_roots: folder(s) holding the label files (see module docstring).
        image_dir: the user's image folder (``<concept>/<file>.jpg`` as in the image lists); not copied.
        out_dir: the prepared-dataset folder.
        drop_unlabeled: drop images with none of the concepts (~22% of the official lists; counted).
        missing_images: ``"drop"`` or ``"fail"`` for listed images absent (or unreadable) on disk.
        expected_num_classes: the concept count to insist on (81; ``None`` disables the check).
        archive_checksums: the label archives' checksum record, copied into the report.
        name: dataset name for ``dataset.json``.
    """
    parts = locate_nuswide_official(label_roots)
    image_dir = Path(image_dir).resolve()
    concepts = read_concepts(parts["concepts"], expected_num_classes)
    classes = [(i + 1, c) for i, c in enumerate(concepts)]
    splits: dict[str, dict[str, Any]] = {}
    counts: dict[str, dict[str, Any]] = {}
    first_id = 1
    for split, suffix in (("train", "Train"), ("test", "Test")):
        list_path = parts[f"{split}_list"]
        files = [line.replace("\\", "/") for line in _read_lines(list_path)]
        if len(set(files)) != len(files):
            raise ValueError(f"image list {list_path} has duplicate entries")
        cats: list[list[int]] = [[] for _ in files]
        for cid, concept in classes:
            flags = _read_01(parts["labels"] / f"Labels_{concept}_{suffix}.txt", len(files))
            for i, flag in enumerate(flags):
                if flag:
                    cats[i].append(cid)
        entries = [(first_id + i, f, c) for i, (f, c) in enumerate(zip(files, cats, strict=True))]
        first_id += len(files)
        splits[split], counts[split] = _build_split(split, entries, image_dir, drop_unlabeled=drop_unlabeled,
                                                    missing_images=missing_images)
        counts[split]["source_list"] = str(list_path)
        counts[split]["official_listed"] = OFFICIAL_COUNTS[split]
    source = {
        "kind": "official label files + user image folder",
        "label_files": {k: {"path": str(p), **({"sha256": file_digest(p)["sha256"]} if p.is_file() else {})}
                        for k, p in parts.items()},
        "image_dir": str(image_dir),
        "class_order": "Concepts81.txt",
    }
    options = {"drop_unlabeled": drop_unlabeled, "missing_images": missing_images}
    return _finish(name, classes, splits, counts, {s: str(image_dir) for s in splits}, source, options,
                   archive_checksums, out_dir)


def _parse_label_cell(text: str, where: str) -> list[str]:
    text = text.strip()
    try:
        value = ast.literal_eval(text) if text else []
    except (ValueError, SyntaxError):
        raise ValueError(f"{where}: label cell {text!r} is not a Python-style list of names") from None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: label cell {text!r} is not a list of names")
    return [v.strip() for v in value if v.strip()]


def _read_asl_csv(path: Path) -> list[tuple[str, list[str], str]]:
    rows = []
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < 3:
                raise ValueError(f"split file {path}:{lineno}: expected 3 columns (path, labels, split), "
                                 f"got {len(row)}")
            file_name, labels, split = row[0].strip(), row[1], row[2].strip()
            if lineno == 1 and split not in ("train", "val"):
                continue  # header
            if split not in ("train", "val"):
                raise ValueError(f"split file {path}:{lineno}: split must be 'train' or 'val', got {split!r}")
            rows.append((file_name.replace("\\", "/"), _parse_label_cell(labels, f"{path}:{lineno}"), split))
    if not rows:
        raise ValueError(f"split file {path} has no data rows")
    return rows


def _probe_image_root(roots: Sequence[Path], files: Sequence[str]) -> Path:
    """The folder (a root or one of its sub-folders) under which most of the first listed files exist."""
    sample = list(files[:200])
    best, best_hits = None, 0
    for r in roots:
        cands = [r, *sorted(p for p in r.iterdir() if p.is_dir() and not p.name.startswith("."))]
        for c in cands:
            hits = sum((c / f).is_file() for f in sample)
            if hits > best_hits:
                best, best_hits = c, hits
    if best is None:
        raise FileNotFoundError(
            f"NUS-WIDE (ASL): none of the first listed images (e.g. {sample[0]}) exists under "
            f"{', '.join(str(r) for r in roots)} or their sub-folders; set dataset.image_dir"
        )
    return best.resolve()


def prepare_nuswide_asl(
    roots: Path | str | Sequence[Path | str],
    out_dir: Path | str,
    *,
    csv_path: Path | str | None = None,
    image_dir: Path | str | None = None,
    drop_unlabeled: bool = True,
    missing_images: str = "drop",
    expected_num_classes: int | None = NUS_NUM_CONCEPTS,
    archive_checksums: Mapping[str, Any] | None = None,
    name: str = "nuswide",
) -> dict[str, Any]:
    """Prepare NUS-WIDE from the ASL re-crawl (``nus_wid_data.csv`` + image archive).

    Args:
        roots: folders holding the CSV and the extracted images (the CSV is searched for by name).
        out_dir: the prepared-dataset folder.
        csv_path: the split CSV (default: ``nus_wid_data.csv`` found under ``roots``).
        image_dir: the folder the CSV paths are relative to (default: probed under ``roots``).
        drop_unlabeled, missing_images, expected_num_classes, archive_checksums, name: as
            :func:`prepare_nuswide`.
    """
    roots = _as_list(roots)
    csv_file = Path(csv_path) if csv_path else _find(roots, ("nus_wid_data.csv",))
    if csv_file is None or not csv_file.is_file():
        raise FileNotFoundError(f"NUS-WIDE (ASL): split file nus_wid_data.csv not found under "
                                f"{', '.join(str(r) for r in roots)}")
    rows = _read_asl_csv(csv_file)
    concepts_file = _find(roots, _OFFICIAL_PARTS["concepts"])
    if concepts_file is not None:
        concepts = read_concepts(concepts_file, expected_num_classes)
        order = "Concepts81.txt"
    else:
        concepts = sorted({label for _, labels, _ in rows for label in labels})
        order = "sorted label names from the split CSV"
        if expected_num_classes is not None and len(concepts) != expected_num_classes:
            raise ValueError(f"split file {csv_file}: {len(concepts)} distinct labels, expected "
                             f"{expected_num_classes}")
    cid = {c: i + 1 for i, c in enumerate(concepts)}
    for file_name, labels, _ in rows:
        unknown = [lab for lab in labels if lab not in cid]
        if unknown:
            raise ValueError(f"split file {csv_file}: {file_name} has labels {unknown} that are not concepts")
    root = Path(image_dir).resolve() if image_dir else _probe_image_root(roots, [r[0] for r in rows])
    splits: dict[str, dict[str, Any]] = {}
    counts: dict[str, dict[str, Any]] = {}
    for split, asl_split in (("train", "train"), ("test", "val")):
        entries = [(i + 1, f, sorted({cid[lab] for lab in labels}))
                   for i, (f, labels, s) in enumerate(rows) if s == asl_split]
        if not entries:
            raise ValueError(f"split file {csv_file} has no '{asl_split}' rows")
        splits[split], counts[split] = _build_split(split, entries, root, drop_unlabeled=drop_unlabeled,
                                                    missing_images=missing_images)
        counts[split]["source_split"] = asl_split
    source = {
        "kind": "ASL re-crawl (nus_wid_data.csv + image archive)",
        "split_csv": {"path": str(csv_file), **file_digest(csv_file)},
        "concepts_file": str(concepts_file) if concepts_file else None,
        "image_dir": str(root),
        "class_order": order,
    }
    options = {"drop_unlabeled": drop_unlabeled, "missing_images": missing_images}
    return _finish(name, [(cid[c], c) for c in concepts], splits, counts, {s: str(root) for s in splits},
                   source, options, archive_checksums, out_dir)


def prepare_from_config(dataset_cfg: Mapping[str, Any], out_dir: Path | str, *,
                        progress: bool = True) -> dict[str, Any]:
    """Workflow entry point: verify + extract the archives (or use ``use_existing``), then prepare.

    ``dataset.source`` picks ``official`` (needs ``dataset.image_dir``) or ``asl``.
    """
    roots, checksums = ensure_archives(dataset_cfg, progress=progress)
    common = {
        "drop_unlabeled": bool(dataset_cfg.get("drop_unlabeled", True)),
        "missing_images": str(dataset_cfg.get("missing_images", "drop")),
        "expected_num_classes": dataset_cfg.get("num_classes", NUS_NUM_CONCEPTS),
        "archive_checksums": checksums,
        "name": str(dataset_cfg.get("name", "nuswide")),
    }
    source = dataset_cfg.get("source", "official")
    if source == "official":
        image_dir = dataset_cfg.get("image_dir")
        if not image_dir:
            raise ValueError(
                "dataset.image_dir is required for NUS-WIDE source 'official': the official images are only "
                "available on request from the NUS-WIDE authors (see docs/datasets.md); or use source: asl"
            )
        return prepare_nuswide(roots, image_dir, out_dir, **common)
    if source == "asl":
        return prepare_nuswide_asl(roots, out_dir, image_dir=dataset_cfg.get("image_dir"), **common)
    raise ValueError(f"dataset.source must be 'official' or 'asl', got {source!r}")
