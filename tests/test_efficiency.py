"""The efficiency stage's timing: the median of repeated passes and their spread, on a fake clock."""

from __future__ import annotations

import pytest
import torch

import kdwsd.efficiency as efficiency


def test_images_per_second_is_the_median_of_the_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    # seconds each call takes: the warm-up, then 5 passes of 2 batches (one pass is slow: another job woke up)
    durations = iter([9.0, 0.5, 0.5, 1.0, 1.0, 0.25, 0.25, 2.0, 2.0, 0.5, 0.5])

    def fn(batch: dict[str, torch.Tensor]) -> None:
        clock[0] += next(durations)

    monkeypatch.setattr(efficiency.time, "perf_counter", lambda: clock[0])
    batches = [{"image": torch.zeros(4, 3, 2, 2)}] * 2
    median, low, high = efficiency.images_per_second(fn, batches, torch.device("cpu"), repeats=5)
    # passes of 8 images in 1, 2, 0.5, 4 and 1 s: 8, 4, 16, 2, 8 images/s
    assert (median, low, high) == (8.0, 2.0, 16.0)
    with pytest.raises(StopIteration):
        next(durations)  # every pass ran, the warm-up was not timed
