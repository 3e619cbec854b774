"""Parameters, multiply-accumulates and measured throughput of the teacher and the student.

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one image (FLOPs / 2: convolutions and
matrix products; RoI pooling, softmaxes and element-wise ops are not counted). Images/s is measured on the
configured device over a few batches after a warm-up, as the median of ``repeats`` passes over them (one pass
of the default's 3 x 8 images takes ~10 ms for the student: single passes of the same network varied by +-12 %
on the 2-core CPU); the spread is recorded too. The teacher's number also includes the proposal time per
image measured by the proposals stage, because the teacher cannot run without them.
"""

from __future__ import annotations

import csv
import statistics
import time
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kdwsd.data.dataset import MultiLabelImages, ordered_loader
from kdwsd.data.prepared import load_split
from kdwsd.device import autocast, resolve_device
from kdwsd.models.io import load_student, load_teacher
from kdwsd.models.student import student_input
from kdwsd.proposals.store import ProposalStore

__all__ = ["count_macs", "count_parameters", "images_per_second", "measure_efficiency"]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (FLOPs / 2 as counted by torch's FlopCounterMode)."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(*inputs)
    return counter.get_total_flops() // 2


def images_per_second(fn: Any, batches: list[Any], device: torch.device, repeats: int = 7
                      ) -> tuple[float, float, float]:  # fmt: skip
    """Images/s of ``fn`` over ``batches`` (dicts whose ``image`` is float[B, ...]): (median, lowest, highest) of
    ``repeats`` passes after a warm-up call."""
    fn(batches[0])  # warm-up (cuDNN autotune, allocator)
    rates = []
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        n = 0
        for b in batches:
            fn(b)
            n += len(b["image"])
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), min(rates), max(rates)


def _proposal_seconds_per_image(qc_csv: Path | str) -> float | None:
    with open(qc_csv) as f:
        rows = list(csv.DictReader(f))
    rates = [float(r["images_per_s"]) for r in rows if r.get("images_per_s")]
    return 1.0 / (sum(rates) / len(rates)) if rates else None


@torch.no_grad()
def measure_efficiency(
    teacher_path: Path | str, student_path: Path | str, qc_csv: Path | str, data_dir: Path | str,
    split_name: str, proposal_shards: list[str], frame_size: int, student_size: int, rois: int, norm: str,
    batches: int = 3, batch_size: int = 8, device: str = "auto", precision: str = "bf16", repeats: int = 7,
) -> dict[str, Any]:  # fmt: skip
    """Return the ``efficiency.json`` dictionary (see the module docstring for what is measured).

    ``precision``: the autocast of the timed forward passes (``bf16`` as before; CUDA only). ``repeats``: timed
    passes over the ``batches``; images/s is their median (``*_range``: the lowest and highest pass).
    """
    dev = resolve_device(str(device), where="device")
    split = load_split(data_dir, split_name)
    teacher = load_teacher(teacher_path).to(dev)
    student = load_student(student_path).to(dev)
    t_ds = MultiLabelImages(split, norm, ProposalStore(proposal_shards), rois=rois)
    s_ds = MultiLabelImages(split, norm)
    t_batches = list(islice(ordered_loader(t_ds, frame_size, False, batch_size), batches))
    s_batches = list(islice(ordered_loader(s_ds, frame_size, False, batch_size), batches))
    to_dev = lambda b: {k: v.to(dev) for k, v in b.items()}  # noqa: E731
    t_batches, s_batches = [to_dev(b) for b in t_batches], [to_dev(b) for b in s_batches]

    def run_teacher(b: dict[str, torch.Tensor]) -> None:
        with autocast(dev, precision):
            teacher(b["image"], b["boxes"], b["box_scores"], b["mask"])

    def run_student(b: dict[str, torch.Tensor]) -> None:
        with autocast(dev, precision):
            student(student_input(b["image"], student_size))

    one_t = {k: v[:1] for k, v in t_batches[0].items()}
    teacher_macs = count_macs(teacher, one_t["image"], one_t["boxes"], one_t["box_scores"], one_t["mask"])
    student_macs = count_macs(student, student_input(s_batches[0]["image"][:1], student_size))
    (t_rate, *t_range), (s_rate, *s_range) = (images_per_second(run_teacher, t_batches, dev, repeats),
                                              images_per_second(run_student, s_batches, dev, repeats))  # fmt: skip
    prop_s = _proposal_seconds_per_image(qc_csv)
    with_props = 1.0 / (1.0 / t_rate + prop_s) if prop_s else None
    return {
        "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "threads": torch.get_num_threads(),
        "teacher": {
            "parameters": count_parameters(teacher), "input_size": frame_size,
            "rois_per_image": int(t_batches[0]["mask"][0].sum()), "macs_per_image": teacher_macs,
            "images_per_s_network": t_rate, "images_per_s_network_range": t_range, "proposal_s_per_image": prop_s,
            "images_per_s_with_proposals": with_props,
        },
        "student": {
            "parameters": count_parameters(student), "input_size": student_size,
            "macs_per_image": student_macs, "images_per_s": s_rate, "images_per_s_range": s_range,
            "batch_size": batch_size, "timed_passes": repeats,
        },
        "ratios": {
            "macs_teacher_over_student": teacher_macs / max(student_macs, 1),
            "speedup_student_over_teacher_with_proposals": (s_rate / with_props) if with_props else None,
        },
    }  # fmt: skip
