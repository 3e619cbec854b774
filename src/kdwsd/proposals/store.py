"""Proposal shards on disk (``docs/formats.md`` section 2).

One uncompressed ``.npz`` per shard, ``shard-<k>-of-<n>.npz``, holding the images ``i`` with
``i % n == k`` (in image-list order) in a CSR layout:

========== ================ =====================================================================
array      dtype, shape     meaning
========== ================ =====================================================================
image_ids  int64 [N]        COCO image ids in this shard
offsets    int64 [N+1]      boxes of image ``j`` are rows ``offsets[j]:offsets[j+1]``
boxes      float32 [M, 4]   ``x1, y1, x2, y2`` in original-image pixels (inclusive-pixel convention)
scores     float32 [M]      EdgeBoxes score, sorted descending within an image
========== ================ =====================================================================

Files are written atomically and read back with ``allow_pickle=False``. When the store knows the images'
sizes (:meth:`ProposalStore.set_image_sizes`, done by the dataset), every image's proposals are passed
through :func:`sanitize_boxes` once, when its shard is first read (see docs/robustness.md).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["SANITIZE_COUNTS", "SHARD_ARRAYS", "ProposalStore", "sanitize_boxes", "shard_filename", "shard_indices",
           "write_shard"]

log = logging.getLogger("kdwsd.proposals")

SHARD_ARRAYS = ("image_ids", "offsets", "boxes", "scores")
SANITIZE_COUNTS = ("nonfinite_scores", "nonfinite_boxes", "inverted_fixed", "clipped", "zero_area",
                   "whole_image_added")  # fmt: skip


def sanitize_boxes(
    boxes: np.ndarray, scores: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Make one image's proposals usable; the one policy for bad boxes, applied in this order:

    1. a non-finite score becomes 0 (``nonfinite_scores``);
    2. a box with a non-finite coordinate is dropped (``nonfinite_boxes``);
    3. an inverted box (``x2 < x1`` or ``y2 < y1``) gets its corners swapped (``inverted_fixed``);
    4. boxes are clipped to ``[0, W - 1] x [0, H - 1]`` (``clipped``: boxes that changed);
    5. a box with no extent after clipping (``x2 <= x1`` or ``y2 <= y1``: all-zero boxes, lines, boxes wholly
       outside the image) is dropped (``zero_area``);
    6. an image left without boxes gets one whole-image box ``[0, 0, W - 1, H - 1]`` with score 0
       (``whole_image_added``), so that it still contributes its labels to training.

    Scores are re-sorted in descending order (stable) when step 1 changed one.

    Args:
        boxes: float [N, 4] ``x1, y1, x2, y2`` in original pixels (inclusive-pixel convention).
        scores: float [N].
        width, height: the original image size.
    Returns:
        ``(boxes float32 [M, 4], scores float32 [M], counts)``, new arrays; ``counts`` has every key of
        :data:`SANITIZE_COUNTS`.
    """
    b = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    sc = np.array(scores, dtype=np.float32).reshape(-1)
    counts = dict.fromkeys(SANITIZE_COUNTS, 0)
    bad_score = ~np.isfinite(sc)
    counts["nonfinite_scores"] = int(bad_score.sum())
    sc[bad_score] = 0.0
    finite = np.isfinite(b).all(axis=1)
    counts["nonfinite_boxes"] = int((~finite).sum())
    b, sc = b[finite], sc[finite]
    inverted = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    counts["inverted_fixed"] = int(inverted.sum())
    b = np.concatenate([np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])], axis=1)
    clipped = np.clip(b, 0, np.array([width - 1, height - 1, width - 1, height - 1], np.float32))
    counts["clipped"] = int((clipped != b).any(axis=1).sum())
    b = clipped
    extent = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    counts["zero_area"] = int((~extent).sum())
    b, sc = b[extent], sc[extent]
    if len(b) == 0:
        counts["whole_image_added"] = 1
        b = np.array([[0, 0, width - 1, height - 1]], np.float32)
        sc = np.zeros(1, np.float32)
    elif counts["nonfinite_scores"]:
        order = np.argsort(-sc, kind="stable")
        b, sc = b[order], sc[order]
    return b, sc, counts


def shard_indices(n_images: int, shard: int, num_shards: int) -> np.ndarray:
    """Positions (in image-list order) of the images that belong to one shard.

    Returns:
        int64 [K]: the ``i`` in ``range(n_images)`` with ``i % num_shards == shard``, ascending.
    """
    if num_shards < 1 or not 0 <= shard < num_shards or n_images < 0:
        raise ValueError(
            f"need n_images >= 0, num_shards >= 1 and 0 <= shard < num_shards; "
            f"got n_images={n_images}, shard={shard}, num_shards={num_shards}"
        )
    return np.arange(shard, n_images, num_shards, dtype=np.int64)


