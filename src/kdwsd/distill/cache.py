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
from numpy.lib import format as npformat
from numpy.lib.format import open_memmap
from tqdm import tqdm

from kdwsd.boxes import frame_to_original
from kdwsd.device import autocast
from kdwsd.errors import PipelineInputError, check_finite, quarantine
from kdwsd.models.teacher import WSDDN, objectness, wsddn_scores

__all__ = ["TeacherCache", "open_teacher_cache", "run_teacher", "write_teacher_cache"]

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


def _shard_spec(n: int, c: int, k: int, d: int) -> dict[str, tuple[type, tuple[int, ...]]]:
    """dtype and shape of each array of a shard of ``n`` images (C classes, k RoIs, D-dim features)."""
    return {
        "image_ids": (np.int64, (n,)), "soft_targets": (np.float32, (n, 2, c)),
        "num_rois": (np.int32, (n, 2)), "rois": (np.float32, (n, 2, k, 4)),
        "roi_box_scores": (np.float32, (n, 2, k)), "objectness": (np.float32, (n, 2, k)),
        "features": (np.float16, (n, 2, k, d)), "class_boxes": (np.float32, (n, c, 4)),
    }  # fmt: skip


def _check_teacher_outputs(
    res: dict[str, torch.Tensor], mask: torch.Tensor, ids: np.ndarray, teacher_path: Path | str | None
) -> None:
    """Refuse non-finite teacher outputs (an exploded teacher) before they reach the cache; padded RoIs
    (``mask`` False) are ignored and features are checked after the cast to float16 the cache stores."""
    m = mask.cpu()
    check_finite(
        {"soft_targets": res["soft_targets"], "scores": res["scores"],
         "objectness": res["objectness"].masked_fill(~m, 0.0),
         "features": res["fc7"].masked_fill(~m[..., None], 0.0).half()},
        items=ids.tolist(), path=teacher_path or "<teacher model>",
        hint="The teacher's outputs are unusable: check its training curve (loss blowing up?), lower its lr or "
             "set grad_clip, retrain it, then rerun the teacher_cache step",
    )  # fmt: skip


