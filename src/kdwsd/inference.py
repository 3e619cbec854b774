"""Label your own images with a trained model file: :func:`load_model` -> :class:`Predictor`.

The predictor reproduces the evaluation preprocessing exactly, from what the model file records:

* student: read as BGR (OpenCV), ``cv2.resize`` to ``frame_size``² (``INTER_LINEAR``, aspect ratio not
  kept: the teacher frame), :func:`kdwsd.data.dataset.normalise` with the file's ``norm``, then the
  in-network bilinear resize (``align_corners=True``) to ``input_size``² (:func:`student_input`);
  scores are ``sigmoid(z)`` in fp32 — equal to :func:`kdwsd.evaluate.predict_student`.
* teacher (WSDDN): proposals of the original image by the method it was trained with (EdgeBoxes by default;
  :func:`kdwsd.proposals.propose_image`, top ``num_rois``), the image warped to ``test_size``² with its
  boxes (:func:`kdwsd.boxes.warp_boxes`), image scores ``Σ_r softmax_c ⊙ softmax_r``
  (:func:`kdwsd.models.teacher.wsddn_scores`) and, per class, the highest-scoring proposal in original pixels.

How the work is spread:

* GPU: a thread pool decodes and resizes (OpenCV releases the GIL), each thread writing its slice of the batch,
  and prepares the next batches while the network runs.
* CPU (Linux): forked processes, as many as PyTorch's threads, each with one thread, each preparing and
  labelling whole batches. A small network leaves no core idle this way: with one process whose threads
  alternate between preparing a batch and running the network on it, both cores wait on each other at every
  switch (the default student on 2 cores: ~1.5k images/s with one process, ~1.9k with two; benchmarks/
  predict_speed.py). The processes live for one call, or, after :meth:`Predictor.start` or in a ``with``
  block, until :meth:`Predictor.close` (then started and warmed up once).
* CPU elsewhere, inside a daemonic process, or ``processes=1``: the thread pool, taking turns with the network.

Scores do not depend on the path taken at a given batch size (a test compares them bit for bit; a network whose
kernels reduce in another order with another thread count could differ in the last bits). The batch size itself
can move the last bit of a score (~1e-7: the kernels block the batch differently), and with several processes
the default one is lowered to split the batches evenly (:meth:`Predictor.batch_size_for`).
"""

from __future__ import annotations

import contextlib
import glob
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sequence, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from kdwsd.boxes import warp_boxes
from kdwsd.data.dataset import normalise, warp_image
from kdwsd.data.images import image_problem
from kdwsd.device import resolve_device
from kdwsd.modelfile import ModelInfo, read_model_file
from kdwsd.models.io import build_network
from kdwsd.models.student import student_input

__all__ = [
    "IMAGE_EXTENSIONS",
    "Prediction",
    "Predictor",
    "draw_boxes",
    "expand_image_args",
    "load_model",
    "select_labels",
    "select_labels_batch",
]

# What a folder argument lists: the formats OpenCV reads as 8-bit colour (GIF and AVIF with OpenCV >= 4.11 / a
# build with libavif; with an older one such a file is named as not decodable, the others go on).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif", ".jp2",
                    ".avif", ".ppm", ".pgm", ".pbm", ".pnm")  # fmt: skip
ImageLike = Any  # str | os.PathLike | numpy uint8 array | PIL.Image.Image
# frames float32[B, 3, F, F]; per worker, its (source, image) pairs and the future of their preparation
Batch = tuple[np.ndarray, list[tuple[list[tuple[str, ImageLike]], Future]]]


