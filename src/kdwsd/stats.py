"""Uncertainty of reported numbers: bootstrap intervals of mAP over test images, paired seed differences.

Two sources of noise are separated here:

* **test-set sampling** -- :func:`bootstrap_map_ci` resamples the test images of *one* model's scores;
* **training randomness** -- :func:`paired_difference_ci` compares two methods trained with the same seeds
  (``a_i - b_i`` per seed, Student-t interval), and :func:`mean_sd` summarises one method over seeds.

All results are plain Python floats (JSON-serialisable; NaN where undefined).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as _sps

from kdwsd.metrics import _average_precision_columns, _check_scores_labels

__all__ = ["bootstrap_map_ci", "mean_sd", "paired_difference_ci", "t_quantile"]

# Resamples evaluated per vectorised AP call: [N, chunk * C] float64 arrays stay ~ tens of MB for COCO val.
_BOOT_CELLS = 4_000_000


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1) (0.05 gives a 95 % interval); got {alpha}")
    return alpha


def bootstrap_map_ci(
    scores: Any,
    labels: Any,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """mAP with a percentile-bootstrap interval over test images.

    Each resample draws N images with replacement (``numpy.random.default_rng(seed).integers(0, N,
    size=(n_boot, N))``, one row per resample) and computes mAP exactly as :func:`kdwsd.metrics.
    multilabel_metrics` does: the tie-grouped non-interpolated AP of every class, averaged over the classes
    that have **at least one positive in that resample** (a class whose few positives all fell out is
    skipped in that resample, not counted as 0). A resample without any positive at all is dropped (with a
    warning saying how many). The interval is the ``alpha / 2`` and ``1 - alpha / 2`` quantiles
    (``numpy.quantile``, linear interpolation) of the resampled mAPs.

    Args:
        scores: float [N, C] scores (any monotone transform gives the same AP).
        labels: {0, 1} [N, C] ground truth.
        n_boot: number of resamples (1000 is the usual minimum for a 95 % interval).
        alpha: 1 - confidence level.
        seed: seed of the resampling RNG (fixed so a rerun gives the same interval).

    Returns:
        ``(mAP, low, high)``: the mAP of the full test set (classes without positives skipped, as in
        ``multilabel_metrics``) and the interval bounds, as fractions.

    Raises:
        ValueError: on bad shapes/labels (see ``multilabel_metrics``), ``n_boot < 1`` or ``alpha`` outside
            (0, 1).
    """
    s, y = _check_scores_labels(scores, labels, ndim=2)
    alpha = _check_alpha(alpha)
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    n, c = s.shape
    full_ap = _average_precision_columns(s, y)
    point = float(np.nanmean(full_ap)) if np.isfinite(full_ap).any() else math.nan

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_boot), n))
    boot = np.empty(int(n_boot), dtype=np.float64)
    chunk = max(1, _BOOT_CELLS // max(n * c, 1))
    for start in range(0, int(n_boot), chunk):
        rows = idx[start : start + chunk]  # [b, N]
        b = len(rows)
        # Put the b resamples side by side as b * C columns of one [N, b * C] problem: one sort for all.
        s_b = s[rows].transpose(1, 0, 2).reshape(n, b * c)
        y_b = y[rows].transpose(1, 0, 2).reshape(n, b * c)
        ap = _average_precision_columns(s_b, y_b).reshape(b, c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN rows are handled below
            boot[start : start + b] = np.nanmean(ap, axis=1)
    ok = np.isfinite(boot)
    if not ok.all():
        warnings.warn(
            f"{int((~ok).sum())} of {n_boot} bootstrap resamples have no positive label at all; they are "
            "dropped from the interval.",
            stacklevel=2,
        )
    if not ok.any():
        return point, math.nan, math.nan
    low, high = np.quantile(boot[ok], [alpha / 2.0, 1.0 - alpha / 2.0])
    return point, float(low), float(high)


def t_quantile(df: int, alpha: float = 0.05) -> float:
    """Two-sided Student-t critical value ``t_{1 - alpha/2, df}`` (4.303 for df = 2, alpha = 0.05)."""
    return float(_sps.t.ppf(1.0 - _check_alpha(alpha) / 2.0, df))


def _as_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one value (one per seed)")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values: {arr.tolist()}")
    return arr


def mean_sd(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of per-seed values.

    Returns:
        ``(mean, sd)``; ``sd`` is NaN for a single value (no spread can be estimated from one seed).
    """
    arr = _as_1d(values, "values")
    sd = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return float(arr.mean()), sd


def paired_difference_ci(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, alpha: float = 0.05
) -> dict[str, float]:
    """Student-t interval of the mean paired difference ``a_i - b_i`` (e.g. KD minus baseline, same seed i).

    Pairing by seed removes the part of the run-to-run variance the two methods share (same data order and
    initialisation), so this interval is narrower than comparing two unpaired means.

    Args:
        a: [n] metric of method A per seed.
        b: [n] metric of method B for the same seeds, in the same order.
        alpha: 1 - confidence level (0.05: a 95 % interval).

    Returns:
        ``{"mean", "sd", "low", "high", "n"}``: mean and sample sd (``ddof=1``) of the differences and
        ``mean ∓ t_{1-alpha/2, n-1} * sd / sqrt(n)``. With ``n = 1`` ``sd``, ``low`` and ``high`` are NaN:
        one seed gives a difference but no interval.

    Raises:
        ValueError: when ``a`` and ``b`` differ in length, are empty or hold NaN.
    """
    alpha = _check_alpha(alpha)
    x = _as_1d(a, "a")
    z = _as_1d(b, "b")
    if x.shape != z.shape:
        raise ValueError(f"a and b must hold one value per seed each; got {x.size} and {z.size} values")
    d = x - z
    n = int(d.size)
    mean, sd = mean_sd(d)
    if n < 2:
        return {"mean": mean, "sd": math.nan, "low": math.nan, "high": math.nan, "n": n}
    half = t_quantile(n - 1, alpha) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "n": n}