def shard_filename(shard: int, num_shards: int) -> str:
    """The file name of one shard: ``shard-<k>-of-<n>.npz``."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"need 0 <= shard < num_shards, got shard={shard}, num_shards={num_shards}")
    return f"shard-{shard}-of-{num_shards}.npz"


def write_shard(
    path: str | os.PathLike[str],
    image_ids: Sequence[int] | np.ndarray,
    boxes_list: Sequence[np.ndarray],
    scores_list: Sequence[np.ndarray],
) -> None:
    """Write one proposal shard atomically (temporary file in the same folder, then ``os.replace``).

    Args:
        path: destination ``.npz`` file.
        image_ids: N image ids (unique).
        boxes_list: N arrays [n_j, 4] ``x1, y1, x2, y2`` (n_j may be 0).
        scores_list: N arrays [n_j], sorted descending.

    Raises:
        ValueError: mismatched lengths or shapes, duplicate ids, non-finite values or unsorted scores.
    """
    ids = np.asarray(image_ids, dtype=np.int64).reshape(-1)
    if not len(ids) == len(boxes_list) == len(scores_list):
        raise ValueError(
            f"image_ids, boxes_list and scores_list differ in length: {len(ids)}, {len(boxes_list)}, {len(scores_list)}"
        )
    if len(np.unique(ids)) != len(ids):
        raise ValueError("image_ids contains duplicates")
    boxes_arrays, scores_arrays = [], []
    for image_id, boxes, scores in zip(ids, boxes_list, scores_list, strict=True):
        boxes = np.asarray(boxes, dtype=np.float32)
        scores = np.asarray(scores, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (len(boxes),):
            raise ValueError(
                f"image {image_id}: boxes must be [n, 4] and scores [n], got {boxes.shape} and {scores.shape}"
            )
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ValueError(f"image {image_id}: non-finite box or score")
        if np.any(np.diff(scores) > 0):
            raise ValueError(f"image {image_id}: scores are not sorted in descending order")
        boxes_arrays.append(boxes)
        scores_arrays.append(scores)
    counts = np.array([len(b) for b in boxes_arrays], dtype=np.int64)
    arrays = {
        "image_ids": ids,
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "boxes": np.concatenate(boxes_arrays) if boxes_arrays else np.zeros((0, 4), np.float32),
        "scores": np.concatenate(scores_arrays) if scores_arrays else np.zeros((0,), np.float32),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; shards are ordinary data files
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class ProposalStore:
    """Read proposals from one or more shard files.

    The index (``image_ids``, ``offsets``) of every shard is read at construction; the boxes and
    scores of a shard are read on first access to one of its images and kept (read-only) in memory.
    No file handle stays open, so the store can be shared with forked data-loader workers.

    Args:
        paths: shard files; an image id may occur in only one of them.
        image_sizes: image id -> original ``(height, width)``; when given (or set later with
            :meth:`set_image_sizes`), the proposals of those images are sanitised (:func:`sanitize_boxes`)
            when their shard is read, and the counts are logged per shard and summed in
            :attr:`sanitize_counts`.

    Raises:
        ValueError: a malformed shard (missing or extra arrays, wrong dtype/shape, inconsistent
            offsets) or an image id found in two shards.
    """

    def __init__(
        self, paths: Iterable[str | os.PathLike[str]], image_sizes: Mapping[int, Sequence[int]] | None = None
    ) -> None:
        self._paths = [Path(p) for p in paths]
        self._offsets: list[np.ndarray] = []
        self._data: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = []
        self._sizes: dict[int, tuple[int, int]] = {}
        self.sanitize_counts: Counter[str] = Counter()
        self._index: dict[int, tuple[int, int]] = {}
        ids_per_shard = []
        for shard, path in enumerate(self._paths):
            with np.load(path, allow_pickle=False) as npz:
                if sorted(npz.files) != sorted(SHARD_ARRAYS):
                    raise ValueError(f"{path}: expected arrays {list(SHARD_ARRAYS)}, found {npz.files}")
                ids = npz["image_ids"]
                offsets = npz["offsets"]
            if ids.dtype != np.int64 or ids.ndim != 1:
                raise ValueError(f"{path}: image_ids must be int64 [N], got {ids.dtype} {ids.shape}")
            if offsets.dtype != np.int64 or offsets.shape != (len(ids) + 1,):
                raise ValueError(f"{path}: offsets must be int64 [N+1], got {offsets.dtype} {offsets.shape}")
            if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
                raise ValueError(f"{path}: offsets must start at 0 and be non-decreasing")
            for j, image_id in enumerate(ids.tolist()):
                if image_id in self._index:
                    other = self._paths[self._index[image_id][0]]
                    raise ValueError(f"image id {image_id} is in both {other} and {path}")
                self._index[image_id] = (shard, j)
            self._offsets.append(offsets)
            self._data.append(None)
            ids_per_shard.append(ids)
        self._ids = ids_per_shard
        self._image_ids = np.concatenate(ids_per_shard) if ids_per_shard else np.zeros(0, np.int64)
        self._image_ids.setflags(write=False)
        if image_sizes is not None:
            self.set_image_sizes(list(image_sizes), [image_sizes[i] for i in image_sizes])

    def set_image_sizes(self, image_ids: Sequence[int] | np.ndarray, sizes_hw: Sequence[Sequence[int]] | np.ndarray
                        ) -> None:  # fmt: skip
        """Sanitise the proposals of these images (int [N] ids, int [N, 2] ``(height, width)``) from now on."""
        new = {int(i): (int(h), int(w)) for i, (h, w) in zip(image_ids, sizes_hw, strict=True)}
        if any(self._sizes.get(i, hw) != hw for i, hw in new.items()):
            raise ValueError("set_image_sizes: an image id was already given another size")
        if not new.keys() <= self._sizes.keys():
            self._sizes.update(new)
            self._data = [None] * len(self._paths)  # re-read (and re-sanitise) with the new sizes
            self.sanitize_counts = Counter()

    def _sanitize(self, shard: int, boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
        offsets, ids = self._offsets[shard], self._ids[shard].tolist()
        out_b, out_s, counts = [], [], Counter()
        for j, image_id in enumerate(ids):
            b, sc = boxes[offsets[j] : offsets[j + 1]], scores[offsets[j] : offsets[j + 1]]
            if image_id in self._sizes:
                h, w = self._sizes[image_id]
                b, sc, c = sanitize_boxes(b, sc, w, h)
                counts.update(c)
            out_b.append(b)
            out_s.append(sc)
        n = [len(b) for b in out_b]
        new_offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
        if any(counts.values()):
            log.warning("%s: proposals sanitised (see sanitize_boxes): %s", self._paths[shard],
                        ", ".join(f"{k}={v}" for k, v in counts.items() if v))  # fmt: skip
        self.sanitize_counts.update(counts)
        if not out_b:
            return boxes, scores, offsets
        return np.concatenate(out_b), np.concatenate(out_s), new_offsets

    def _shard_arrays(self, shard: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        data = self._data[shard]
        if data is None:
            path = self._paths[shard]
            with np.load(path, allow_pickle=False) as npz:
                boxes, scores = npz["boxes"], npz["scores"]
            total = int(self._offsets[shard][-1])
            if boxes.dtype != np.float32 or boxes.shape != (total, 4):
                raise ValueError(f"{path}: boxes must be float32 [{total}, 4], got {boxes.dtype} {boxes.shape}")
            if scores.dtype != np.float32 or scores.shape != (total,):
                raise ValueError(f"{path}: scores must be float32 [{total}], got {scores.dtype} {scores.shape}")
            offsets = self._offsets[shard]
            if self._sizes:
                boxes, scores, offsets = self._sanitize(shard, boxes, scores)
            for a in (boxes, scores, offsets):
                a.setflags(write=False)
            data = self._data[shard] = (boxes, scores, offsets)
        return data

    def sanitize_report(self) -> dict[str, int]:
        """Read every shard now (sanitising it) and return the summed counts of :func:`sanitize_boxes`."""
        for shard in range(len(self._paths)):
            self._shard_arrays(shard)
        return {k: int(self.sanitize_counts.get(k, 0)) for k in SANITIZE_COUNTS}

    def get(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Proposals of one image.

        Returns:
            ``(boxes, scores)``: read-only float32 [n, 4] and float32 [n] (n may be 0).

        Raises:
            KeyError: the image id is in none of the shards.
        """
        try:
            shard, j = self._index[int(image_id)]
        except KeyError:
            raise KeyError(f"image id {image_id} is not in the proposal shards {self._paths}") from None
        boxes, scores, offsets = self._shard_arrays(shard)
        start, stop = offsets[j], offsets[j + 1]
        return boxes[start:stop], scores[start:stop]

    def __contains__(self, image_id: object) -> bool:
        try:
            return int(image_id) in self._index  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False

    def __len__(self) -> int:
        return len(self._index)

    @property
    def image_ids(self) -> np.ndarray:
        """int64 [N] (read-only): every image id, shard by shard, in file order."""
        return self._image_ids

    @property
    def paths(self) -> list[Path]:
        """The shard files."""
        return list(self._paths)
