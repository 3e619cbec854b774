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
    """Watches a run's loss per step.

    Every value (the total ``loss`` and each named term) must be finite. The total must also stay within
    ``factor * max(running mean of |loss|, min_scale)``; when it does not, the error names the term that grew
    most relative to its own running mean. Only the total is growth-tested because the step functions also
    report non-loss quantities as terms (RoI counts, the mean temperature), and any exploding loss term
    makes the total explode. The first step of a run (or of a resumed run) has no history: only finiteness
    is checked there; an explosion at that step shows up as a non-finite loss one step later.

    Args:
        factor: growth bound (> 1).
        window: steps in the running mean (the last ``window`` accepted steps).
        warmup: accepted steps before the growth test applies.
        min_scale: floor of the running mean, so that a loss sitting near 0 is not flagged for rising to an
            ordinary value.
    """

    def __init__(self, factor: float, window: int = 50, warmup: int = 0, min_scale: float = 1.0) -> None:
        if factor <= 1 or window < 1 or warmup < 0 or min_scale <= 0:
            raise ValueError(f"DivergenceGuard needs factor > 1, window >= 1, warmup >= 0 and min_scale > 0; got "
                             f"factor={factor}, window={window}, warmup={warmup}, min_scale={min_scale}")
        self.factor, self.window, self.warmup, self.min_scale = factor, window, warmup, min_scale
        self._history: dict[str, deque[float]] = {}
        self._seen = 0

    def _mean(self, name: str) -> float | None:
        hist = self._history.get(name)
        return sum(abs(x) for x in hist) / len(hist) if hist else None

    def check(
        self, loss_value: float, model_name: str, epoch: int, step: int, terms: Mapping[str, float] | None = None
    ) -> None:
        """Record one step; raise :class:`TrainingDivergedError` when it diverged (nothing is recorded then).

        Args:
            loss_value: the total loss of the step.
            model_name: named in the error (e.g. the model file or stage name).
            epoch: 1-based epoch, step: the global iteration; both named in the error.
            terms: the step's named terms, as ``fit``'s step function returns them.
        """
        terms = {k: float(v) for k, v in (terms or {}).items()}
        loss = float(loss_value)
        where = f"{model_name}: epoch {epoch}, step {step}"
        hint = ("The last good checkpoint (end of the previous epoch) is kept. Lower the learning rate, set "
                "grad_clip or add warmup_iters, then rerun")  # fmt: skip
        for name, v in {**terms, "loss": loss}.items():  # a term first: it says where a NaN total came from
            if not math.isfinite(v):
                raise TrainingDivergedError(f"{where}: {name} is {v}. {hint}")
        mean = self._mean("loss")
        if mean is not None and self._seen >= self.warmup and abs(loss) > self.factor * max(mean, self.min_scale):
            ratios = {k: abs(v) / max(m, self.min_scale) for k, v in terms.items() if (m := self._mean(k)) is not None}
            culprit = ""
            if ratios:
                k = max(ratios, key=ratios.__getitem__)
                culprit = f"; the term that grew most: {k} ({terms[k]:.4g}, running mean {self._mean(k):.4g})"
            raise TrainingDivergedError(
                f"{where}: loss is {loss:.4g}, more than {self.factor:g} x its running mean {mean:.4g} over the "
                f"last {len(self._history['loss'])} steps{culprit}. {hint}"
            )
        for name, v in {**terms, "loss": loss}.items():
            self._history.setdefault(name, deque(maxlen=self.window)).append(v)
        self._seen += 1
