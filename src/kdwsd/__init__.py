"""kdwsd: multi-label image classification via knowledge distillation from weakly-supervised detection.

``kdwsd.load_model(path)`` loads a trained model file as a predictor (see :mod:`kdwsd.inference`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    # Lazy: importing any kdwsd submodule must not pull in torch, OpenCV and the whole inference stack.
    if name == "load_model":
        from kdwsd.inference import load_model

        return load_model
    raise AttributeError(f"module 'kdwsd' has no attribute {name!r}")
