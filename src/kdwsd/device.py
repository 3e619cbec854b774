"""Device selection and mixed precision, shared by every stage that runs a network."""

from __future__ import annotations

import torch

__all__ = ["autocast", "pick_device"]


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """bf16 autocast on CUDA; a disabled context elsewhere (evaluation scores are computed in fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")
