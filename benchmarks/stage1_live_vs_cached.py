"""Cost of a KD stage-1 training step with a live teacher vs targets read from the cache (CPU, small size).

A step = student forward on its RoIs + feature-KD loss + backward + SGD update; the live variant adds one
frozen teacher forward (no backward) per step. Data loading is excluded in both (the cached variant's
targets are already in memory; reading them from disk would add I/O).

    PYTHONPATH=src python benchmarks/stage1_live_vs_cached.py [--frame 160 --rois 100 --batch 16 ...]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from kdwsd.distill.live import LiveTeacher, with_live_targets
from kdwsd.models.student import StudentClassifier
from kdwsd.models.teacher import WSDDN
from kdwsd.train.student import stage1_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frame", type=int, default=160, help="teacher frame side")
    ap.add_argument("--size", type=int, default=56, help="student side")
    ap.add_argument("--rois", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--roi-size", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    arch = {"backbone": "small", "hidden": args.hidden, "roi_size": args.roi_size, "dropout": 0.5}
    teacher = WSDDN(20, box_score_scale=10.0, box_score_bias=1.0, **arch)
    student = StudentClassifier(20, **arch).train()
    b, r, f = args.batch, args.rois, args.frame
    xy = torch.rand(b, r, 2) * (f * 0.6)
    batch = {
        "image": torch.randn(b, 3, f, f), "boxes": torch.cat([xy, xy + torch.rand(b, r, 2) * f * 0.4], 2),
        "box_scores": torch.rand(b, r), "mask": torch.ones(b, r, dtype=torch.bool),
        "teacher_fc7": torch.rand(b, r, args.hidden),
    }  # fmt: skip
    opt = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
    cached = stage1_step(args.size, f)
    live = with_live_targets(cached, LiveTeacher(teacher, box_score=(1.0, 0.0)))

    def seconds_per_step(step: Callable) -> float:
        times = []
        for _ in range(args.steps + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            loss, _ = step(student, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        return sorted(times[1:])[len(times[1:]) // 2]  # median

    t_cached, t_live = seconds_per_step(cached), seconds_per_step(live)
    print(f"stage-1 step, batch {b}, frame {f} -> student {args.size}, {r} RoIs, hidden {args.hidden}, "
          f"roi_size {args.roi_size}, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"cached targets: {t_cached * 1000:.1f} ms/step")
    print(f"live teacher:   {t_live * 1000:.1f} ms/step")
    print(f"ratio live / cached: {t_live / t_cached:.2f}")


if __name__ == "__main__":
    main()
