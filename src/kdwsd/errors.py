"""The one error type for bad pipeline inputs, and the helpers that go with it.

Every stage boundary (images, annotations, proposals, teacher outputs, checkpoints, caches) reports a bad
input as :class:`PipelineInputError`, whose message always reads ``"<path>: <item>: <what is wrong>. <what to
do>"``, so that a failed run names the file to look at and the action that fixes it. See docs/robustness.md.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["PipelineInputError", "check_finite", "quarantine"]

log = logging.getLogger("kdwsd.errors")


class PipelineInputError(ValueError):
    """A stage input is missing, truncated, corrupt or inconsistent.

    Attributes:
        path: the file (or folder) at fault.
        item: what inside it is at fault (an image id, a JSON key, an array name, ...).
        problem: what is wrong.
        hint: what to do about it.
    """

    def __init__(self, path: os.PathLike[str] | str, item: Any, problem: str, hint: str) -> None:
        self.path = Path(path)
        self.item = item
        self.problem = problem
        self.hint = hint
        super().__init__(f"{self.path}: {item}: {problem.rstrip('.')}. {hint}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across DataLoader workers (not the default args)
        return (type(self), (self.path, self.item, self.problem, self.hint))


def quarantine(path: os.PathLike[str] | str, *, stamp: bool = True) -> Path | None:
    """Move a corrupt file or folder aside so that the workflow manager sees it missing and rebuilds it.

    Args:
        path: the file or folder.
        stamp: rename to ``<name>.corrupt-<YYYYmmdd-HHMMSS>`` (default, keeps every bad copy); when False,
            to ``<name>.corrupt`` (replacing an earlier one).
    Returns:
        the new path, or None when ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    suffix = f".corrupt-{time.strftime('%Y%m%d-%H%M%S')}" if stamp else ".corrupt"
    dest = path.with_name(path.name + suffix)
    n = 1
    while stamp and dest.exists():  # two quarantines within a second
        dest = path.with_name(f"{path.name}{suffix}.{n}")
        n += 1
    if not stamp and dest.is_dir():
        shutil.rmtree(dest)
    os.replace(path, dest)
    log.warning("moved corrupt %s aside to %s", path, dest)
    return dest


def check_finite(
    values: Mapping[str, torch.Tensor | np.ndarray],
    *,
    items: Sequence[Any],
    path: os.PathLike[str] | str,
    hint: str,
) -> None:
    """Raise :class:`PipelineInputError` naming the first item whose values are not all finite.

    Args:
        values: name -> array [B, ...]; row ``b`` belongs to ``items[b]``.
        items: B item names (e.g. image ids), used in the message.
        path: the file responsible for the values (e.g. the model that produced them).
        hint: what to do.
    """
    for name, v in values.items():
        t = torch.as_tensor(v)
        if not t.is_floating_point():
            continue
        bad = ~torch.isfinite(t.reshape(len(t), -1)).all(dim=1)
        if bool(bad.any()):
            b = int(bad.nonzero()[0, 0])
            rows = int(bad.sum())
            raise PipelineInputError(
                path, f"image id {items[b]}", f"'{name}' is not finite ({rows} of {len(t)} rows in this batch)", hint
            )