@dataclass
class Prediction:
    """The result for one image.

    Attributes:
        source: the file path, or ``<array i>`` / ``<PIL i>`` for in-memory images.
        labels: ``(class name, score)`` of the selected labels, highest score first.
        scores: float32[C] all class scores in ``classes`` order (None when the image failed).
        boxes: teacher only: class name -> ``[x1, y1, x2, y2]`` (inclusive pixels of the original image) of
            the highest-scoring proposal of each selected label.
        error: why the image could not be labelled (then ``labels`` is empty).
    """

    source: str
    labels: list[tuple[str, float]] = field(default_factory=list)
    scores: np.ndarray | None = None
    boxes: dict[str, list[float]] | None = None
    error: str | None = None

    def error_message(self) -> str | None:
        """``error`` naming the image (most messages already do); None when the image was labelled."""
        if self.error is None or self.source in self.error:
            return self.error
        return f"{self.source}: {self.error}"

    def to_dict(self, classes: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready: ``image``, ``labels`` [{name, score}], optionally ``scores`` {class: score}, ``boxes``."""
        out: dict[str, Any] = {"image": self.source}
        if self.error is not None:
            out["error"] = self.error
            return out
        out["labels"] = [{"name": n, "score": round(float(s), 6)} for n, s in self.labels]
        if classes is not None and self.scores is not None:
            out["scores"] = {c: round(float(s), 6) for c, s in zip(classes, self.scores, strict=True)}
        if self.boxes is not None:
            out["boxes"] = self.boxes
        return out


def select_labels(
    scores: np.ndarray, classes: Sequence[str], top_k: int | None = None, threshold: float | None = 0.5
) -> list[tuple[str, float]]:
    """Labels of one image, highest first: the ``top_k`` best (all when None) with score ``>= threshold``
    (no threshold when None).

    Args:
        scores: float[C] in ``classes`` order.
    """
    return select_labels_batch(np.asarray(scores)[None], classes, top_k, threshold)[0]


def select_labels_batch(
    scores: np.ndarray, classes: Sequence[str], top_k: int | None = None, threshold: float | None = 0.5
) -> list[list[tuple[str, float]]]:
    """:func:`select_labels` of B images at once (one sort for the batch, not one per image).

    Args:
        scores: float[B, C] in ``classes`` order.
    """
    scores = np.asarray(scores)
    order = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")
    if top_k is not None:
        order = order[:, :top_k]
    best = np.take_along_axis(scores, order, axis=1)
    # Sorted from the highest, so the labels kept are a prefix of each row.
    kept = np.full(len(scores), order.shape[1]) if threshold is None else (best >= threshold).sum(axis=1)
    return [[(classes[c], s) for c, s in zip(order[i, :n].tolist(), best[i, :n].tolist(), strict=True)]
            for i, n in enumerate(kept.tolist())]  # fmt: skip


def expand_image_args(args: Iterable[str | os.PathLike[str]], skipped: list[str] | None = None) -> list[str]:
    """Image files from command-line arguments: a folder gives its image files (sorted, not recursive), a
    glob pattern its matches (sorted), ``@FILE`` the paths listed in FILE and ``-`` those read from standard
    input (one per line, blank lines ignored: for lists too long for a command line); anything else is kept
    as given (so that a missing file is reported by name when it is read).

    Args:
        skipped: when given, receives the files of the folders that were left out (no image extension).
    """
    out: list[str] = []
    for arg in args:
        s = os.fspath(arg)
        if s == "-" or (s.startswith("@") and not os.path.exists(s)):
            lines = sys.stdin.read().splitlines() if s == "-" else Path(s[1:]).read_text().splitlines()
            out += [line for line in lines if line.strip()]
        elif os.path.isdir(s):
            files = sorted(p for p in Path(s).iterdir() if p.is_file())
            out += [str(p) for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
            if skipped is not None:
                skipped += [str(p) for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
        elif not os.path.exists(s) and glob.has_magic(s):
            out += sorted(glob.glob(s, recursive=True))
        else:
            out.append(s)
    return out


def _to_bgr(image: ImageLike, channels: str, source: str) -> np.ndarray:
    """Any supported image to uint8[H, W, 3] BGR (what training read with OpenCV)."""
    if isinstance(image, str | os.PathLike):
        bgr, problem = image_problem(image)  # the pipeline's reader and checks, without its data-set hint
        if problem is not None:
            raise ValueError(f"{os.fspath(image)}: {problem}")
        return bgr
    if type(image).__module__.startswith("PIL."):
        return np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{source}: expected a path, a numpy array or a PIL image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{source}: expected a uint8 image (0-255), got dtype {image.dtype}; convert it first")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"{source}: expected shape [H, W], [H, W, 3] or [H, W, 4], got {list(image.shape)}")
    if channels not in ("rgb", "bgr"):
        raise ValueError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    image = image[..., :3]
    return np.ascontiguousarray(image[..., ::-1] if channels == "rgb" else image)


class Predictor:
    """A trained student or teacher with its preprocessing; build it with :func:`load_model`.

    Attributes:
        info: everything the model file records (:class:`kdwsd.modelfile.ModelInfo`).
        model: the eval-mode network on ``device``.
        classes: the C class names, in score order.
    """

    def __init__(
        self,
        info: ModelInfo,
        device: str = "auto",
        workers: int | None = None,
        proposals: str | None = None,
        structured_model: str | os.PathLike[str] | None = None,
        processes: int | None = None,
    ) -> None:
        if info.kind == "student" and info.frame_size is None:
            raise ValueError(f"model file {info.path} does not record the frame size the student was trained at "
                             f"(a pre-format-2 file): set info.frame_size to the config's teacher.test_size "
                             f"before building the predictor")  # fmt: skip
        self.info = info
        self.classes = info.classes
        self.kind = info.kind
        self.device = resolve_device(str(device), where="the device argument")
        self.model = build_network(info).to(self.device)
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        self.processes = processes
        self._pool: Any = None  # the CPU prediction processes (kept between calls after start(), in a with block)
        self._pool_width = 0
        self._keep_processes = False
        self._parent_warmed = False
        if self.kind == "teacher":
            props = info.proposals or {}
            self.num_rois = int(info.rois or props.get("max_boxes", 100))
            self.max_boxes = int(props.get("max_boxes", self.num_rois))
            trained_with = str(props.get("method", "edgeboxes"))
            self.proposal_method = proposals or trained_with
            # Another method's parameters do not apply: the chosen method's defaults then.
            self.proposal_params = dict(props.get("params") or {}) if self.proposal_method == trained_with else {}
            if self.proposal_method == "ground_truth":
                raise ValueError(f"teacher {info.path} was trained on ground-truth boxes (the Table 5 oracle), which "
                                 f"a new image does not have: choose the proposals to score it with (kdwsd predict "
                                 f"--proposals edgeboxes | selective_search | random)")  # fmt: skip
            if structured_model is not None:
                self.proposal_params["structured_model"] = os.fspath(structured_model)
            elif self.proposal_params.get("structured_model"):
                self.proposal_params["structured_model"] = _find_beside(self.proposal_params["structured_model"],
                                                                        info.path)  # fmt: skip

    @property
    def default_batch_size(self) -> int:
        """Images per network call when none is given: 64 for frames up to 256 px (a small network is faster
        per image in larger batches: the default student on one thread, 0.92 ms per image in batches of 64,
        0.97 in 32, 1.06 in 8), 16 above (a batch of 64 frames of 672 px would hold 350 MB)."""
        return 64 if int(self.info.frame_size) <= 256 else 16

    def batch_size_for(self, n_images: int | None, batch_size: int | None = None) -> int:
        """The batch size :meth:`iter_predict` uses for ``n_images`` images: ``batch_size`` when given; else
        :attr:`default_batch_size`, lowered with several CPU processes so that the batches split evenly between
        them (400 images over 2 processes: 8 batches of 50 rather than 6 of 64 and one of 16, which would leave a
        process idle at the end)."""
        if batch_size is not None:
            return max(1, int(batch_size))
        size, processes = self.default_batch_size, self.cpu_processes()
        if n_images is None or processes == 1 or n_images <= size:
            return size
        batches = -(-n_images // size)
        batches = -(-batches // processes) * processes
        return -(-n_images // batches)

    def start(self, batch_size: int | None = None, n_images: int | None = None) -> float:
        """Start the CPU prediction processes now and keep them for every later call until :meth:`close` (or
        the end of a ``with`` block), each with its buffer for batches of ``batch_size`` mapped and a made-up
        image labelled (what a first batch would do once anyway), so that later calls fork nothing.

        Args:
            n_images: when known, the images of the coming call: nothing is started when they make a single
                batch (:meth:`iter_predict` labels that in this process).
        Returns:
            the seconds it took (0 when there are no processes: GPU, ``processes=1``, not Linux).
        """
        t0 = time.perf_counter()
        processes = self.cpu_processes()
        size = self.batch_size_for(n_images, batch_size)
        if processes == 1 or (n_images is not None and n_images <= size):
            return 0.0
        self._keep_processes = True
        if self._pool is None:
            self._fork_processes(processes)
        # One warm-up each: the barrier holds every process on its own until all have theirs.
        self._pool.map(_warm_up_process, [size] * self._pool_width, chunksize=1)
        return time.perf_counter() - t0

    def close(self) -> None:
        """Stop the CPU prediction processes kept by :meth:`start` or a ``with`` block (if any)."""
        self._keep_processes = False
        self._stop_processes()

    def _stop_processes(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.terminate()
            pool.join()

    def __enter__(self) -> Predictor:
        """``with load_model(path) as model:`` keeps the CPU prediction processes between calls, and stops
        them at the end of the block."""
        self._keep_processes = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None:
            with contextlib.suppress(Exception):  # at interpreter exit the pool may be half gone already
                self._stop_processes()

    def __repr__(self) -> str:
        return (f"Predictor({self.kind}, {len(self.classes)} classes, frame {self.info.frame_size}, input "
                f"{self.info.input_size}, norm {self.info.norm}, device {self.device})")  # fmt: skip

    # ------------------------------------------------------------------ preprocessing
    def prepare(self, image: ImageLike, channels: str = "rgb", source: str = "",
                frame: np.ndarray | None = None) -> dict[str, Any]:  # fmt: skip
        """One image -> the network's inputs: ``frame`` float32[3, F, F] (written into ``frame`` when given);
        for the teacher also ``boxes`` float32[R, 4] (frame pixels), ``box_scores`` float32[R] and
        ``boxes_orig`` float32[R, 4]; ``hw``."""
        bgr = _to_bgr(image, channels, source or "image")
        f = int(self.info.frame_size)
        out: dict[str, Any] = {"hw": bgr.shape[:2]}
        out["frame"] = normalise(warp_image(bgr, f), self.info.norm, out=frame)
        if self.kind == "teacher":
            from kdwsd.proposals import propose_image

            boxes, scores = propose_image(self.proposal_method, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.max_boxes,
                                          self.proposal_params)  # fmt: skip
            boxes, scores = boxes[: self.num_rois], scores[: self.num_rois]
            if len(boxes) == 0:  # no edges at all: score the whole image as the one region
                h, w = bgr.shape[:2]
                boxes, scores = np.array([[0, 0, w - 1, h - 1]], np.float32), np.ones(1, np.float32)
            out.update(boxes=warp_boxes(boxes, bgr.shape[:2], f), box_scores=scores.astype(np.float32),
                       boxes_orig=boxes)  # fmt: skip
        return out

    # ------------------------------------------------------------------ network
    @torch.inference_mode()
    def _forward(self, frames: np.ndarray, items: list[dict[str, Any]]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """float32[B, 3, F, F] frames of the prepared items -> float32[B, C] scores (and, for the teacher, per
        image the best region per class)."""
        x = torch.from_numpy(frames).to(self.device)
        if self.kind == "student":
            z = self.model(student_input(x, self.info.input_size))
            return torch.sigmoid(z.float()).cpu().numpy(), None
        from kdwsd.models.teacher import wsddn_scores

        r = max(len(it["boxes"]) for it in items)
        boxes, box_scores = torch.zeros(len(items), r, 4), torch.zeros(len(items), r)
        mask = torch.zeros(len(items), r, dtype=torch.bool)
        for i, it in enumerate(items):
            n = len(it["boxes"])
            boxes[i, :n], box_scores[i, :n], mask[i, :n] = torch.from_numpy(it["boxes"]), torch.from_numpy(
                it["box_scores"]), True  # fmt: skip
        out = self.model(x, boxes.to(self.device), box_scores.to(self.device), mask.to(self.device))
        region, scores = wsddn_scores(out.cls_logits, out.det_logits, out.mask)
        best = [region[i, : len(it["boxes"])].argmax(dim=0).cpu().numpy() for i, it in enumerate(items)]
        return scores.float().cpu().numpy(), best

    def _prepare_rows(self, items: list[tuple[str, ImageLike]], frames: np.ndarray, channels: str
                      ) -> list[dict[str, Any] | str]:  # fmt: skip
        """Prepare ``items`` (source, image) one after another into ``frames[i]``: per item its prepared inputs,
        or the message saying why it could not be read."""
        out: list[dict[str, Any] | str] = []
        for i, (src, image) in enumerate(items):
            try:
                out.append(self.prepare(image, channels, src, frames[i]))
            except (OSError, ValueError, TypeError, cv2.error) as exc:
                out.append(str(exc))
        return out

    def iter_predict(
        self,
        images: Iterable[ImageLike],
        *,
        top_k: int | None = None,
        threshold: float | None = 0.5,
        channels: str = "rgb",
        batch_size: int | None = None,
    ) -> Iterator[Prediction]:
        """Like :meth:`predict` but lazy, and an unreadable image yields a :class:`Prediction` with ``error``
        set instead of raising (the others go on)."""
        batch_size = self.batch_size_for(len(images) if isinstance(images, Sized) else None, batch_size)
        tagged = ((_source_name(im, i), im) for i, im in enumerate(images))
        chunks = _chunks(tagged, batch_size)
        processes = self.cpu_processes()
        if processes > 1:
            first = list(islice(chunks, processes))  # fewer batches than processes: fork only as many
            chunks = chain(first, chunks)
            if len(first) > 1 or self._pool is not None:
                yield from self._iter_processes(chunks, min(processes, len(first)), top_k, threshold, channels)
                return
        yield from self._iter_threads(chunks, batch_size, top_k, threshold, channels)

    def cpu_processes(self) -> int:
        """Prediction processes used on the CPU (1: threads in this process instead, see the module docstring)."""
        if self.device.type != "cpu" or not _can_fork():
            return 1
        if self.processes is not None:
            return max(1, int(self.processes))
        # PyTorch's threads count the machine's cores; a SLURM job or a container may be given fewer.
        return max(1, min(torch.get_num_threads(), len(os.sched_getaffinity(0))))

    def _fork_processes(self, processes: int) -> None:
        """Fork ``processes`` processes with one thread each, holding this predictor, as ``self._pool``."""
        if self.kind == "teacher" and not self._parent_warmed:
            # Once here, not once in each process: the RoI ops' imports (~1 s), the structured-edge model.
            f = int(self.info.frame_size)
            _label_made_up_image(self, np.empty((1, 3, f, f), np.float32))
            self._parent_warmed = True
        # Set before the fork, so that the children inherit the network instead of receiving it pickled.
        context = multiprocessing.get_context("fork")
        _FORKED.update(predictor=self, barrier=context.Barrier(processes))
        try:
            with warnings.catch_warnings():
                # Python >= 3.12 warns about fork() in a process with threads (OpenMP's, OpenCV's): the children
                # only run single-threaded code of their own, as PyTorch's DataLoader workers do.
                warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks",
                                        category=DeprecationWarning)  # fmt: skip
                self._pool = context.Pool(processes, initializer=_init_prediction_process)
                self._pool_width = processes
        finally:
            _FORKED.clear()

    def _iter_processes(self, chunks: Iterator[list[tuple[str, ImageLike]]], processes: int, top_k: int | None,
                        threshold: float | None, channels: str) -> Iterator[Prediction]:  # fmt: skip
        """CPU: forked processes, one thread each, each preparing and labelling whole batches: the kept ones
        (:meth:`start`), else ``processes`` new ones for this call."""
        if self._pool is None:
            # Kept for later calls: as many as the CPUs allow, not this call's needs.
            self._fork_processes(self.cpu_processes() if self._keep_processes else processes)
        pool, width, finished = self._pool, self._pool_width, False
        try:
            pending: deque[Any] = deque()
            for chunk in chunks:  # at most two batches per process queued: the images are not all read ahead
                pending.append(pool.apply_async(_predict_in_process, (chunk, top_k, threshold, channels)))
                if len(pending) >= 2 * width:
                    yield from pending.popleft().get()
            while pending:
                yield from pending.popleft().get()
            finished = True
        finally:
            # Kept processes outlive a finished call; an interrupted one (an error, Ctrl-C) takes them down
            # with its queued batches.
            if not (finished and self._keep_processes):
                self._stop_processes()

    def _iter_threads(self, chunks: Iterator[list[tuple[str, ImageLike]]], batch_size: int, top_k: int | None,
                      threshold: float | None, channels: str) -> Iterator[Prediction]:  # fmt: skip
        """This process: a thread pool prepares each batch (OpenCV releases the GIL), the network runs here."""
        f = int(self.info.frame_size)
        workers = max(1, self.workers)
        # On a GPU the batches are prepared ahead while it runs the network. On the CPU preparing and the network
        # take turns, each with every core: run side by side they compete for the same cores, and the network's
        # threads then wait on each other (measured: 25-40 % fewer images/s for the default student).
        ahead = 2 if self.device.type == "cuda" else 0

        # Batch buffers allocated once and reused in turn: a fresh one per batch costs the kernel's page faults
        # (zeroing ~20 MB per batch of 64 at 160 px), measured as slow as decoding the images.
        buffers = [np.empty((batch_size, 3, f, f), np.float32) for _ in range(ahead + 1)]
        with ThreadPoolExecutor(workers) as pool:

            def submit(chunk: list[tuple[str, ImageLike]], buffer: np.ndarray) -> Batch:
                # Each worker writes its slice of frames into the batch: no per-image array, no stacking.
                frames = buffer[: len(chunk)]
                step = -(-len(chunk) // workers)
                parts = [(chunk[a : a + step], frames[a : a + step]) for a in range(0, len(chunk), step)]
                slices = [(items, pool.submit(self._prepare_rows, items, rows, channels)) for items, rows in parts]
                return frames, slices

            pending: deque[Batch] = deque()
            submitted = 0

            def top_up() -> None:  # keep `ahead` batches in preparation besides the one the network takes next
                nonlocal submitted
                while len(pending) <= ahead and (chunk := next(chunks, None)) is not None:
                    pending.append(submit(chunk, buffers[submitted % len(buffers)]))
                    submitted += 1

            top_up()
            while pending:
                frames, slices = pending.popleft()
                done = [(src, it) for items, fut in slices for (src, _), it in zip(items, fut.result(), strict=True)]
                rows, scores, best = self._run(frames, done)
                top_up()  # its buffer is free again: the workers prepare the next batch while the labels are read
                yield from self._labels(done, rows, scores, best, top_k, threshold)

    def _predict_chunk(self, chunk: list[tuple[str, ImageLike]], frames: np.ndarray, top_k: int | None,
                       threshold: float | None, channels: str) -> list[Prediction]:  # fmt: skip
        """One batch, prepared one image after another into ``frames`` (float32[>= B, 3, F, F]), then labelled."""
        done = list(zip([src for src, _ in chunk], self._prepare_rows(chunk, frames, channels), strict=True))
        rows, scores, best = self._run(frames[: len(chunk)], done)
        return self._labels(done, rows, scores, best, top_k, threshold)

    def _run(self, frames: np.ndarray, done: list[tuple[str, dict[str, Any] | str]]
             ) -> tuple[list[int], np.ndarray, list | None]:  # fmt: skip
        """The network on a prepared batch's readable images: (their rows in ``done``, their scores, the
        teacher's best regions).

        Args:
            frames: float32[B, 3, F, F]; done: per image its source and prepared item or error message.
        """
        rows = [j for j, (_, it) in enumerate(done) if isinstance(it, dict)]
        if not rows:
            return rows, np.zeros((0, len(self.classes)), np.float32), None
        ok_frames = frames if len(rows) == len(done) else frames[rows]
        return rows, *self._forward(ok_frames, [done[j][1] for j in rows])

    def _labels(self, done: list[tuple[str, dict[str, Any] | str]], rows: list[int], scores: np.ndarray,
                best: list | None, top_k: int | None, threshold: float | None) -> list[Prediction]:  # fmt: skip
        """The :class:`Prediction` of each image of a batch, in order, from what :meth:`_run` returned."""
        results: dict[int, Prediction] = {}
        idx = {c: i for i, c in enumerate(self.classes)} if best is not None else {}
        for k, (j, labels) in enumerate(zip(rows, select_labels_batch(scores, self.classes, top_k, threshold),
                                            strict=True)):  # fmt: skip
            src, it = done[j]
            boxes = None
            if best is not None:
                boxes = {n: [float(v) for v in it["boxes_orig"][best[k][idx[n]]]] for n, _ in labels}
            results[j] = Prediction(src, labels, scores[k], boxes)
        return [results.get(j) or Prediction(src, error=str(it)) for j, (src, it) in enumerate(done)]

    def predict(
        self,
        images: ImageLike | Sequence[ImageLike],
        *,
        top_k: int | None = None,
        threshold: float | None = 0.5,
        channels: str = "rgb",
        batch_size: int | None = None,
        errors: str = "raise",
    ) -> list[Prediction]:
        """Label images.

        Args:
            images: one image or a list of: file paths (str / Path, read with OpenCV), numpy uint8 arrays
                [H, W, 3] in ``channels`` order (``"rgb"``, the default, for PIL / imageio / matplotlib;
                ``"bgr"`` for ``cv2.imread``), [H, W] grey or [H, W, 4] (alpha dropped), or PIL images.
            top_k: keep at most the k best labels (None: all); threshold: keep labels with score >= it
                (None: no threshold). Default: every label scoring at least 0.5.
            batch_size: images per network call (default :attr:`default_batch_size`).
            errors: ``"raise"`` (ValueError naming the image) or ``"keep"`` (a Prediction with ``error``).
        Returns:
            one :class:`Prediction` per image, in order; ``.scores`` has all C scores.
        """
        if isinstance(images, str | os.PathLike | np.ndarray) or type(images).__module__.startswith("PIL."):
            images = [images]
        out = list(self.iter_predict(images, top_k=top_k, threshold=threshold, channels=channels,
                                     batch_size=batch_size))  # fmt: skip
        if errors == "raise":
            for p in out:
                if p.error is not None:
                    raise ValueError(str(p.error_message()))
        elif errors != "keep":
            raise ValueError(f"errors must be 'raise' or 'keep', got {errors!r}")
        return out

    def scores(
        self, images: Sequence[ImageLike], *, channels: str = "rgb", batch_size: int | None = None
    ) -> np.ndarray:
        """float32[N, C] scores of N images (raises on an unreadable image)."""
        preds = self.predict(images, top_k=None, threshold=None, channels=channels, batch_size=batch_size)
        return np.stack([p.scores for p in preds]) if preds else np.zeros((0, len(self.classes)), np.float32)

    def throughput(self, images: Sequence[ImageLike], batch_size: int | None = None) -> float:
        """Images per second of :meth:`iter_predict` on ``images`` (decode, resize and network)."""
        t0 = time.perf_counter()
        n = sum(1 for _ in self.iter_predict(images, batch_size=batch_size))
        return n / max(time.perf_counter() - t0, 1e-9)


def draw_boxes(image_bgr: np.ndarray, prediction: Prediction) -> np.ndarray:
    """A copy of uint8[H, W, 3] BGR ``image_bgr`` with the teacher's box, name and score of each label of
    ``prediction`` (as :meth:`Predictor.predict` returned it for this image)."""
    out = image_bgr.copy()
    h, w = out.shape[:2]
    thick, scale = max(1, round(max(h, w) / 300)), max(0.35, max(h, w) / 800)
    for i, (name, score) in enumerate(prediction.labels):
        if not prediction.boxes or name not in prediction.boxes:
            continue
        hue = int(180 * ((i * 0.618) % 1.0))  # well-separated hues, stable per rank
        colour = tuple(int(c) for c in cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0])
        x1, y1, x2, y2 = (round(v) for v in prediction.boxes[name])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        text = f"{name} {score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(y1, th + base)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), colour, -1)
        cv2.putText(out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


# The predictor, batch buffer and warm-up barrier of a forked prediction process (set in the parent just before
# the fork).
_FORKED: dict[str, Any] = {}


def _can_fork() -> bool:
    """Forked prediction processes: Linux only (macOS system libraries are not fork-safe), and not from a
    daemonic process (a DataLoader or Pool worker may not have children)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)  # fmt: skip


