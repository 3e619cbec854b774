"""Rule download_archive: fetch one dataset archive (resumable, retried, verified, placed atomically).

``params``: ``url`` (None for files the user must fetch by hand), ``sha256``, ``size``; optional ``md5``,
``mirrors``, ``checksum_record`` (default ``<dataset root>/checksums.json``, the output's grandparent),
``progress``. ``output[0]``: ``<dataset root>/archives/<filename>`` (``kdwsd.data.download.archive_path``).
All logic is in :func:`kdwsd.data.download.download`.
"""

from pathlib import Path

from kdwsd.data.download import download
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, "download")
p, dest = snakemake.params, Path(snakemake.output[0])
download(getattr(p, "url", None), dest, getattr(p, "sha256", None), getattr(p, "size", None),
         md5=getattr(p, "md5", None), mirrors=getattr(p, "mirrors", None) or (),
         checksum_record=getattr(p, "checksum_record", None) or dest.parent.parent / "checksums.json",
         progress=bool(getattr(p, "progress", True)))  # fmt: skip
