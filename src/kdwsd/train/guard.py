"""Stop a training run that diverges, naming the model, the step and the loss term at fault.

A non-finite loss stops training at once; so does a finite one that explodes (e.g. 5e30 after a too-large
learning rate), which would otherwise run to completion and write a useless model. The check runs before
the backward pass, so the diverged step never updates the weights, and the checkpoint written at the end of
the previous epoch is left as it is.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

__all__ = ["DivergenceGuard", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """A loss term is non-finite or grew past ``factor`` x its running mean."""


class DivergenceGuard:
    """Watches every loss term per step.

    Args:
        factor: a term whose magnitude exceeds ``factor * max(running mean of |term|, min_scale)`` diverged.
        window: steps in the running mean (the last ``window`` accepted values of each term).
        warmup: steps seen before the growth test applies (non-finite values are refused from step 0).
        min_scale: floor of the running mean, so that a term that sits near 0 (e.g. a loss that starts at
            0) is not flagged for rising to an ordinary value; with no history yet (first step, or first step
            after resuming), a term above ``factor * min_scale`` is refused.
    """

    def __init__(self, factor: float, window: int = 50, warmup: int = 0, min_scale: float = 1.0) -> None:
        if factor <= 1 or window < 1 or warmup < 0 or min_scale <= 0:
            raise ValueError(f"DivergenceGuard needs factor > 1, window >= 1, warmup >= 0 and min_scale > 0; got "
                             f"factor={factor}, window={window}, warmup={warmup}, min_scale={min_scale}")
        self.factor, self.window, self.warmup, self.min_scale = factor, window, warmup, min_scale
        self._history: dict[str, deque[float]] = {}
        self._seen: dict[str, int] = {}

    def check(
        self, loss_value: float, model_name: str, epoch: int, step: int, terms: Mapping[str, float] | None = None
    ) -> None:
        """Record one step's ``loss`` and its ``terms``; raise :class:`TrainingDivergedError` on divergence.

        Args:
            loss_value: the total loss of the step.
            model_name: named in the error (e.g. the model file or stage name).
            epoch: 1-based epoch, step: the global iteration; both named in the error.
            terms: the step's named loss terms (checked the same way as the total).
        """
        values = {"loss": float(loss_value), **{k: float(v) for k, v in (terms or {}).items()}}
        where = f"{model_name}: epoch {epoch}, step {step}"
        hint = ("The last good checkpoint (end of the previous epoch) is kept. Lower the learning rate, set "
                "grad_clip or add warmup_iters, then rerun")  # fmt: skip
        for name, v in values.items():
            if not math.isfinite(v):
                raise TrainingDivergedError(f"{where}: {name} is {v}. {hint}")
        for name, v in values.items():
            hist = self._history.setdefault(name, deque(maxlen=self.window))
            if self._seen.get(name, 0) >= self.warmup:
                mean = sum(abs(x) for x in hist) / len(hist) if hist else 0.0
                if abs(v) > self.factor * max(mean, self.min_scale):
                    raise TrainingDivergedError(
                        f"{where}: {name} is {v:.4g}, more than {self.factor:g} x its running mean {mean:.4g} over "
                        f"the last {len(hist)} steps. {hint}"
                    )
        for name, v in values.items():  # record only once the whole step is accepted
            self._history[name].append(v)
            self._seen[name] = self._seen.get(name, 0) + 1