def _init_prediction_process() -> None:
    # One process per core, one thread per process: no network threads waiting on each other.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the pool, no traceback per child


def _frames_buffer(predictor: Predictor, batch_size: int) -> np.ndarray:
    """This process's batch buffer, float32[>= batch_size, 3, F, F]: allocated once, grown when needed."""
    frames = _FORKED.get("frames")
    if frames is None or len(frames) < batch_size:
        f = int(predictor.info.frame_size)
        frames = _FORKED["frames"] = np.empty((batch_size, 3, f, f), np.float32)
    return frames


def _predict_in_process(chunk: list[tuple[str, ImageLike]], top_k: int | None, threshold: float | None,
                        channels: str) -> list[Prediction]:  # fmt: skip
    predictor: Predictor = _FORKED["predictor"]
    return predictor._predict_chunk(chunk, _frames_buffer(predictor, len(chunk)), top_k, threshold, channels)


def _label_made_up_image(predictor: Predictor, frames: np.ndarray) -> None:
    """Label one made-up JPEG into ``frames``: what a first batch does once (imports, the decoder, the teacher's
    proposal model: 2 s for a teacher), done ahead."""
    _, jpeg = cv2.imencode(".jpg", np.full((96, 128, 3), 128, np.uint8))
    predictor._predict_chunk([("<warm-up>", cv2.imdecode(jpeg, cv2.IMREAD_COLOR))], frames, None, None, "bgr")


