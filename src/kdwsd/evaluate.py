"""Scoring a model on a prepared split: student predictions, metrics, per-class table, teacher CorLoc."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from kdwsd.data.dataset import MultiLabelImages, ordered_loader
from kdwsd.data.prepared import Split, load_split
from kdwsd.device import resolve_device
from kdwsd.distill.cache import open_teacher_cache
from kdwsd.metrics import corloc, detection_ap, multilabel_metrics, per_class_table
from kdwsd.models.io import load_student
from kdwsd.models.student import student_input

__all__ = ["evaluate_scores", "evaluate_teacher", "predict_student", "student_scores", "write_evaluation"]


@torch.no_grad()
def predict_student(
    model_path: Path | str, split: Split, norm: str, frame_size: int, size: int, device: str = "auto",
    batch_size: int = 32,
) -> np.ndarray:  # fmt: skip
    """float32[N, C] sigmoid scores of a student on a split (no flip), computed in fp32."""
    dev = resolve_device(str(device), where="device")
    return student_scores(load_student(model_path).to(dev), split, norm, frame_size, size, dev, batch_size)


@torch.no_grad()
def student_scores(
    model: torch.nn.Module, split: Split, norm: str, frame_size: int, size: int, device: torch.device,
    batch_size: int = 32, progress: bool = True, dataset: MultiLabelImages | None = None,
) -> np.ndarray:  # fmt: skip
    """float32[N, C] sigmoid scores of an eval-mode student (in memory) on a split: warp to ``frame_size``,
    resize in-network to ``size``, no flip, fp32. The model's train/eval mode is restored afterwards.
    ``dataset``: the split's :class:`MultiLabelImages` to reuse (its frame cache), instead of a new one."""
    was_training = model.training
    model.eval()
    dataset = dataset if dataset is not None else MultiLabelImages(split, norm)
    scores = np.zeros((len(split), len(split.classes)), np.float32)
    for batch in tqdm(ordered_loader(dataset, frame_size, False, batch_size), desc="predict", disable=not progress):
        z = model(student_input(batch["image"].to(device), size))
        scores[batch["index"].numpy()] = torch.sigmoid(z.float()).cpu().numpy()
    model.train(was_training)
    return scores


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def evaluate_scores(
    scores: np.ndarray, split: Split, train_labels: np.ndarray, cfg: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics dictionary and per-class table (``index, name, n_train, n_test, AP, P, R, F1``)."""
    metrics = multilabel_metrics(scores, split.labels, cfg["threshold"], cfg["top_k"], cfg["top_k_mode"])
    table = per_class_table(scores, split.labels, cfg["threshold"]).reset_index()
    table.insert(1, "name", split.classes)
    table.insert(2, "n_train", train_labels.sum(0).astype(int))
    table.insert(3, "n_test", split.labels.sum(0).astype(int))
    metrics["split"] = split.name
    metrics["classes"] = split.classes
    return metrics, table


def write_evaluation(
    metrics: dict[str, Any], table: pd.DataFrame, scores: np.ndarray, out_metrics: Path | str,
    out_table: Path | str, out_scores: Path | str,
) -> None:  # fmt: skip
    """Write the three evaluation outputs (JSON with NaN as null, CSV, npy) atomically."""
    for path in (out_metrics, out_table, out_scores):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(out_metrics) + ".tmp")
    tmp.write_text(json.dumps(_jsonable(metrics), indent=2))
    os.replace(tmp, out_metrics)
    table.to_csv(out_table, index=False, float_format="%.6f")
    np.save(out_scores, scores.astype(np.float32))


def _gt_boxes(split: Split) -> list[list[tuple[int, list[float]]]]:
    return [[(k, box.tolist()) for k, box in boxes] for boxes in split.gt_boxes]


def evaluate_teacher(
    outputs: Path | str, cache_dir: Path | str, data_dir: Path | str, split_name: str, cfg: dict[str, Any],
    train: Split | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray]:
    """Teacher metrics from its cached evaluation outputs, plus CorLoc where boxes exist.

    ``CorLoc`` is the standard WSOD number on the training set (the detector's own images, image labels
    known); ``CorLoc_<split>`` is the same on the evaluation split; ``detection_mAP`` (with per-class
    ``detection_AP``) is PASCAL VOC07 detection AP at IoU ``cfg["corloc_iou"]`` on the evaluation split, from
    the teacher's detections after per-class NMS (:func:`kdwsd.metrics.detection_ap`). ``train``: the
    training split the cache was written for (default: all of it; fewer under ``dataset.on_bad_image: skip``).
    """
    split = load_split(data_dir, split_name)
    train = load_split(data_dir, "train") if train is None else train
    with np.load(outputs, allow_pickle=False) as f:
        if not np.array_equal(f["image_ids"], split.image_ids):
            raise ValueError(f"{outputs}: image ids do not match split '{split_name}' of {data_dir}")
        scores, class_boxes = f["scores"], f["class_boxes"]
        dets = {k: f[k] for k in ("det_image", "det_class", "det_score", "det_box") if k in f.files}
    metrics, table = evaluate_scores(scores, split, train.labels, cfg)
    iou = cfg["corloc_iou"]
    if train.has_boxes:
        train_boxes = open_teacher_cache(cache_dir).class_boxes(train.image_ids)
        res = corloc(train_boxes, train.labels, _gt_boxes(train), iou)
        metrics.update({"CorLoc": res["CorLoc"], "CorLoc_per_class": res["CorLoc_per_class"]})
    if split.has_boxes:
        res = corloc(class_boxes, split.labels, _gt_boxes(split), iou)
        metrics[f"CorLoc_{split_name}"] = res["CorLoc"]
        if dets:
            per_image: list[list[tuple[int, float, tuple[float, ...]]]] = [[] for _ in range(len(split))]
            for i, k, s, box in zip(dets["det_image"], dets["det_class"], dets["det_score"], dets["det_box"],
                                    strict=True):  # fmt: skip
                per_image[int(i)].append((int(k), float(s), tuple(float(v) for v in box)))
            res = detection_ap(per_image, _gt_boxes(split), len(split.classes), iou=iou, use_07_metric=True)
            metrics.update({"detection_mAP": res["mAP"], "detection_AP": list(res["AP"])})
    return metrics, table, scores
