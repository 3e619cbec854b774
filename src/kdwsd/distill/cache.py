"""Teacher-output cache: the frozen teacher is run once; the student stages read only this cache.

Layout (docs/formats.md §4): ``<dir>/index.json`` + ``<dir>/shard-<k>/<array>.npy``, memory-mappable.
Orientation 0 is the image as is, 1 the mirrored image; RoIs are in the teacher's input frame
(``frame_size``²) of that orientation, exactly as the teacher saw them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib.format import open_memmap
from tqdm import tqdm

from kdwsd.device import autocast
from kdwsd.models.teacher import WSDDN, objectness, wsddn_scores

__all__ = ["TeacherCache", "run_teacher", "write_teacher_cache"]

ARRAYS = ("image_ids", "soft_targets", "num_rois", "rois", "roi_box_scores", "objectness", "features",
          "class_boxes")  # fmt: skip


@torch.no_grad()
def run_teacher(
    teacher: WSDDN,
    batch: dict[str, torch.Tensor],
    t_soft: float,
    objectness_mode: str,
    device: torch.device,
    precision: str = "fp32",
    box_score: tuple[float, float] | None = None,
) -> dict[str, torch.Tensor]:
    """One eval-mode teacher pass on a collated batch.

    Args:
        precision: ``fp32`` (default: these outputs become targets and reported metrics) | ``bf16`` | ``fp16``.
        box_score: ``(scale, bias)`` box-score factor for ``fc7`` (the stage-1 prototxt applies the student's
            (1, 0) on both branches); the scores keep the teacher's own training factor. None = own factor.
    Returns float32 tensors on CPU: ``scores`` [B, C] (t = 1), ``soft_targets`` [B, C] (t = ``t_soft`` on
    both softmaxes), ``objectness`` [B, R], ``region_scores`` [B, R, C] (t = 1) and ``fc7`` [B, R, D].
    """
    teacher.eval()
    batch = {k: v.to(device) for k, v in batch.items()}
    with autocast(device, precision):
        out = teacher(batch["image"], batch["boxes"], batch["box_scores"], batch["mask"], fc7_box_score=box_score)
    region, scores = wsddn_scores(out.cls_logits, out.det_logits, out.mask)
    _, soft = wsddn_scores(out.cls_logits, out.det_logits, out.mask, t_soft, t_soft)
    return {
        "scores": scores.float().cpu(),
        "soft_targets": soft.float().cpu(),
        "objectness": objectness(region, objectness_mode).masked_fill(~out.mask, -1.0).float().cpu(),
        "region_scores": region.float().cpu(),
        "fc7": out.fc7.float().cpu(),
    }


def write_teacher_cache(
    teacher: WSDDN,
    batches_by_orientation: list[Any],
    num_images: int,
    image_ids: np.ndarray,
    sizes_hw: np.ndarray,
    out_dir: Path | str,
    frame_size: int,
    top_k: int | None,
    num_rois: int,
    t_soft: float,
    objectness_mode: str,
    shard_size: int,
    device: torch.device,
    progress: bool = True,
    precision: str = "fp32",
    box_score: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Run the teacher over a split in both orientations and write the sharded cache.

    Args:
        batches_by_orientation: two iterables (orientation 0 and 1) of collated batches covering the
            images in order (``batch["index"]`` gives the rows), at side ``frame_size``.
        top_k: RoIs kept per image and orientation, ranked by objectness (None = all ``num_rois``).
        sizes_hw: int[N, 2] original sizes, to express ``class_boxes`` in original pixels.
        precision, box_score: see :func:`run_teacher` (``box_score`` sets the factor of the stored fc7).
    Returns:
        the index dictionary (also written to ``index.json``).
    """
    out = Path(out_dir)
    tmp_dir = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    k = num_rois if top_k is None else min(top_k, num_rois)
    d, c = teacher.head.out_features, teacher.fc8_c.out_features
    shards, arrays = [], []
    for s, start in enumerate(range(0, num_images, shard_size)):
        n = min(shard_size, num_images - start)
        sd = tmp_dir / f"shard-{s:05d}"
        sd.mkdir()
        spec = {
            "image_ids": (np.int64, (n,)), "soft_targets": (np.float32, (n, 2, c)),
            "num_rois": (np.int32, (n, 2)), "rois": (np.float32, (n, 2, k, 4)),
            "roi_box_scores": (np.float32, (n, 2, k)), "objectness": (np.float32, (n, 2, k)),
            "features": (np.float16, (n, 2, k, d)), "class_boxes": (np.float32, (n, c, 4)),
        }  # fmt: skip
        arrays.append({name: open_memmap(sd / f"{name}.npy", "w+", dt, shp) for name, (dt, shp) in spec.items()})
        arrays[-1]["image_ids"][:] = image_ids[start : start + n]
        shards.append({"dir": sd.name, "start": start, "count": n})

    for orientation, batches in enumerate(batches_by_orientation):
        for batch in tqdm(batches, desc=f"teacher cache (orientation {orientation})", disable=not progress):
            res = run_teacher(teacher, batch, t_soft, objectness_mode, device, precision, box_score)
            obj = res["objectness"]
            order = torch.argsort(obj, dim=1, descending=True)[:, :k]
            for row, index in enumerate(batch["index"].tolist()):
                a = arrays[index // shard_size]
                j = index % shard_size
                sel = order[row]
                valid = int(batch["mask"][row].sum().clamp(max=k))
                sel = sel[:valid]
                a["soft_targets"][j, orientation] = res["soft_targets"][row].numpy()
                a["num_rois"][j, orientation] = valid
                a["rois"][j, orientation, :valid] = batch["boxes"][row, sel].numpy()
                a["roi_box_scores"][j, orientation, :valid] = batch["box_scores"][row, sel].numpy()
                a["objectness"][j, orientation, :valid] = obj[row, sel].numpy()
                a["features"][j, orientation, :valid] = res["fc7"][row, sel].numpy().astype(np.float16)
                if orientation == 0:
                    best = res["region_scores"][row].argmax(dim=0)  # [C] best RoI per class
                    boxes = batch["boxes"][row, best].numpy()
                    h, w = sizes_hw[index]
                    a["class_boxes"][j] = boxes * np.array([w, h, w, h], np.float32) / frame_size
    for a in arrays:
        for arr in a.values():
            arr.flush()
    index = {
        "format": "kdwsd-teacher-cache-v1", "num_images": num_images, "num_classes": c, "feature_dim": d,
        "top_k": k, "frame_size": frame_size, "t_soft": t_soft, "objectness": objectness_mode,
        "precision": precision, "feature_box_score": list(box_score) if box_score is not None else "teacher",
        "orientations": ["as_is", "mirrored"], "shards": shards,
    }  # fmt: skip
    (tmp_dir / "index.json").write_text(json.dumps(index, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp_dir, out)
    return index


class TeacherCache:
    """Memory-mapped reader of a teacher cache directory."""

    def __init__(self, cache_dir: Path | str) -> None:
        self.dir = Path(cache_dir)
        index_path = self.dir / "index.json"
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path}: teacher cache index missing (run the teacher_cache step)")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format") != "kdwsd-teacher-cache-v1":
            raise ValueError(f"{index_path}: unknown cache format {self.index.get('format')!r}")
        self.frame_size: int = int(self.index["frame_size"])
        self.top_k: int = int(self.index["top_k"])
        self.feature_dim: int = int(self.index["feature_dim"])
        self.shards = [
            {name: np.load(self.dir / s["dir"] / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
            for s in self.index["shards"]
        ]
        self.lookup: dict[int, tuple[int, int]] = {}
        for si, shard in enumerate(self.shards):
            for row, image_id in enumerate(shard["image_ids"]):
                self.lookup[int(image_id)] = (si, row)

    def __contains__(self, image_id: int) -> bool:
        return int(image_id) in self.lookup

    def get(
        self, image_id: int, orientation: int = 0, top: int | None = None, with_features: bool = True
    ) -> dict[str, np.ndarray]:
        """Cached outputs of one image: ``soft_targets`` [C], ``rois`` [k, 4], ``roi_box_scores`` [k],
        ``objectness`` [k], ``features`` float16 [k, D] (``k`` = valid RoIs, at most ``top``)."""
        if int(image_id) not in self.lookup:
            raise KeyError(f"image id {image_id} is not in the teacher cache {self.dir}")
        si, row = self.lookup[int(image_id)]
        a = self.shards[si]
        n = int(a["num_rois"][row, orientation])
        if top is not None:
            n = min(n, top)
        out = {
            "soft_targets": np.array(a["soft_targets"][row, orientation]),
            "rois": np.array(a["rois"][row, orientation, :n]),
            "roi_box_scores": np.array(a["roi_box_scores"][row, orientation, :n]),
            "objectness": np.array(a["objectness"][row, orientation, :n]),
        }
        if with_features:
            out["features"] = np.array(a["features"][row, orientation, :n])
        return out

    def class_boxes(self, image_ids: np.ndarray) -> np.ndarray:
        """float32[N, C, 4] the teacher's best box per class (original pixels), for CorLoc."""
        return np.stack([self.shards[self.lookup[int(i)][0]]["class_boxes"][self.lookup[int(i)][1]]
                         for i in image_ids])  # fmt: skip


def cache_teacher_outputs(
    teacher_model: Path | str,
    data_dir: Path | str,
    train_proposals: list[str],
    eval_split: str,
    eval_proposals: list[str],
    cfg: dict[str, Any],
    num_rois: int,
    norm: str,
    out_dir: Path | str,
    out_eval: Path | str,
    device: str = "auto",
) -> dict[str, Any]:
    """Stage: run the frozen teacher (eval mode) once.

    Writes the training-set cache at ``cfg["size"]`` for both orientations with soft targets at
    temperature ``cfg["temperature"]``, and the evaluation-split outputs (``out_eval``, an ``.npz``: image
    scores at t = 1, top-10 boxes by objectness and the best box per class, in original pixels).
    """
    from kdwsd.data.dataset import MultiLabelImages, ordered_loader
    from kdwsd.data.prepared import load_split
    from kdwsd.proposals.store import ProposalStore
    from kdwsd.train.loop import pick_device
    from kdwsd.train.teacher import load_teacher

    dev = pick_device(device)
    teacher = load_teacher(teacher_model).to(dev)
    size, bs, workers = int(cfg["size"]), int(cfg["batch_size"]), int(cfg.get("loader_workers", 0))
    top_k = None if cfg["top_k"] == "all" else int(cfg["top_k"])

    train = load_split(data_dir, "train")
    ds = MultiLabelImages(train, norm, ProposalStore(train_proposals), max_rois=num_rois)
    index = write_teacher_cache(
        teacher, [ordered_loader(ds, size, flip, bs, workers) for flip in (False, True)], len(train),
        train.image_ids, train.sizes, out_dir, size, top_k, num_rois, float(cfg["temperature"]),
        cfg["objectness"], int(cfg["shard_size"]), dev,
    )  # fmt: skip

    split = load_split(data_dir, eval_split)
    ds = MultiLabelImages(split, norm, ProposalStore(eval_proposals), max_rois=num_rois)
    n, c = len(split), len(split.classes)
    scores = np.zeros((n, c), np.float32)
    top_boxes = np.full((n, 10, 4), np.nan, np.float32)
    class_boxes = np.zeros((n, c, 4), np.float32)
    for batch in tqdm(ordered_loader(ds, size, False, bs, workers), desc=f"teacher on {eval_split}"):
        res = run_teacher(teacher, batch, 1.0, cfg["objectness"], dev)
        for row, i in enumerate(batch["index"].tolist()):
            h, w = split.sizes[i]
            to_orig = np.array([w, h, w, h], np.float32) / size
            boxes = batch["boxes"][row].numpy()
            valid = int(batch["mask"][row].sum())
            order = torch.argsort(res["objectness"][row, :valid], descending=True)[:10].numpy()
            top_boxes[i, : len(order)] = boxes[order] * to_orig
            class_boxes[i] = boxes[res["region_scores"][row, :valid].argmax(dim=0).numpy()] * to_orig
            scores[i] = res["scores"][row].numpy()
    out_eval = Path(out_eval)
    tmp = out_eval.with_name(out_eval.stem + ".tmp.npz")
    np.savez(tmp, image_ids=split.image_ids, scores=scores, top_boxes=top_boxes, class_boxes=class_boxes)
    os.replace(tmp, out_eval)
    return index
