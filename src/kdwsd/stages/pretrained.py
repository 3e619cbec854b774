"""Rule fetch_pretrained (a local rule: it runs where Snakemake runs, never on an offline compute node)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHECKSUM_RECORD", "fetch_pretrained_file"]

#: The checksum record next to the fetched files (``<downloads.dir>/checksums.json``).
CHECKSUM_RECORD = "checksums.json"


def fetch_pretrained_file(*, file: str, url: str, sha256: str | None, hash_prefix: str | None) -> None:
    """Fetch one ``downloads.files`` entry to ``file``: resumable and verified; a file without a published
    sha256 has it recorded in ``<dir>/checksums.json`` at first download and checked on every later run,
    and torch.hub file names (``vgg16-397923af.pth``) have their sha256 prefix checked first."""
    from kdwsd.pretrained import fetch_pretrained

    dest = Path(file)
    fetch_pretrained(url, dest, dest.parent / CHECKSUM_RECORD, sha256, hash_prefix=hash_prefix, progress=False)
