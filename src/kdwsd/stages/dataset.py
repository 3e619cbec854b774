"""Stages of ``workflow/rules/dataset.smk``: the embedded synthetic set, archive downloads, preparation."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kdwsd.data.prepared import Split

__all__ = ["SKIPPABLE_SPLITS", "checked_split", "download_archive", "prepare_dataset", "prepared_dir",
           "skip_report_path", "synthetic_dataset"]  # fmt: skip

#: The splits whose bad images ``dataset.on_bad_image: skip`` may drop. The evaluation split is never
#: thinned: its metrics would silently describe another test set than the paper's or another run's, so a
#: bad test image always stops the run (fix the file instead).
SKIPPABLE_SPLITS = ("train",)

log = logging.getLogger("kdwsd")


def prepared_dir(data: list[str]) -> Path:
    """The prepared-dataset folder (docs/formats.md §1) that holds the rule's ``data`` files."""
    return Path(data[0]).parent


def skip_report_path(output: str) -> Path:
    """Where a stage records the images it skipped: ``<output>.skipped_images.json`` next to its output."""
    return Path(f"{output}.skipped_images.json")


def checked_split(
    data: list[str], name: str, on_bad_image: str, report_next_to: str, rows: list[int] | None = None
) -> Split:
    """Load split ``name`` of the prepared dataset (only the images at ``rows`` when given), applying
    ``dataset.on_bad_image``.

    ``error`` (the default) checks nothing up front: every image is read through
    :func:`kdwsd.data.images.read_image`, which stops the job naming the first bad file. ``skip`` (train split
    only, see :data:`SKIPPABLE_SPLITS`) decodes every image once here, drops the bad ones (truncated,
    undecodable, missing, or not the annotated size), logs their count and list, and writes them to
    :func:`skip_report_path` of ``report_next_to``. The check is deterministic, so every stage drops the
    same images.
    """
    from kdwsd.data.images import BAD_IMAGE_POLICIES, validate_split_images
    from kdwsd.data.prepared import load_split

    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise ValueError(f"config key dataset.on_bad_image must be one of {BAD_IMAGE_POLICIES}, got {on_bad_image!r}")
    split = load_split(prepared_dir(data), name)
    if rows is not None:
        split = split.subset(rows)
    if on_bad_image != "skip" or name not in SKIPPABLE_SPLITS:
        return split
    kept, report = validate_split_images(split, "skip")
    log.info("dataset.on_bad_image=skip: split %s: %d of %d images skipped%s", name, report["dropped"],
             report["checked"], "".join(f"\n  {b['path']} (image id {b['image_id']}): {b['problem']}"
                                        for b in report["bad"]))  # fmt: skip
    skip_report_path(report_next_to).write_text(json.dumps(report, indent=2) + "\n")
    return kept


def synthetic_dataset(*, files: list[str], images: str, report: str, dataset: dict[str, Any]) -> None:
    """Render the synthetic multi-label dataset (``dataset`` = the config section) into the prepared layout."""
    from kdwsd.data.synthetic import SyntheticConfig, generate_dataset

    generate_dataset(SyntheticConfig.from_dict(dataset), Path(report).parent, log=log.info)


def download_archive(
    *, archive: str, filename: str, url: str | None, sha256: str | None, size: int | None, md5: str | None,
    mirrors: list[str],
) -> None:  # fmt: skip
    """Fetch one dataset archive: resumable, retried, verified against the config's checksums, placed
    atomically; unpublished checksums are recorded at first download in ``<root>/checksums.json``."""
    from kdwsd.data.download import download

    dest = Path(archive)
    download(url, dest, sha256, size, md5=md5, mirrors=mirrors, checksum_record=dest.parent.parent / "checksums.json")


def prepare_dataset(
    *, files: list[str], report: str, dataset: dict[str, Any], archives: list[str] | None = None
) -> None:
    """COCO 2014 / NUS-WIDE / VOC 2007 archives (or ``use_existing`` folders) -> the prepared layout."""
    from kdwsd.data import coco, nuswide, voc

    preparers = {"coco2014": coco.prepare_from_config, "nuswide": nuswide.prepare_from_config,
                 "voc2007": voc.prepare_from_config}  # fmt: skip
    if dataset["name"] not in preparers:
        raise ValueError(f"dataset.name must be one of {sorted(preparers)} here, got {dataset['name']!r}")
    preparers[dataset["name"]](dataset, Path(report).parent)