def _warm_up_process(batch_size: int) -> None:
    """What a process's first batch would do once anyway, done ahead: map the batch buffer's memory and label
    a made-up image; no batch is computed for nothing. Then wait for the other processes, so that each process
    runs this once."""
    predictor: Predictor = _FORKED["predictor"]
    frames = _frames_buffer(predictor, batch_size)
    frames.fill(0.0)
    _label_made_up_image(predictor, frames)
    _FORKED["barrier"].wait(timeout=600)


def _find_beside(path: str, model_path: str) -> str:
    """A file a model file names (the run's structured-edge model; relative paths are relative to the workflow
    directory): as given, else, when relative, from a folder above the model file."""
    if os.path.exists(path):
        return path
    if not os.path.isabs(path):
        for folder in Path(model_path).resolve().parents:
            if (folder / path).exists():
                return str(folder / path)
    raise FileNotFoundError(
        f"{model_path} scores proposals on structured edges from {path}, found neither from "
        f"here nor above the model file: pass your copy (kdwsd predict --structured-model FILE)"
    )


def _source_name(image: ImageLike, i: int) -> str:
    if isinstance(image, str | os.PathLike):
        return os.fspath(image)
    return f"<{'PIL' if type(image).__module__.startswith('PIL.') else 'array'} {i}>"


