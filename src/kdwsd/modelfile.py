"""The model-file format (docs/formats.md §3): weights plus what is needed to rebuild and use them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["load_model_file", "save_model_file"]


def save_model_file(path: Path | str, model: nn.Module, extra: dict[str, Any]) -> None:
    """Atomically write ``{"model": state_dict, "arch": model.arch, **extra}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"model": state, "arch": getattr(model, "arch", {}), **extra}, tmp)
    os.replace(tmp, path)


def load_model_file(path: Path | str) -> dict[str, Any]:
    """Load a model file safely (``weights_only=True``), naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot load model file {path}: {exc}") from exc
