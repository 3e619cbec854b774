"""Speed of the metric and interval code at the sizes the pipeline meets (prints numbers; not a test).

    python benchmarks/metrics_speed.py
"""

import time

import numpy as np

from kdwsd.metrics import multilabel_metrics
from kdwsd.stats import bootstrap_map_ci


def timed(label: str, fn) -> None:
    t0 = time.perf_counter()
    fn()
    print(f"{label}: {time.perf_counter() - t0:.2f} s")


rng = np.random.default_rng(0)
y = rng.random((40_000, 80)) < 0.03
y[0] = True
s = np.round(rng.random((40_000, 80)).astype(np.float32), 3)
timed("multilabel_metrics, COCO test size 40,000 x 80 with ties", lambda: multilabel_metrics(s, y))
labels = rng.random((400, 10)) < 0.1
scores = rng.random((400, 10)) + 0.5 * labels
timed("bootstrap_map_ci, default test size 400 x 10, 1,000 resamples", lambda: bootstrap_map_ci(scores, labels))
timed("bootstrap_map_ci, 5,000 x 80, 200 resamples",
      lambda: bootstrap_map_ci(rng.random((5000, 80)), rng.random((5000, 80)) < 0.05, n_boot=200))
