"""Tests of kdwsd.stats against hand-computed values and naive reference loops."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from kdwsd.stats import bootstrap_map_ci, mean_sd, paired_difference_ci, t_quantile


def _naive_boot(scores: np.ndarray, labels: np.ndarray, n_boot: int, alpha: float, seed: int) -> tuple:
    """One resample at a time with scikit-learn's AP, the same RNG draws as the implementation."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(scores), size=(n_boot, len(scores)))
    maps = []
    for rows in idx:
        s, y = scores[rows], labels[rows]
        aps = [average_precision_score(y[:, k], s[:, k]) for k in range(y.shape[1]) if y[:, k].any()]
        if aps:
            maps.append(np.mean(aps))
    low, high = np.quantile(maps, [alpha / 2, 1 - alpha / 2])
    return low, high


def test_bootstrap_matches_naive_loop() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random((40, 5)) < 0.2
    labels[0, 4] = True
    labels[1:, 4] = False  # a rare class: absent from many resamples, must be skipped there
    scores = np.round(labels * 0.3 + rng.random((40, 5)), 1)  # rounding makes ties
    m, low, high = bootstrap_map_ci(scores, labels, n_boot=200, alpha=0.1, seed=7)
    ref_low, ref_high = _naive_boot(scores, labels, 200, 0.1, 7)
    full = np.mean([average_precision_score(labels[:, k], scores[:, k]) for k in range(5)])
    assert m == pytest.approx(full, abs=1e-12)
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)
    assert low < m < high


def test_bootstrap_perfect_ranking_and_determinism() -> None:
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = labels + 0.5  # every positive above every negative: AP 1 in every resample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample of image 3 only has no positive
        assert bootstrap_map_ci(scores, labels, n_boot=50) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(0)
    s, y = rng.random((30, 3)), rng.random((30, 3)) < 0.5
    assert bootstrap_map_ci(s, y, n_boot=100, seed=1) == bootstrap_map_ci(s, y, n_boot=100, seed=1)
    assert bootstrap_map_ci(s, y, n_boot=100, seed=1) != bootstrap_map_ci(s, y, n_boot=100, seed=2)


def test_bootstrap_enumerated_two_images() -> None:
    # N = 2, one class: image 0 positive (score 0.2), image 1 negative (score 0.9). The resamples are
    # {0,0}: AP 1, {1,1}: no positive (dropped), {0,1} or {1,0}: AP 1/2. With many resamples the 2.5 %
    # quantile is 0.5 and the 97.5 % quantile is 1.
    scores = np.array([[0.2], [0.9]])
    labels = np.array([[1], [0]])
    with pytest.warns(UserWarning, match="no positive label"):
        m, low, high = bootstrap_map_ci(scores, labels, n_boot=400)
    assert (m, low, high) == (0.5, 0.5, 1.0)


def test_bootstrap_interval_brackets_the_estimate_400x10() -> None:
    """The default's test size (speed: benchmarks/metrics_speed.py)."""
    rng = np.random.default_rng(0)
    labels = rng.random((400, 10)) < 0.1
    scores = rng.random((400, 10)) + 0.5 * labels
    m, low, high = bootstrap_map_ci(scores, labels, n_boot=1000)
    assert low < m < high and high - low < 0.2


def test_bootstrap_validation() -> None:
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_map_ci(np.zeros((3, 2)), np.ones((3, 2)), alpha=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_map_ci(np.zeros((3, 2)), np.ones((3, 2)), n_boot=0)
    with pytest.raises(ValueError, match="shape mismatch"):
        bootstrap_map_ci(np.zeros((3, 2)), np.ones((3, 3)))


def test_t_quantile_table_values() -> None:
    assert t_quantile(2) == pytest.approx(4.303, abs=5e-4)  # n = 3 seeds
    assert t_quantile(4) == pytest.approx(2.776, abs=5e-4)
    assert t_quantile(9, alpha=0.1) == pytest.approx(1.833, abs=5e-4)


def test_paired_difference_hand_computed() -> None:
    # differences 0.03, 0.05, 0.01: mean 0.03, sd 0.02, half-width 4.303 * 0.02 / sqrt(3) = 0.049687
    out = paired_difference_ci([0.73, 0.75, 0.72], [0.70, 0.70, 0.71])
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(0.03)
    assert out["sd"] == pytest.approx(0.02)
    assert out["low"] == pytest.approx(0.03 - 0.049687, abs=1e-5)
    assert out["high"] == pytest.approx(0.03 + 0.049687, abs=1e-5)


def test_paired_difference_single_seed_and_errors() -> None:
    out = paired_difference_ci([0.8], [0.7])
    assert out["mean"] == pytest.approx(0.1) and out["n"] == 1
    assert math.isnan(out["sd"]) and math.isnan(out["low"]) and math.isnan(out["high"])
    with pytest.raises(ValueError, match="one value per seed"):
        paired_difference_ci([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        paired_difference_ci([], [])
    with pytest.raises(ValueError, match="NaN"):
        paired_difference_ci([1.0, float("nan")], [1.0, 2.0])


def test_mean_sd() -> None:
    assert mean_sd([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, math.sqrt(5 / 3)))
    m, sd = mean_sd([0.5])
    assert m == 0.5 and math.isnan(sd)
