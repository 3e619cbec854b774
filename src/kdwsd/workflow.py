"""Glue for the thin scripts that Snakemake's ``script:`` directive runs: logging and thread limits."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["setup_step"]


def setup_step(snakemake: Any, name: str) -> logging.Logger:
    """Log to the rule's ``log:`` file and stderr, and limit torch/OpenCV threads to the rule's threads.

    Returns the ``kdwsd`` logger; library modules log under ``kdwsd.*`` and end up in the same file.
    """
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger("kdwsd")
    root.setLevel(logging.INFO)
    root.handlers.clear()
    for handler in (logging.FileHandler(log_path, mode="a"), logging.StreamHandler(sys.stderr)):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(root.handlers[0])
    threads = max(1, int(getattr(snakemake, "threads", 1)))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    import cv2

    cv2.setNumThreads(threads)
    root.info("step %s started with %d threads", name, threads)
    return root
