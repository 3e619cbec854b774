"""Stages of ``workflow/rules/dataset.smk``: the embedded synthetic set, archive downloads, preparation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["download_archive", "prepare_dataset", "prepared_dir", "synthetic_dataset"]

log = logging.getLogger("kdwsd")


def prepared_dir(data: list[str]) -> Path:
    """The prepared-dataset folder (docs/formats.md §1) that holds the rule's ``data`` files."""
    return Path(data[0]).parent


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
