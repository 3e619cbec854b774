"""Registry of the official dataset archives: URLs, sizes and checksums, each with its source.

Nothing here is invented. Where a checksum is given, the comment names the public file it was taken from.
Where none is published (NUS-WIDE), the value is ``None``: :func:`kdwsd.data.download.download` then
computes it at the first download, records it in ``<root>/checksums.json`` and verifies the file against
that record on every later use (and the data report carries it, so two users can compare).

The ``config/<dataset>.yaml`` files repeat these values under ``dataset.archives``; the config is what the
workflow uses, this module is the reviewed reference (a test checks that the two agree).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["SOURCES", "ArchiveSpec", "archives_config", "get_sources"]


@dataclass(frozen=True)
class ArchiveSpec:
    """One downloadable file.

    Attributes:
        url: primary URL, or ``None`` when the file cannot be fetched automatically (the user must place it
            at ``<root>/archives/<filename>``).
        filename: file name under ``<root>/archives/``.
        size: bytes, or ``None`` if not published.
        sha256: hex digest, or ``None`` if not published (recorded at first download).
        md5: hex digest where one is published (verified in addition to sha256).
        mirrors: further URLs serving the same bytes.
        note: provenance of the values / what the user must do.
    """

    url: str | None
    filename: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    mirrors: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""

    def to_config(self) -> dict[str, Any]:
        """The ``dataset.archives.<key>`` entry of a config file."""
        d = asdict(self)
        d["mirrors"] = list(self.mirrors)
        d.pop("note")
        return d


# ------------------------------------------------------------------------------------------------------
# MS-COCO 2014. URLs: the cocodataset.org download page (as used by ML-GCN's coco.py, see ANCHORS.md E.1).
# Sizes and sha256: tensorflow/datasets `tensorflow_datasets/url_checksums/coco2014.txt` (and coco.txt);
# the same sha256 values appear in torchvision's prototype COCO dataset (`_IMAGES_CHECKSUMS`,
# `_META_CHECKSUMS`), two independent records that agree.
# ------------------------------------------------------------------------------------------------------
COCO2014 = {
    "train2014": ArchiveSpec(
        url="http://images.cocodataset.org/zips/train2014.zip",
        filename="train2014.zip",
        size=13_510_573_713,
        sha256="ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775",
        note="tensorflow/datasets url_checksums/coco2014.txt; torchvision prototype coco.py",
    ),
    "val2014": ArchiveSpec(
        url="http://images.cocodataset.org/zips/val2014.zip",
        filename="val2014.zip",
        size=6_645_013_297,
        sha256="fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0",
        note="tensorflow/datasets url_checksums/coco2014.txt; torchvision prototype coco.py",
    ),
    "annotations": ArchiveSpec(
        url="http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
        filename="annotations_trainval2014.zip",
        size=252_872_794,
        sha256="031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009",
        note="tensorflow/datasets url_checksums/coco2014.txt; torchvision prototype coco.py",
    ),
}

# ------------------------------------------------------------------------------------------------------
# PASCAL VOC 2007. Official host: host.robots.ox.ac.uk (URLs as in torchvision.datasets.voc).
# md5: torchvision `torchvision/datasets/voc.py` DATASET_YEAR_DICT ('2007', '2007-test').
# sha256: torchvision prototype `voc.py` (_TRAIN_VAL_ARCHIVES / _TEST_ARCHIVES, host.robots.ox.ac.uk URLs)
# and tensorflow/datasets `url_checksums/voc.txt` (pjreddie.com mirror URLs) — the same values, so the
# mirror serves identical bytes. Sizes: tensorflow/datasets `url_checksums/voc.txt`.
# The pjreddie.com mirror (documented alternative, used by darknet/YOLO instructions) is tried when the
# official host fails.
# ------------------------------------------------------------------------------------------------------
VOC2007 = {
    "trainval": ArchiveSpec(
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
        filename="VOCtrainval_06-Nov-2007.tar",
        size=460_032_000,
        sha256="7d8cd951101b0957ddfd7a530bdc8a94f06121cfc1e511bb5937e973020c7508",
        md5="c52e279531787c972589f7e41ab4ae64",
        mirrors=("http://pjreddie.com/media/files/VOCtrainval_06-Nov-2007.tar",),
        note="md5: torchvision voc.py; sha256: torchvision prototype voc.py + tfds url_checksums/voc.txt",
    ),
    "test": ArchiveSpec(
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
        filename="VOCtest_06-Nov-2007.tar",
        size=451_020_800,
        sha256="6836888e2e01dca84577a849d339fa4f73e1e4f135d312430c4856b5609b4892",
        md5="b6e924de25625d8de591ea690078ad9f",
        mirrors=("http://pjreddie.com/media/files/VOCtest_06-Nov-2007.tar",),
        note="md5: torchvision voc.py; sha256: torchvision prototype voc.py + tfds url_checksums/voc.txt",
    ),
}

# ------------------------------------------------------------------------------------------------------
# NUS-WIDE, official label files. URLs: the NUS-WIDE page's download links
# (https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html), as used in many
# public preparation scripts; the older host dl.nextcenter.org/public/nuswide/ is listed as a mirror.
# The site was reported unreachable in 2024 (ANCHORS.md E.2, MKT #22). No checksums are published:
# sha256/size are None and get recorded at the first download. The images are NOT here: the official
# images are only given out on request (agreement form); the user supplies them (dataset.image_dir).
# ------------------------------------------------------------------------------------------------------
_NUS = "https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide"
_NUS_OLD = "http://dl.nextcenter.org/public/nuswide"
NUSWIDE_OFFICIAL = {
    "groundtruth": ArchiveSpec(
        url=f"{_NUS}/Groundtruth.zip", filename="Groundtruth.zip", mirrors=(f"{_NUS_OLD}/Groundtruth.zip",),
        note="no published checksum: recorded at first download",
    ),
    "imagelist": ArchiveSpec(
        url=f"{_NUS}/ImageList.zip", filename="ImageList.zip", mirrors=(f"{_NUS_OLD}/ImageList.zip",),
        note="no published checksum: recorded at first download",
    ),
    "concepts": ArchiveSpec(
        url=f"{_NUS}/ConceptsList.zip", filename="ConceptsList.zip",
        mirrors=(f"{_NUS_OLD}/ConceptsList.zip",),
        note="no published checksum: recorded at first download",
    ),
}

# ------------------------------------------------------------------------------------------------------
# NUS-WIDE, the re-crawled version shared by the ASL authors (ANCHORS.md E.2; ASL issue #20).
# Images: a Google Drive file (id 0B7IzDz-4yH_HMFdiSE44R1lselE, a ~5 GB "nus_wide.tar.gz" per public
# READMEs that link it). Google Drive needs an interactive confirmation for large files, so no direct URL
# can be given: the user downloads it in a browser and places it at <root>/archives/nus_wide.tar.gz.
# Split CSV: nus_wid_data.csv from ASL's public bucket (URL as linked from ASL's MODEL_ZOO and from CoNeS's
# README). No checksums are published for either: recorded at first use.
# ------------------------------------------------------------------------------------------------------
NUSWIDE_ASL = {
    "images": ArchiveSpec(
        url=None,
        filename="nus_wide.tar.gz",
        note="fetch by hand: https://drive.google.com/file/d/0B7IzDz-4yH_HMFdiSE44R1lselE/view",
    ),
    "split_csv": ArchiveSpec(
        url="https://miil-public-eu.oss-eu-central-1.aliyuncs.com/model-zoo/ASL/nus_wid_data.csv",
        filename="nus_wid_data.csv",
        note="no published checksum: recorded at first download",
    ),
}

#: dataset / source name -> archive key -> spec
SOURCES: dict[str, dict[str, ArchiveSpec]] = {
    "coco2014": COCO2014,
    "voc2007": VOC2007,
    "nuswide": NUSWIDE_OFFICIAL,
    "nuswide_asl": NUSWIDE_ASL,
}


def get_sources(name: str) -> dict[str, ArchiveSpec]:
    """The archives of ``name`` (``coco2014``, ``voc2007``, ``nuswide``, ``nuswide_asl``)."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"no archive registry for dataset '{name}' (known: {sorted(SOURCES)})") from None


def archives_config(name: str) -> dict[str, dict[str, Any]]:
    """``dataset.archives`` for a config: ``{key: {url, filename, size, sha256, md5, mirrors}}``."""
    return {key: spec.to_config() for key, spec in get_sources(name).items()}
