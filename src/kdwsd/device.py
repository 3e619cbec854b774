"""Device and numeric-precision helpers shared by training, the teacher cache and evaluation.

``precision`` is one of ``fp32`` (no autocast: the default, and what targets and reported metrics use),
``bf16`` or ``fp16`` (autocast on CUDA only; fp16 training also needs a gradient scaler). On a CPU the two
reduced precisions fall back to fp32 with one logged warning, so that CPU runs and tests still pass.
"""

from __future__ import annotations

import logging

import torch

__all__ = ["PRECISIONS", "autocast", "autocast_dtype", "grad_scaler", "pick_device"]

log = logging.getLogger("kdwsd.device")

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_warned: set[tuple[str, str]] = set()


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32.

    bf16 / fp16 apply on CUDA only; elsewhere they are disabled (one warning per device type and setting).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (expected one of {sorted(PRECISIONS)})")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return None
    if device.type != "cuda":
        if (device.type, precision) not in _warned:
            _warned.add((device.type, precision))
            log.warning("precision '%s' is only used on CUDA; running in fp32 on %s", precision, device.type)
        return None
    return dtype


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """An autocast context for ``precision`` on ``device`` (disabled for fp32 and off CUDA)."""
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 autocast on CUDA (bf16 and fp32 need none).

    A disabled scaler is a pass-through: ``scale(loss)`` is ``loss`` and ``step(opt)`` is ``opt.step()``.
    """
    enabled = autocast_dtype(device, precision) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)
