"""Provenance of a result: which code (git commit, uncommitted changes), which software versions, which
machine and when -- written next to the result together with the merged configuration that made it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import platform
import socket
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PACKAGES", "collect_provenance", "write_provenance"]

# distribution names as pip knows them -> the key written
PACKAGES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "snakemake": "snakemake",
            "opencv": "opencv-contrib-python-headless", "kdwsd": "kdwsd"}  # fmt: skip
_OPENCV_DISTS = ("opencv-contrib-python-headless", "opencv-python-headless", "opencv-contrib-python",
                 "opencv-python")  # fmt: skip


def _git(repo_dir: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git executable, or a hung filesystem
    return res.stdout.rstrip("\n") if res.returncode == 0 else None  # keep porcelain's leading columns


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _device() -> str:
    """The accelerator the run would use: the CUDA device name, ``"mps"``, or the CPU model."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
    except ImportError:
        pass
    return f"cpu: {platform.processor() or platform.machine()}"


def collect_provenance(repo_dir: str | Path = ".") -> dict[str, Any]:
    """Where and with what a result is being made.

    Args:
        repo_dir: a directory inside the git checkout of the code.

    Returns:
        ``{"git_commit": full hash or "unknown", "git_dirty": bool (any line of ``git status --porcelain``,
        untracked files included) or "unknown", "git_changes": the first 50 porcelain lines (what makes it
        dirty), "python": version, "packages": {torch, torchvision, numpy, snakemake, opencv, kdwsd: version or
        None when not installed}, "device", "hostname", "platform", "time_utc": ISO 8601}``. "unknown" means
        ``repo_dir`` is not a git checkout (or git is not installed).
    """
    repo = Path(repo_dir)
    commit = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain") if commit is not None else None
    changes = status.splitlines() if status else []
    packages = {key: _version(dist) for key, dist in PACKAGES.items()}
    for name in ("torch", "torchvision"):  # the running build, with its tag (+cpu / +cu130): a plain str
        with contextlib.suppress(ImportError):
            packages[name] = str(__import__(name).__version__)
    if packages["opencv"] is None:  # whichever OpenCV wheel provides cv2
        packages["opencv"] = next((v for v in map(_version, _OPENCV_DISTS) if v), None)
    return {
        "git_commit": commit or "unknown",
        "git_dirty": bool(changes) if status is not None else "unknown",
        "git_changes": changes[:50],
        "python": platform.python_version(),
        "packages": packages,
        "device": _device(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "time_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_provenance(
    path: str | Path,
    config: Mapping[str, Any],
    *,
    repo_dir: str | Path = ".",
    inputs: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Write :func:`collect_provenance` plus the merged ``config`` (and optionally the input files) to ``path``.

    The format follows the suffix: ``.json``, or ``.yaml`` / ``.yml``.

    Args:
        path: output file.
        config: the merged configuration the result was made with (JSON-serialisable).
        repo_dir: a directory inside the code's git checkout.
        inputs: input files to record by path (e.g. the rule's inputs).

    Returns:
        The written record ``{"provenance": {...}, "config": {...}, "inputs": [...]}``.
    """
    out = Path(path)
    record = {
        "provenance": collect_provenance(repo_dir),
        "config": json.loads(json.dumps(dict(config), default=str)),  # plain types: tuples, Paths -> lists, str
        "inputs": [str(p) for p in inputs],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".json":
        text = json.dumps(record, indent=2, sort_keys=False) + "\n"
    elif suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(record, sort_keys=False, allow_unicode=True)
    else:
        raise ValueError(f"{out}: provenance is written as .json, .yaml or .yml; got suffix {out.suffix!r}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return record