def _chunks(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for it in items:
        chunk.append(it)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_model(
    path: str | os.PathLike[str],
    *,
    device: str = "auto",
    expect_kind: str | None = None,
    expect_classes: int | Sequence[str] | None = None,
    workers: int | None = None,
    proposals: str | None = None,
    structured_model: str | os.PathLike[str] | None = None,
    processes: int | None = None,
) -> Predictor:
    """Load a kdwsd model file (``weights_only=True``) as a :class:`Predictor`.

    Args:
        path: a student or teacher ``.pt`` written by the pipeline (``results/<run>/models/``).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N``.
        expect_kind: ``student`` / ``teacher`` to refuse the other; expect_classes: a class count or the
            class names in order, to refuse a model trained on another label set.
        workers: threads decoding and resizing images in this process (GPU, or one CPU process; default:
            min(4, CPUs)).
        processes: CPU only: forked processes labelling whole batches, one thread each (default: PyTorch's
            thread count, at most the CPUs this process may use; 1 = threads in this process). Linux only;
            elsewhere always 1.
        proposals: teacher only: the proposal method for new images (default: the one it was trained with,
            recorded in the file; a teacher trained on ground-truth boxes needs one).
        structured_model: teacher only: the structured-edge model file, when the path the file records (relative
            to the workflow directory) is not found from here or above the model file.
    Raises:
        kdwsd.modelfile.ModelFileError: naming the file and both values on a kind / class mismatch.
    """
    classes = expect_classes if expect_classes is None or isinstance(expect_classes, int) else list(expect_classes)
    info = read_model_file(path, expect_kind=expect_kind, expect_classes=classes)
    return Predictor(info, device=device, workers=workers, proposals=proposals, structured_model=structured_model,
                     processes=processes)  # fmt: skip
