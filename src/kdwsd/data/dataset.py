"""Torch datasets and samplers: warped, mirrored, multi-scale images with their RoIs and cached targets.

Preprocessing follows the authors' data layer: the image is warped (aspect ratio not kept) to a square
side ``size``, mirrored with p = 0.5, and its proposals follow it (``int(x · f)`` then the flip
``x1' = W - 1 - x2``). Multi-scale training draws one side per mini-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from kdwsd.boxes import flip_boxes, warp_boxes
from kdwsd.data.images import read_image
from kdwsd.data.prepared import Split

if TYPE_CHECKING:
    from kdwsd.distill.cache import TeacherCache
    from kdwsd.proposals.store import ProposalStore

__all__ = [
    "MultiLabelImages",
    "ScaleBatchSampler",
    "collate",
    "epoch_loader",
    "load_image",
    "normalise",
    "ordered_loader",
    "warp_image",
]

# Caffe VGG16 (the authors' data layer): BGR, 0-255, mean subtracted, no std.
CAFFE_MEAN_BGR = np.array([103.52, 116.28, 123.675], dtype=np.float32)
# torchvision ImageNet weights: RGB in [0, 1], mean/std normalised.
TV_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
TV_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)

Key = tuple[int, int, bool]  # (image index, square side, mirrored)


def load_image(path: Any, expected_hw: Sequence[int] | None = None, image_id: Any = None) -> np.ndarray:
    """Read an image as uint8[H, W, 3] BGR (:func:`kdwsd.data.images.read_image`: truncated, undecodable or
    wrongly-sized files raise a PipelineInputError naming the file and image id)."""
    return read_image(path, expected_hw=expected_hw, image_id=image_id)


def warp_image(image_bgr: np.ndarray, size: int) -> np.ndarray:
    """uint8[H, W, 3] -> uint8[size, size, 3]: the authors' warp to a square side (bilinear, aspect ratio not
    kept). Training, evaluation and ``kdwsd predict`` all call this one function, so they cannot drift apart."""
    return cv2.resize(image_bgr, (size, size), interpolation=cv2.INTER_LINEAR)


def _normalise_formula(values: np.ndarray, mode: str) -> np.ndarray:
    """The normalisation of uint8 values [..., 3] (BGR) in float32, channel last."""
    x = values.astype(np.float32)
    if mode == "caffe":
        return x - CAFFE_MEAN_BGR
    if mode == "torchvision":
        return (x[..., ::-1] / 255.0 - TV_MEAN_RGB) / TV_STD_RGB
    raise ValueError(f"unknown input normalisation '{mode}' (expected 'caffe' or 'torchvision')")


# Per output channel, the normalised value of each of the 256 input levels, computed with the very same
# float32 operations: indexing it is bit-identical to the formula and several times faster (the formula
# cost more than the student network per image).
_LUTS = {mode: np.ascontiguousarray(_normalise_formula(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1),
                                                       mode).T) for mode in ("caffe", "torchvision")}  # fmt: skip
# The BGR input channel of each output channel: torchvision's output is RGB.
_SOURCE_CHANNEL = {"caffe": (0, 1, 2), "torchvision": (2, 1, 0)}


def normalise(image_bgr: np.ndarray, mode: str, out: np.ndarray | None = None) -> np.ndarray:
    """uint8[H, W, 3] BGR -> float32[3, H, W] network input (written into ``out`` when given, e.g. a row of a
    batch buffer: no allocation, no later copy).

    ``caffe``: BGR minus the Caffe mean (the paper); ``torchvision``: RGB / 255 with ImageNet mean/std
    (required by torchvision's pretrained weights).
    """
    if mode not in _LUTS:
        raise ValueError(f"unknown input normalisation '{mode}' (expected 'caffe' or 'torchvision')")
    # Planes first in uint8 (a quarter of the bytes to move), then one table look-up per plane.
    planes = np.ascontiguousarray(image_bgr.transpose(2, 0, 1))
    if out is None:
        out = np.empty(planes.shape, np.float32)
    elif out.shape != planes.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {planes.shape}, got {out.dtype} "
                         f"{out.shape}")  # fmt: skip
    for c, source in enumerate(_SOURCE_CHANNEL[mode]):
        cv2.LUT(planes[source], _LUTS[mode][c], dst=out[c])
    return out


class MultiLabelImages(Dataset):
    """Items are addressed by a key ``(index, size, flip)`` produced by :class:`ScaleBatchSampler`.

    Args:
        split: the prepared split; only ``paths``, ``sizes`` and ``labels`` are read (never boxes).
        norm: input normalisation (``caffe`` | ``torchvision``).
        proposals: when given, each item carries its top ``rois`` proposals in the warped frame.
        cache: when given, each item carries the teacher's cached soft targets, RoIs (cache frame) and
            fc7 features for its orientation; the item ``size`` must equal ``cache.frame_size``.
        distill_rois: how many of the cached RoIs to return (None = all cached).
        frame_cache_mb: keep up to this many MB of decoded, resized frames (uint8, per image and side) in
            memory, so that later epochs skip decoding and resizing (the same bytes: results do not change).
            Per data-loading process; 0 = none. The first frames fill it, then it stops growing.
    """

    def __init__(
        self,
        split: Split,
        norm: str,
        proposals: ProposalStore | None = None,
        rois: int | None = None,
        cache: TeacherCache | None = None,
        distill_rois: int | None = None,
        with_features: bool = True,
        frame_cache_mb: float = 0,
    ) -> None:
        self.paths = split.paths
        self.image_ids = split.image_ids
        self.sizes = split.sizes
        self.labels = split.labels
        self.norm = norm
        self.proposals = proposals
        self.rois = rois
        self.cache = cache
        self.distill_rois = distill_rois
        self.with_features = with_features
        self._frames: dict[tuple[int, int], np.ndarray] = {}
        self._frame_bytes_left = int(frame_cache_mb * 2**20)
        if proposals is not None:
            if hasattr(proposals, "set_image_sizes"):  # a ProposalStore: sanitise boxes against these sizes
                proposals.set_image_sizes(self.image_ids, self.sizes)
            missing = [int(i) for i in self.image_ids if int(i) not in proposals]
            if missing:
                raise KeyError(f"{len(missing)} images have no proposals (first: image id {missing[0]})")

    def __len__(self) -> int:
        return len(self.paths)

    def frame(self, index: int, size: int) -> np.ndarray:
        """uint8[size, size, 3] BGR: image ``index`` warped to the square side ``size`` (from the frame cache
        when it holds it)."""
        image = self._frames.get((index, size))
        if image is None:
            image = warp_image(load_image(self.paths[index], self.sizes[index], int(self.image_ids[index])), size)
            if image.nbytes <= self._frame_bytes_left:
                image.setflags(write=False)  # shared by every later epoch
                self._frames[(index, size)] = image
                self._frame_bytes_left -= image.nbytes
        return image

    def __getitem__(self, key: Key) -> dict[str, Any]:
        index, size, flip = key
        image = self.frame(index, size)
        if flip:
            image = image[:, ::-1]
        item: dict[str, Any] = {
            "index": index,
            "image": torch.from_numpy(normalise(image, self.norm)),
            "labels": torch.from_numpy(self.labels[index].astype(np.float32)),
        }
        image_id = int(self.image_ids[index])
        if self.proposals is not None:
            boxes, scores = self.proposals.get(image_id)
            if self.rois is not None:
                boxes, scores = boxes[: self.rois], scores[: self.rois]
            boxes = warp_boxes(boxes, tuple(self.sizes[index]), size)
            if flip:
                boxes = flip_boxes(boxes, size)
            item["boxes"] = torch.from_numpy(boxes)
            # a copy: the store's arrays are read-only and shared by every item of every epoch
            item["box_scores"] = torch.tensor(scores, dtype=torch.float32)
        if self.cache is not None:
            if size != self.cache.frame_size:
                raise ValueError(f"cached RoIs are in a {self.cache.frame_size}px frame, item asks {size}px")
            entry = self.cache.get(image_id, orientation=int(flip), top=self.distill_rois,
                                   with_features=self.with_features)  # fmt: skip
            item["soft_targets"] = torch.from_numpy(entry["soft_targets"])
            item["boxes"] = torch.from_numpy(entry["rois"])
            item["box_scores"] = torch.from_numpy(entry["roi_box_scores"])
            if self.with_features:
                item["teacher_fc7"] = torch.from_numpy(entry["features"])
        return item


def collate(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack a batch; per-image RoI arrays are padded to the longest with a boolean ``mask`` [B, R]."""
    out: dict[str, torch.Tensor] = {
        "index": torch.tensor([it["index"] for it in items]),
        "image": torch.stack([it["image"] for it in items]),
        "labels": torch.stack([it["labels"] for it in items]),
    }
    if "soft_targets" in items[0]:
        out["soft_targets"] = torch.stack([it["soft_targets"] for it in items])
    if "boxes" in items[0]:
        r = max(1, max(len(it["boxes"]) for it in items))
        b = len(items)
        out["boxes"] = torch.zeros(b, r, 4)
        out["box_scores"] = torch.zeros(b, r)
        out["mask"] = torch.zeros(b, r, dtype=torch.bool)
        if "teacher_fc7" in items[0]:
            out["teacher_fc7"] = torch.zeros(b, r, items[0]["teacher_fc7"].shape[1])
        for i, it in enumerate(items):
            n = len(it["boxes"])
            out["boxes"][i, :n] = it["boxes"]
            out["box_scores"][i, :n] = it["box_scores"]
            out["mask"][i, :n] = True
            if "teacher_fc7" in it:
                out["teacher_fc7"][i, :n] = it["teacher_fc7"].float()
    return out


class ScaleBatchSampler(Sampler[list[Key]]):
    """Yields mini-batches of ``(index, size, flip)`` keys: one side per batch, a coin flip per image.

    Deterministic given ``(seed, epoch)`` so an interrupted run resumes with the same data order.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        sizes: Sequence[int],
        flip: bool,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        self.n, self.batch_size, self.sizes = num_items, batch_size, list(sizes)
        self.flip, self.seed, self.shuffle, self.drop_last = flip, seed, shuffle, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (0 if self.drop_last or rest == 0 else 1)

    def __iter__(self) -> Iterator[list[Key]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        flips = rng.random(self.n) < 0.5 if self.flip else np.zeros(self.n, bool)
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            size = int(self.sizes[rng.integers(len(self.sizes))])
            yield [(int(i), size, bool(flips[i])) for i in idx]


def epoch_loader(
    dataset: MultiLabelImages, batch_size: int, sizes: Sequence[int], flip: bool, seed: int, workers: int = 0
) -> Callable[[int], DataLoader]:
    """Training batches: ``loader(epoch)`` returns that epoch's shuffled :class:`ScaleBatchSampler` batches."""
    sampler = ScaleBatchSampler(len(dataset), batch_size, sizes, flip, seed)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers)

    def batches(epoch: int) -> DataLoader:
        sampler.set_epoch(epoch)
        return loader

    return batches


def ordered_loader(dataset: MultiLabelImages, size: int, flip: bool, batch_size: int, workers: int = 0) -> DataLoader:
    """Batches of every item in image order at one side and orientation (caching, evaluation, timing)."""
    keys = [[(i, size, flip) for i in range(s, min(s + batch_size, len(dataset)))]
            for s in range(0, len(dataset), batch_size)]  # fmt: skip
    return DataLoader(dataset, batch_sampler=keys, collate_fn=collate, num_workers=workers)
