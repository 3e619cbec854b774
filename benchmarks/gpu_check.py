"""GPU check: a few steps of every pipeline stage with the paper's models at their real sizes.

Synthetic random images, boxes and targets already on the device (no data loading, no dataset needed),
so the numbers are ceilings for the real pipeline. Stages, as the workflow runs them:

| stage | what | precision |
|---|---|---|
| teacher train | WSDDN-VGG16 @672, 500 RoIs, ``wsddn_bce``, SGD; batch 32 = 8 x 4 accumulated | bf16 autocast |
| teacher cache | WSDDN forward @672, 500 RoIs; scores, soft targets, top-16 fc7 to the host | fp32 |
| stage 1 | student VGG16 @224: RoI fc7 of the top-16 RoIs vs teacher fc7 (``feature_distillation_loss``) | bf16 |
| stage 2 | student VGG16 @224: ``sigmoid_bce`` + ``prediction_distillation_loss`` | bf16 autocast |
| evaluation | student forward @224 + sigmoid | fp32 |

Prints a Markdown table (stage, batch, img/s, peak memory, loss finite) and exits 1 when a loss or output is
not finite, 2 when the requested device is missing. ``--small`` uses tiny models and sizes so that the
script runs on a CPU in seconds (a smoke test of the script itself, not a measurement).

Usage: ``bash benchmarks/gpu_check.sh`` (GPU) or ``python benchmarks/gpu_check.py --small --device cpu``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from kdwsd.boxes import map_boxes_floor
from kdwsd.device import DeviceUnavailableError, autocast, resolve_device
from kdwsd.distill.live import LiveTeacher
from kdwsd.losses import feature_distillation_loss, prediction_distillation_loss, sigmoid_bce, wsddn_bce
from kdwsd.models.student import StudentClassifier
from kdwsd.models.teacher import WSDDN, wsddn_scores

STAGES = ("teacher train", "teacher cache", "stage 1 (live teacher)", "stage 1 (cached)", "stage 2", "evaluation")


@dataclass
class Sizes:
    """Model and input sizes of one check."""

    backbone: str
    widths: tuple[int, ...] | None
    hidden: int
    classes: int
    teacher_size: int
    rois: int
    student_size: int
    top_k: int
    batch: int
    micro_batch: int


PAPER = Sizes("vgg16", None, 4096, 80, 672, 500, 224, 16, 32, 8)
SMALL = Sizes("small", (8, 16, 16, 24), 64, 80, 128, 20, 64, 4, 4, 2)


@dataclass
class Row:
    stage: str
    batch: str
    images_per_s: float
    peak_mib: float | None
    finite: bool
    seconds: float


def random_boxes(n: int, r: int, frame: int, gen: torch.Generator) -> torch.Tensor:
    """float[n, r, 4] inclusive-pixel boxes inside a ``frame``² image, sides >= frame/16."""
    lo = max(frame // 16, 2)
    x1 = torch.randint(0, frame - lo, (n, r), generator=gen).float()
    y1 = torch.randint(0, frame - lo, (n, r), generator=gen).float()
    w = lo + (frame - lo - x1) * torch.rand(n, r, generator=gen)
    h = lo + (frame - lo - y1) * torch.rand(n, r, generator=gen)
    return torch.stack([x1, y1, (x1 + w).clamp(max=frame - 1), (y1 + h).clamp(max=frame - 1)], dim=2).floor()


def synthetic_batch(n: int, s: Sizes, device: torch.device, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A teacher-frame batch: image float[n, 3, T, T], boxes float[n, R, 4], box_scores float[n, R],
    mask bool[n, R], labels float[n, K], soft_targets float[n, K], teacher_fc7 float[n, top_k, hidden]."""
    t = s.teacher_size
    batch = {
        "image": torch.randn(n, 3, t, t, generator=gen),
        "boxes": random_boxes(n, s.rois, t, gen),
        "box_scores": torch.rand(n, s.rois, generator=gen),
        "mask": torch.ones(n, s.rois, dtype=torch.bool),
        "labels": (torch.rand(n, s.classes, generator=gen) < 0.05).float(),
        "soft_targets": torch.rand(n, s.classes, generator=gen),
        "teacher_fc7": torch.relu(torch.randn(n, s.top_k, s.hidden, generator=gen)),
    }
    return {k: v.to(device) for k, v in batch.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_stage(
    name: str,
    batch_label: str,
    images_per_step: int,
    step: Callable[[], list[torch.Tensor]],
    *,
    warmup: int,
    steps: int,
    device: torch.device,
) -> Row:
    """Run ``warmup`` untimed and ``steps`` timed calls of ``step`` (which returns the tensors whose
    finiteness is checked: losses, or outputs for inference stages)."""
    finite = True
    for _ in range(warmup):
        finite &= all(bool(torch.isfinite(x).all()) for x in step())
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    checks: list[torch.Tensor] = []
    for _ in range(steps):
        checks += [x.detach() for x in step()]
    _sync(device)
    seconds = time.perf_counter() - t0
    finite &= all(bool(torch.isfinite(x).all()) for x in checks)  # checked after timing: no sync inside
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return Row(name, batch_label, images_per_step * steps / seconds, peak, finite, seconds)


def run_check(s: Sizes, device: torch.device, *, warmup: int, steps: int, seed: int = 0) -> list[Row]:
    """Every stage on synthetic data; returns one :class:`Row` per stage (in :data:`STAGES` order)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    full = synthetic_batch(s.batch, s, device, gen)
    rows = _teacher_stages(s, device, full, gen, warmup=warmup, steps=steps)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the teacher is gone: its cached blocks would inflate the student's peak
    return rows + _student_stages(s, device, full, warmup=warmup, steps=steps)


def _teacher_stages(
    s: Sizes, device: torch.device, full: dict[str, torch.Tensor], gen: torch.Generator, *, warmup: int, steps: int
) -> list[Row]:
    """teacher train (bf16 autocast, gradient accumulation to the full batch) and teacher cache (fp32)."""
    teacher = WSDDN(s.classes, backbone=s.backbone, pretrained="none", widths=s.widths, hidden=s.hidden).to(device)
    opt = torch.optim.SGD(teacher.parameters(), lr=5e-5, momentum=0.9, weight_decay=5e-4)
    accum = math.ceil(s.batch / s.micro_batch)
    micro = [synthetic_batch(s.micro_batch, s, device, gen) for _ in range(min(accum, 2))]

    def train_step() -> list[torch.Tensor]:
        teacher.train()
        losses = []
        for i in range(accum):
            b = micro[i % len(micro)]
            with autocast(device, "bf16"):
                out = teacher(b["image"], b["boxes"], b["box_scores"], b["mask"])
                _, scores = wsddn_scores(out.cls_logits, out.det_logits, out.mask)
                loss = wsddn_bce(scores, b["labels"])
            (loss / accum).backward()
            losses.append(loss.detach())
        opt.step()
        opt.zero_grad(set_to_none=True)
        return losses

    @torch.no_grad()
    def cache_step() -> list[torch.Tensor]:
        # what the cache stores: scores, soft targets (t = 0.5) and the top-k fc7 by objectness, on the host
        teacher.eval()
        out = teacher(full["image"], full["boxes"], full["box_scores"], full["mask"])
        region, scores = wsddn_scores(out.cls_logits, out.det_logits, out.mask)
        _, soft = wsddn_scores(out.cls_logits, out.det_logits, out.mask, 0.5, 0.5)
        top = region.sum(2).topk(s.top_k, dim=1).indices
        fc7 = torch.gather(out.fc7, 1, top[..., None].expand(-1, -1, out.fc7.shape[2]))
        return [scores.cpu(), soft.cpu(), fc7.half().cpu().float()]

    rows = [
        timed_stage("teacher train", f"{s.micro_batch} x {accum}", s.micro_batch * accum, train_step,
                    warmup=warmup, steps=steps, device=device),
        timed_stage("teacher cache", str(s.batch), s.batch, cache_step, warmup=warmup, steps=steps, device=device),
    ]  # fmt: skip
    opt.zero_grad(set_to_none=True)  # the teacher's gradients are not needed by the frozen live teacher
    return [*rows, _live_stage1(s, device, teacher, micro, accum, warmup=warmup, steps=steps)]


def _live_stage1(
    s: Sizes, device: torch.device, teacher: WSDDN, micro: list[dict[str, torch.Tensor]], accum: int, *,
    warmup: int, steps: int,
) -> Row:
    """Stage 1 as the paper configs run it (``student.stage1.teacher: live``): the frozen fp32 teacher computes
    the fc7 targets of all RoIs at the stage-1 factor (1, 0) in the loop; the student (bf16) regresses them,
    ``accum`` micro-batches per optimiser step."""
    live = LiveTeacher(teacher, (1.0, 0.0), "fp32")
    student = StudentClassifier(s.classes, backbone=s.backbone, pretrained="none", widths=s.widths,
                                hidden=s.hidden).to(device)  # fmt: skip
    opt = torch.optim.SGD(student.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)

    def step() -> list[torch.Tensor]:
        student.train()
        losses = []
        for i in range(accum):
            b = micro[i % len(micro)]
            target = live(b["image"], b["boxes"], b["box_scores"], b["mask"]).reshape(-1, s.hidden)
            images = F.interpolate(b["image"], size=(s.student_size,) * 2, mode="bilinear", align_corners=True)
            boxes = map_boxes_floor(b["boxes"], s.teacher_size, s.student_size)
            with autocast(device, "bf16"):
                fc7, flat = student.roi_features(images, boxes, b["box_scores"], b["mask"])
                loss = feature_distillation_loss(fc7, target[flat]) / accum
            loss.backward()
            losses.append(loss.detach())
        opt.step()
        opt.zero_grad(set_to_none=True)
        return losses

    return timed_stage("stage 1 (live teacher)", f"{s.micro_batch} x {accum}, {s.rois} RoIs", s.micro_batch * accum,
                       step, warmup=warmup, steps=steps, device=device)  # fmt: skip


def _student_stages(
    s: Sizes, device: torch.device, full: dict[str, torch.Tensor], *, warmup: int, steps: int
) -> list[Row]:
    """stage 1 (RoI features vs teacher fc7), stage 2 (BCE + prediction KD), evaluation (fp32 inference)."""
    student = StudentClassifier(s.classes, backbone=s.backbone, pretrained="none", widths=s.widths,
                                hidden=s.hidden).to(device)  # fmt: skip
    opt = torch.optim.SGD(student.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)
    images = F.interpolate(full["image"], size=(s.student_size,) * 2, mode="bilinear", align_corners=True)
    top_boxes = map_boxes_floor(full["boxes"][:, : s.top_k], s.teacher_size, s.student_size)
    top_scores, top_mask = full["box_scores"][:, : s.top_k], full["mask"][:, : s.top_k]
    target = full["teacher_fc7"].reshape(-1, s.hidden)

    def stage1_step() -> list[torch.Tensor]:
        student.train()
        with autocast(device, "bf16"):
            fc7, flat = student.roi_features(images, top_boxes, top_scores, top_mask)
            loss = feature_distillation_loss(fc7, target[flat])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return [loss.detach()]

    def stage2_step() -> list[torch.Tensor]:
        student.train()
        with autocast(device, "bf16"):
            z = student(images)
            label = sigmoid_bce(z, full["labels"])
            kd = prediction_distillation_loss(z, student.tau, full["soft_targets"])
        (label + kd).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return [label.detach(), kd.detach()]

    @torch.no_grad()
    def eval_step() -> list[torch.Tensor]:
        student.eval()
        return [torch.sigmoid(student(images)).cpu()]

    n = str(s.batch)
    return [
        timed_stage("stage 1 (cached)", n, s.batch, stage1_step, warmup=warmup, steps=steps, device=device),
        timed_stage("stage 2", n, s.batch, stage2_step, warmup=warmup, steps=steps, device=device),
        timed_stage("evaluation", n, s.batch, eval_step, warmup=warmup, steps=steps, device=device),
    ]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| stage | batch | img/s | peak memory (GiB) | loss finite |", "|---|---|---|---|---|"]
    for r in rows:
        peak = "n/a (cpu)" if r.peak_mib is None else f"{r.peak_mib / 1024:.1f}"
        rate = f"{r.images_per_s:.0f}" if r.images_per_s >= 100 else f"{r.images_per_s:.3g}"
        lines.append(f"| {r.stage} | {r.batch} | {rate} | {peak} | {'yes' if r.finite else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu | auto (default: cuda, fail if absent)")
    ap.add_argument("--small", action="store_true", help="tiny models and sizes (a CPU smoke test)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per stage (default 10; --small: 1)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per stage (default 3; --small: 1)")
    ap.add_argument("--batch", type=int, default=None, help="images per step (default 32; --small: 4)")
    ap.add_argument("--micro-batch", type=int, default=None, help="teacher micro-batch (default 8; --small: 2)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    try:
        device = resolve_device(args.device, where="gpu_check --device")
    except DeviceUnavailableError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    sizes = SMALL if args.small else PAPER
    batch = args.batch or sizes.batch
    sizes = Sizes(**{**asdict(sizes), "batch": batch, "micro_batch": min(args.micro_batch or sizes.micro_batch, batch)})
    steps = args.steps or (1 if args.small else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.small else 3)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# kdwsd GPU check: {name}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"{'small sizes' if args.small else 'paper sizes'}: {asdict(sizes)}, {warmup} warm-up + {steps} timed "
          f"steps per stage, synthetic data on the device", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    rows = run_check(sizes, device, warmup=warmup, steps=steps)
    print(markdown_table(rows))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "sizes": asdict(sizes),
                                         "rows": [asdict(r) for r in rows]}, indent=2) + "\n")  # fmt: skip
    return 0 if all(r.finite for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
