"""Stages of ``workflow/rules/evaluate.smk``: metrics per model, teacher CorLoc, efficiency."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kdwsd.stages.dataset import checked_split, prepared_dir

__all__ = ["efficiency", "evaluate_student", "evaluate_teacher"]

log = logging.getLogger("kdwsd")


def evaluate_student(
    *, model: str, data: list[str], metrics: str, per_class: str, scores: str, split: str, frame: int,
    size: int, evaluation: dict[str, Any], device: str, student_batch_size: int = 32,
) -> None:  # fmt: skip
    """Score a student on ``split`` (warped to ``frame``, resized in-network to ``size``, no flip, fp32) and
    write its ``metrics`` (JSON), ``per_class`` table (CSV) and raw ``scores`` (npy). The per-class training
    counts come from the annotation (all training images, also under ``dataset.on_bad_image: skip``)."""
    from kdwsd.data.prepared import load_split
    from kdwsd.device import GPU_SLOT_DIR, job_device
    from kdwsd.evaluate import evaluate_scores, predict_student, write_evaluation
    from kdwsd.modelfile import load_model_file

    device = str(job_device(device, where="config key device", slot_dir=GPU_SLOT_DIR))
    data_dir = prepared_dir(data)
    split_data = load_split(data_dir, split)
    norm = load_model_file(model)["norm"]
    raw = predict_student(model, split_data, norm, frame, size, device, student_batch_size)
    result, table = evaluate_scores(raw, split_data, load_split(data_dir, "train").labels, evaluation)
    write_evaluation(result, table, raw, metrics, per_class, scores)


def evaluate_teacher(
    *, outputs: str, cache: str, data: list[str], metrics: str, per_class: str, scores: str, split: str,
    evaluation: dict[str, Any], on_bad_image: str = "error",
) -> None:  # fmt: skip
    """Teacher metrics from its cached ``split`` outputs, plus CorLoc on train (and ``split``) where boxes
    exist."""
    from kdwsd.evaluate import evaluate_teacher as teacher_metrics
    from kdwsd.evaluate import write_evaluation

    train = checked_split(data, "train", on_bad_image, metrics)
    result, table, raw = teacher_metrics(outputs, cache, prepared_dir(data), split, evaluation, train=train)
    write_evaluation(result, table, raw, metrics, per_class, scores)


def efficiency(
    *, teacher: str, student: str, qc: str, data: list[str], proposals: list[str], out: str, split: str,
    frame: int, size: int, rois: int, norm: str, batches: int, precision: str, device: str,
) -> None:  # fmt: skip
    """Parameters, MACs and measured images/s of the teacher (at ``frame`` with ``rois`` proposals, plus the
    proposal time from ``qc``) and the student (at ``size``) -> ``out`` (JSON)."""
    from kdwsd.device import GPU_SLOT_DIR, job_device
    from kdwsd.efficiency import measure_efficiency

    device = str(job_device(device, where="config key device", slot_dir=GPU_SLOT_DIR))
    result = measure_efficiency(teacher, student, qc, prepared_dir(data), split, proposals, frame, size, rois, norm,
                                batches, device=device, precision=precision)  # fmt: skip
    log.info("efficiency: %s", result)
    Path(out).write_text(json.dumps(result, indent=2))
