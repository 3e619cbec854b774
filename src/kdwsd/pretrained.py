"""Fetch pretrained files (ImageNet VGG16 weights, OpenCV's structured-edge model) before any GPU job.

Compute nodes of many clusters are offline, so a local rule fetches these files on the login node first.
Each file goes through :func:`kdwsd.data.download.download` (resumable, verified, atomic) with a checksum
record: a file without a published sha256 has its sha256 recorded at first download and verified on every
later call. torchvision's weight URLs carry the first hex digits of the file's sha256 in their name
(``vgg16-397923af.pth``); that prefix is checked too, before anything is recorded, as ``torch.hub`` does.

In the workflow, the config's ``downloads:`` section lists the files and the local rule ``fetch_pretrained``
(:func:`kdwsd.stages.pretrained.fetch_pretrained_file`) fetches each into ``downloads.dir``; ``pretrained:
imagenet`` and a null ``structured_model`` then resolve to those files (``workflow/rules/common.smk``).
Outside the workflow:

* VGG16: ``pretrained: imagenet`` loads ``<torch hub dir>/checkpoints/vgg16-397923af.pth``
  (:func:`torch_hub_checkpoint` gives that path; it honours ``TORCH_HOME``), or set ``pretrained:`` to the
  fetched file's path.
* structured-edge model: give the fetched path as the ``structured_model`` proposal parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kdwsd.data.download import ChecksumError, download, file_digest, load_checksum_record
from kdwsd.proposals.edges import STRUCTURED_MODEL_SHA256, STRUCTURED_MODEL_URL

__all__ = [
    "STRUCTURED_MODEL_SHA256",
    "STRUCTURED_MODEL_URL",
    "VGG16_IMAGENET_URL",
    "fetch_pretrained",
    "torch_hub_checkpoint",
    "torchvision_hash_prefix",
]

#: torchvision's ``VGG16_Weights.IMAGENET1K_V1.url`` (528 MB); its name carries the sha256 prefix 397923af.
VGG16_IMAGENET_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

# torch.hub's convention: ``<name>-<first hex digits of the sha256>.<ext>`` (torch.hub.HASH_REGEX).
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")


def torchvision_hash_prefix(url_or_name: str) -> str | None:
    """The sha256 prefix a torchvision / torch.hub file name carries (``vgg16-397923af.pth`` -> ``397923af``),
    or ``None`` when the name carries none."""
    m = _HASH_IN_NAME.search(url_or_name.rstrip("/").rsplit("/", 1)[-1])
    return m.group(1) if m else None


def torch_hub_checkpoint(url: str) -> Path:
    """Where ``torch.hub`` (and so ``pretrained: imagenet``) looks for ``url``'s file:
    ``<torch.hub.get_dir()>/checkpoints/<file name>`` (``$TORCH_HOME/hub/checkpoints`` when set)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / url.rstrip("/").rsplit("/", 1)[-1]


def fetch_pretrained(
    url: str,
    dest: Path,
    checksum_record: Path,
    expected_sha256: str | None = None,
    *,
    hash_prefix: str | None = None,
    progress: bool = True,
    download_options: Mapping[str, Any] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` once, verified, and return ``dest``.

    Args:
        url: where the file is published.
        dest: final path (the download goes to ``<dest>.part`` first; nothing half-written is ever here).
        checksum_record: JSON checksum record (format in :mod:`kdwsd.data.download`); the file's sha256 and
            size are recorded there at first download and every later call verifies ``dest`` against it.
        expected_sha256: the published sha256, when there is one (it wins over the record).
        hash_prefix: sha256 prefix the file must start with; default: the one in ``url``'s file name when it
            follows torch.hub's ``name-<hex>.ext`` convention (VGG16: ``397923af``), else none.
        progress: progress bar on stderr.
        download_options: further keyword arguments of :func:`kdwsd.data.download.download` (``retries``,
            ``timeout``, ``mirrors``, ...).

    Raises:
        ChecksumError: the file does not match ``expected_sha256``, the record or the prefix; the bad file is
            moved to ``<dest>.corrupt`` and nothing is recorded for it.
        DownloadError: the download failed (a rerun resumes from ``<dest>.part``).
    """
    dest, checksum_record = Path(dest), Path(checksum_record)
    prefix = (hash_prefix or torchvision_hash_prefix(url) or "").lower() or None
    known = expected_sha256 or load_checksum_record(checksum_record).get(dest.name, {}).get("sha256")
    if known and prefix and not known.lower().startswith(prefix):
        raise ValueError(
            f"{dest.name}: the expected sha256 {known} (given, or in {checksum_record}) does not start with "
            f"the prefix {prefix} that {url} names; fix the expected value or the record"
        )
    opts = {"progress": progress, **dict(download_options or {})}
    # With a prefix to check and nothing known yet, record only after the prefix check has passed.
    record_now = not (prefix and not known)
    download(url, dest, expected_sha256, checksum_record=checksum_record if record_now else None, **opts)
    if prefix and not known:
        actual = file_digest(dest)["sha256"]
        if not actual.startswith(prefix):
            corrupt = dest.with_name(dest.name + ".corrupt")
            dest.replace(corrupt)
            raise ChecksumError(url, "sha256 prefix", prefix, actual, corrupt,
                                origin=f"the hash in the file name of {url}")  # fmt: skip
        # dest exists now: this verifies it (no network) and records its sha256 and size
        download(url, dest, expected_sha256, checksum_record=checksum_record, **opts)
    return dest