def write_teacher_cache(
    teacher: WSDDN,
    batches_by_orientation: list[Any],
    num_images: int,
    image_ids: np.ndarray,
    sizes_hw: np.ndarray,
    out_dir: Path | str,
    frame_size: int,
    rois: int | None,
    max_rois: int,
    t_soft: float,
    objectness_mode: str,
    shard_size: int,
    device: torch.device,
    progress: bool = True,
    teacher_path: Path | str | None = None,
    precision: str = "fp32",
    box_score: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Run the teacher over a split in both orientations and write the sharded cache.

    Args:
        batches_by_orientation: two iterables (orientation 0 and 1) of collated batches covering the
            images in order (``batch["index"]`` gives the rows), at side ``frame_size``.
        rois: RoIs kept per image and orientation, ranked by objectness (None = all ``max_rois``, the
            teacher's input count).
        sizes_hw: int[N, 2] original sizes, to express ``class_boxes`` in original pixels.
        teacher_path: the teacher's model file, named when its outputs are not finite (nothing is written).
        precision, box_score: see :func:`run_teacher` (``box_score`` sets the factor of the stored fc7).
    Raises:
        PipelineInputError: a soft target, score, objectness or (fp16) feature is not finite.
    Returns:
        the index dictionary (also written to ``index.json``).
    """
    out = Path(out_dir)
    tmp_dir = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    k = max_rois if rois is None else min(rois, max_rois)
    d, c = teacher.head.out_features, teacher.fc8_c.out_features
    shards, arrays = [], []
    for s, start in enumerate(range(0, num_images, shard_size)):
        n = min(shard_size, num_images - start)
        sd = tmp_dir / f"shard-{s:05d}"
        sd.mkdir()
        spec = _shard_spec(n, c, k, d)
        arrays.append({name: open_memmap(sd / f"{name}.npy", "w+", dt, shp) for name, (dt, shp) in spec.items()})
        arrays[-1]["image_ids"][:] = image_ids[start : start + n]
        shards.append({"dir": sd.name, "start": start, "count": n})

    for orientation, batches in enumerate(batches_by_orientation):
        for batch in tqdm(batches, desc=f"teacher cache (orientation {orientation})", disable=not progress):
            res = run_teacher(teacher, batch, t_soft, objectness_mode, device, precision, box_score)
            _check_teacher_outputs(res, batch["mask"], image_ids[batch["index"].numpy()], teacher_path)
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
                    a["class_boxes"][j] = frame_to_original(batch["boxes"][row, best].numpy(), sizes_hw[index],
                                                            frame_size)  # fmt: skip
    for a in arrays:
        for arr in a.values():
            arr.flush()
    index = {
        "format": "kdwsd-teacher-cache-v1", "num_images": num_images, "num_classes": c, "feature_dim": d,
        "rois": k, "frame_size": frame_size, "t_soft": t_soft, "objectness": objectness_mode,
        "precision": precision, "feature_box_score": list(box_score) if box_score is not None else "teacher",
        "orientations": ["as_is", "mirrored"], "shards": shards,
    }  # fmt: skip
    (tmp_dir / "index.json").write_text(json.dumps(index, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp_dir, out)
    return index


def _check_npy(path: Path, dtype: type, shape: tuple[int, ...]) -> None:
    """Check a ``.npy`` file's header (dtype, shape) and size against what ``index.json`` implies."""
    hint = "Rerun the teacher_cache step (quarantine the cache folder so the workflow rebuilds it)"
    try:
        with open(path, "rb") as f:
            version = npformat.read_magic(f)
            read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            got_shape, fortran, got_dtype = read(f)
            offset = f.tell()
    except FileNotFoundError:
        raise PipelineInputError(path, path.stem, "shard file missing", hint) from None
    except (ValueError, OSError) as exc:
        raise PipelineInputError(path, path.stem, f"unreadable .npy header ({exc})", hint) from exc
    if got_dtype != np.dtype(dtype) or tuple(got_shape) != shape or fortran:
        raise PipelineInputError(path, path.stem, f"holds {got_dtype} {tuple(got_shape)}, index.json implies "
                                 f"{np.dtype(dtype)} {shape}", hint)  # fmt: skip
    expected = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size != expected:
        raise PipelineInputError(path, path.stem, f"{size} bytes, expected {expected} (truncated or corrupt)", hint)


class TeacherCache:
    """Memory-mapped reader of a teacher cache directory.

    Raises:
        PipelineInputError: a shard file is missing, truncated, or its header disagrees with ``index.json``.
    """

    def __init__(self, cache_dir: Path | str) -> None:
        self.dir = Path(cache_dir)
        index_path = self.dir / "index.json"
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path}: teacher cache index missing (run the teacher_cache step)")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format") != "kdwsd-teacher-cache-v1":
            raise ValueError(f"{index_path}: unknown cache format {self.index.get('format')!r}")
        self.frame_size: int = int(self.index["frame_size"])
        self.rois: int = int(self.index["rois"])
        self.feature_dim: int = int(self.index["feature_dim"])
        c, d = int(self.index["num_classes"]), self.feature_dim
        self.shards = []
        for s in self.index["shards"]:
            spec = _shard_spec(int(s["count"]), c, self.rois, d)
            arrays = {}
            for name in ARRAYS:
                path = self.dir / s["dir"] / f"{name}.npy"
                _check_npy(path, *spec[name])  # a truncated file would fail in mmap without naming it
                arrays[name] = np.load(path, mmap_mode="r")
            self.shards.append(arrays)
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


def open_teacher_cache(cache_dir: Path | str) -> TeacherCache:
    """Open a teacher cache for a stage; a corrupt one (:class:`PipelineInputError`: a truncated or garbled
    shard) is moved aside with :func:`kdwsd.errors.quarantine` before the error propagates, so that the
    workflow sees the cache missing and the next plain rerun rebuilds it (and everything downstream)."""
    try:
        return TeacherCache(cache_dir)
    except PipelineInputError as exc:
        moved = quarantine(cache_dir)
        hint = f"The cache folder was moved aside to {moved}: rerun the same snakemake command to rebuild it"
        raise PipelineInputError(exc.path, exc.item, exc.problem, hint) from exc
