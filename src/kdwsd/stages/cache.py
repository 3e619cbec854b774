"""Stage of ``workflow/rules/cache.smk``: run the frozen teacher once; the students read only this cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kdwsd.stages.dataset import checked_split, prepared_dir

__all__ = ["teacher_cache"]


def teacher_cache(
    *, teacher: str, data: list[str], train_proposals: list[str], eval_proposals: list[str], cache: str,
    evaluation: str, eval_split: str, frame: int, rois: int, cached_rois: int | str, temperature: float,
    objectness: str, feature_box_score: dict[str, float], precision: str, norm: str, device: str,
    on_bad_image: str = "error", teacher_batch_size: int = 16, cache_shard_size: int = 1000, loader_workers: int = 0,
    frame_cache_mb: float = 0,
) -> None:  # fmt: skip
    """Run the eval-mode teacher at its single-scale ``frame``.

    Writes the training-set cache ``cache`` (docs/formats.md §4) for both orientations: soft targets at
    ``temperature`` on both softmaxes, the top ``cached_rois`` RoIs by objectness with their fc7 features
    (pooled with ``feature_box_score``, the stage-1 factor; everything else with the teacher's own factor);
    and ``evaluation`` (an ``.npz`` for the ``eval_split``: image scores at t = 1, the top-10 boxes by
    objectness, the best box per class and the detections after per-class NMS (``det_*``, as WSDDN is
    evaluated), in original pixels).
    """
    from kdwsd.boxes import frame_to_original
    from kdwsd.data.dataset import MultiLabelImages, ordered_loader
    from kdwsd.data.prepared import load_split
    from kdwsd.device import GPU_SLOT_DIR, job_device
    from kdwsd.distill.cache import run_teacher, write_teacher_cache
    from kdwsd.metrics import teacher_detections
    from kdwsd.models.io import load_teacher
    from kdwsd.proposals.store import ProposalStore

    dev = job_device(device, where="config key device", slot_dir=GPU_SLOT_DIR)
    model = load_teacher(teacher).to(dev)
    data_dir, bs = prepared_dir(data), teacher_batch_size
    kept = None if cached_rois == "all" else int(cached_rois)

    train = checked_split(data, "train", on_bad_image, cache)
    # Both orientations read the same frames: the second pass takes them from the frame cache.
    ds = MultiLabelImages(train, norm, ProposalStore(train_proposals), rois=rois, frame_cache_mb=frame_cache_mb)
    write_teacher_cache(
        model, [ordered_loader(ds, frame, flip, bs, loader_workers) for flip in (False, True)], len(train),
        train.image_ids, train.sizes, cache, frame, kept, rois, temperature, objectness, cache_shard_size, dev,
        teacher_path=teacher, precision=precision, box_score=(feature_box_score["scale"], feature_box_score["bias"]),
    )  # fmt: skip

    split = load_split(data_dir, eval_split)
    ds = MultiLabelImages(split, norm, ProposalStore(eval_proposals), rois=rois)
    n, c = len(split), len(split.classes)
    scores = np.zeros((n, c), np.float32)
    top_boxes = np.full((n, 10, 4), np.nan, np.float32)
    class_boxes = np.zeros((n, c, 4), np.float32)
    detections: list[tuple[int, int, float, tuple[float, ...]]] = []  # (image row, class, score, box)
    for batch in tqdm(ordered_loader(ds, frame, False, bs, loader_workers), desc=f"teacher on {eval_split}"):
        res = run_teacher(model, batch, 1.0, objectness, dev, precision)
        for row, i in enumerate(batch["index"].tolist()):
            boxes = batch["boxes"][row].numpy()
            valid = int(batch["mask"][row].sum())
            order = torch.argsort(res["objectness"][row, :valid], descending=True)[:10].numpy()
            top_boxes[i, : len(order)] = frame_to_original(boxes[order], split.sizes[i], frame)
            best = res["region_scores"][row, :valid].argmax(dim=0).numpy()
            class_boxes[i] = frame_to_original(boxes[best], split.sizes[i], frame)
            scores[i] = res["scores"][row].numpy()
            original = frame_to_original(boxes[:valid], split.sizes[i], frame)
            detections += [(i, *d) for d in teacher_detections(res["region_scores"][row, :valid], original)]
    out = Path(evaluation)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez(tmp, image_ids=split.image_ids, scores=scores, top_boxes=top_boxes, class_boxes=class_boxes,
             det_image=np.array([d[0] for d in detections], np.int64),
             det_class=np.array([d[1] for d in detections], np.int64),
             det_score=np.array([d[2] for d in detections], np.float32),
             det_box=np.array([d[3] for d in detections], np.float32).reshape(-1, 4))  # fmt: skip
    os.replace(tmp, out)
