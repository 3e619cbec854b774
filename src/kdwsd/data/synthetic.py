"""The embedded default dataset: deterministic synthetic multi-label scenes (no download).

Each image holds 1–4 objects from ten shape classes with random colour, texture, rotation and a wide
size range (small objects included), on a cluttered background with class-less distractor shapes. Class
frequencies are long-tailed, some classes tend to be small, and classes co-occur through three "scene
types", loosely as in COCO. Ground-truth boxes go into the COCO JSON for proposal QC and CorLoc only.

Why it is a useful stand-in: small objects that a high-resolution detector can still see are a few pixels
wide at the student's low resolution, so the student without distillation is clearly below the teacher —
the gap the paper's method closes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from kdwsd.boxes import iou_inclusive
from kdwsd.data.prepared import write_prepared_dataset

__all__ = ["CLASS_NAMES", "SyntheticConfig", "generate_dataset", "render_image"]

CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "hexagon",
    "crescent",
    "arrow",
    "ell",
)
# Scene types: each favours a group of classes (co-occurrence structure).
SCENES: tuple[tuple[int, ...], ...] = ((0, 5, 7), (1, 4, 6, 9), (2, 3, 8))
# Hue (OpenCV 0-180) shared by pairs of classes: colour narrows an object down to two classes, shape (which
# needs resolution) decides. Distractors use the same hues, so colour alone does not say "object".
PAIR_HUES: tuple[int, ...] = (0, 110, 25, 145, 110, 60, 0, 145, 25, 60)
# Fine surface pattern of each class (0 = stripes, 1 = checker), different within every hue pair: with a
# period of a few pixels it is visible at the teacher's resolution and blurred away at the student's.
CLASS_PATTERN: tuple[int, ...] = (0, 0, 0, 0, 1, 0, 1, 1, 1, 1)
# Classes that tend to be small (like fork / bottle in COCO): their sizes are drawn from a smaller range.
SMALL_CLASSES: frozenset[int] = frozenset({3, 4, 8})


@dataclass(frozen=True)
class SyntheticConfig:
    """Generator knobs (the ``dataset`` section of ``config/config.yaml``)."""

    seed: int = 0
    splits: tuple[tuple[str, int], ...] = (("train", 600), ("val", 200), ("test", 400))
    min_side: int = 224
    max_side: int = 320
    min_objects: int = 1
    max_objects: int = 4
    min_radius: float = 5.0
    max_radius: float = 56.0
    small_class_max_radius: float = 16.0
    scene_weight: float = 0.7
    frequency_decay: float = 0.6
    max_distractors: int = 3
    clutter_lines: int = 12
    colour_cue: float = 0.9  # probability that an object is painted in its class pair's hue
    pattern_cue: float = 0.9  # probability that an object carries its class's fine pattern
    pattern_period: tuple[float, float] = (3.0, 5.0)  # pixels, at the image's native resolution
    jpeg_quality: int = 92

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SyntheticConfig:
        kw = dict(d)
        kw.pop("name", None)
        if "pattern_period" in kw:
            kw["pattern_period"] = tuple(float(v) for v in kw["pattern_period"])
        if "splits" in kw:
            kw["splits"] = tuple((str(k), int(v)) for k, v in dict(kw["splits"]).items())
        return cls(**kw)


# --------------------------------------------------------------------------------------------- shapes
def _regular_polygon(n: int, r: float, phase: float) -> np.ndarray:
    t = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _star(r: float, phase: float) -> np.ndarray:
    t = phase + np.arange(10) * math.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, r, 0.42 * r)
    return np.stack([rad * np.cos(t), rad * np.sin(t)], axis=1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _shape_mask(cls: int, cx: float, cy: float, r: float, angle: float, h: int, w: int) -> np.ndarray:
    """uint8[H, W] mask of one object of class ``cls`` centred at (cx, cy) with size ``r``."""
    mask = np.zeros((h, w), np.uint8)
    s = 4  # sub-pixel precision for cv2 drawing
    centre = np.array([cx, cy])

    def poly(points: np.ndarray, value: int = 255) -> None:
        pts = np.round((points + centre) * (1 << s)).astype(np.int32)
        cv2.fillPoly(mask, [pts], value, lineType=cv2.LINE_AA, shift=s)

    def disc(x: float, y: float, rad: float, value: int) -> None:
        cv2.circle(mask, (round(x * 16), round(y * 16)), max(1, round(rad * 16)), value, -1, cv2.LINE_AA, 4)

    if cls == 0:  # circle
        disc(cx, cy, r, 255)
    elif cls == 1:  # square
        poly(_regular_polygon(4, r * 1.1, angle))
    elif cls == 2:  # triangle
        poly(_regular_polygon(3, r * 1.15, angle))
    elif cls == 3:  # star
        poly(_star(r * 1.2, angle))
    elif cls == 4:  # cross
        a, b = r, 0.33 * r
        bar = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
        poly(_rotate(bar, angle))
        poly(_rotate(bar[:, ::-1], angle))
    elif cls == 5:  # ring
        disc(cx, cy, r, 255)
        disc(cx, cy, 0.55 * r, 0)
    elif cls == 6:  # hexagon
        poly(_regular_polygon(6, r, angle))
    elif cls == 7:  # crescent
        disc(cx, cy, r, 255)
        off = _rotate(np.array([[0.45 * r, 0.0]]), angle)[0]
        disc(cx + off[0], cy + off[1], 0.85 * r, 0)
    elif cls == 8:  # arrow
        pts = np.array(
            [[-r, -0.2 * r], [0.2 * r, -0.2 * r], [0.2 * r, -0.6 * r], [r, 0], [0.2 * r, 0.6 * r],
             [0.2 * r, 0.2 * r], [-r, 0.2 * r]]
        )  # fmt: skip
        poly(_rotate(pts, angle))
    elif cls == 9:  # ell (L-shape)
        pts = np.array([[-0.7, -r / r], [-0.2, -1], [-0.2, 0.5], [0.7, 0.5], [0.7, 1], [-0.7, 1]]) * r
        poly(_rotate(pts, angle))
    else:
        raise ValueError(f"unknown class {cls}")
    return mask


def _distractor_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An irregular blob or scribble that belongs to no class."""
    mask = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    if rng.random() < 0.5:
        n = int(rng.integers(5, 10))
        t = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = rng.uniform(8, 40) * rng.uniform(0.3, 1.0, n)
        pts = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA)
    else:
        pts = (np.array([cx, cy]) + np.cumsum(rng.normal(0, 12, (6, 2)), 0)).astype(np.int32)
        cv2.polylines(mask, [pts], False, 255, int(rng.integers(2, 5)), cv2.LINE_AA)
    return mask


# --------------------------------------------------------------------------------------------- paint
def _random_colour(rng: np.random.Generator, hue: int | None = None) -> np.ndarray:
    h = int(rng.integers(0, 180)) if hue is None else (hue + int(rng.integers(-6, 7))) % 180
    hsv = np.uint8([[[h, rng.integers(120, 256), rng.integers(110, 256)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _texture(
    rng: np.random.Generator, h: int, w: int, hue: int | None = None, kind: int | None = None,
    period: tuple[float, float] = (3.0, 5.0),
) -> np.ndarray:  # fmt: skip
    """float32[H, W, 3] fill: stripes (kind 1), checker (2), noise (3) or solid (0), main colour of ``hue``."""
    c1 = _random_colour(rng, hue)
    if kind is not None:  # a class pattern: fine, strong, in a darker/lighter shade of the same colour
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        p = float(rng.uniform(*period))
        if kind == 1:
            a = rng.uniform(0, math.pi)
            t = np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / p) > 0
        else:
            t = ((xx // (p / 2)) + (yy // (p / 2))) % 2 > 0
        shade = float(rng.uniform(0.35, 0.6))
        return c1 * (1 - shade * t.astype(np.float32)[..., None])
    c2 = _random_colour(rng)
    kind = rng.integers(0, 4)
    if kind == 0:
        t = np.zeros((h, w), np.float32)
    elif kind == 1:
        period, angle = rng.uniform(4, 12), rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0).astype(
            np.float32
        )
    elif kind == 2:
        p = int(rng.integers(3, 9))
        yy, xx = np.mgrid[0:h, 0:w]
        t = (((xx // p) + (yy // p)) % 2).astype(np.float32)
    else:
        t = rng.random((h, w)).astype(np.float32)
    mix = float(rng.uniform(0.15, 0.5))  # keep a dominant colour
    return c1 * (1 - mix * t[..., None]) + c2 * (mix * t[..., None])


def _background(rng: np.random.Generator, h: int, w: int, n_lines: int) -> np.ndarray:
    a, b = _random_colour(rng) * 0.6 + 40, _random_colour(rng) * 0.6 + 40
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = a * (1 - ramp) + b * ramp + np.zeros((h, 1, 1), np.float32)
    low = cv2.resize(rng.normal(0, 18, (h // 16 + 1, w // 16 + 1, 3)).astype(np.float32), (w, h))
    img = img + low + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    for _ in range(int(rng.integers(n_lines // 2, n_lines + 1))):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour = tuple(float(v) for v in _random_colour(rng) * 0.8)
        cv2.line(img, p1, p2, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def _composite(img: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> None:
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    img *= 1 - alpha
    img += alpha * fill


def _mask_box(mask: np.ndarray) -> list[float] | None:
    ys, xs = np.nonzero(mask > 127)
    if len(xs) == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def class_prior(cfg: SyntheticConfig) -> np.ndarray:
    """float64[C] long-tailed class frequencies (class 0 most frequent)."""
    p = 1.0 / (np.arange(len(CLASS_NAMES)) + 1.0) ** cfg.frequency_decay
    return p / p.sum()


def render_image(
    rng: np.random.Generator, cfg: SyntheticConfig
) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    """Render one scene.

    Returns:
        image uint8[H, W, 3] RGB and its objects as ``(class_index, [x1, y1, x2, y2])`` inclusive pixels.
    """
    h = int(rng.integers(cfg.min_side, cfg.max_side + 1))
    w = int(rng.integers(cfg.min_side, cfg.max_side + 1))
    img = _background(rng, h, w, cfg.clutter_lines)
    prior = class_prior(cfg)
    scene = SCENES[int(rng.integers(0, len(SCENES)))]
    scene_p = np.zeros_like(prior)
    scene_p[list(scene)] = prior[list(scene)]
    mixture = cfg.scene_weight * scene_p / scene_p.sum() + (1 - cfg.scene_weight) * prior

    layers: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
        hue = PAIR_HUES[int(rng.integers(len(PAIR_HUES)))] if rng.random() < cfg.colour_cue else None
        layers.append((_distractor_mask(rng, h, w), _texture(rng, h, w, hue)))
    objects: list[tuple[int, list[float]]] = []
    n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    for _ in range(n_obj * 10):  # rejection sampling of placements
        if len(objects) == n_obj:
            break
        cls = int(rng.choice(len(prior), p=mixture))
        r_max = cfg.small_class_max_radius if cls in SMALL_CLASSES else cfg.max_radius
        r = float(np.exp(rng.uniform(math.log(cfg.min_radius), math.log(r_max))))
        r = min(r, 0.45 * min(h, w))
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        mask = _shape_mask(cls, cx, cy, r, float(rng.uniform(0, 2 * math.pi)), h, w)
        box = _mask_box(mask)
        if box is None or any(iou_inclusive(box, b) > 0.2 for _, b in objects):
            continue
        objects.append((cls, box))
        hue = PAIR_HUES[cls] if rng.random() < cfg.colour_cue else None
        pattern = 1 + CLASS_PATTERN[cls] if rng.random() < cfg.pattern_cue else None
        layers.append((mask, _texture(rng, h, w, hue, pattern, cfg.pattern_period)))
    # objects are painted after distractors so the ground-truth boxes stay fully visible
    for mask, fill in layers:
        _composite(img, mask, fill)
    return np.clip(img, 0, 255).astype(np.uint8), objects


def generate_dataset(
    cfg: SyntheticConfig,
    out_dir: Path | str,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Render all splits into ``out_dir`` in the prepared-dataset layout. Returns the data report."""
    out = Path(out_dir)
    splits: dict[str, dict[str, Any]] = {}
    roots: dict[str, str] = {}
    report: dict[str, Any] = {"generator": "kdwsd.data.synthetic", "config": _asdict(cfg), "splits": {}}
    ann_id = 1
    for split_index, (split, n) in enumerate(cfg.splits):
        img_dir = out / "images" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        digest = hashlib.sha256()
        for i in tqdm(range(n), desc=f"synthetic {split}", disable=not progress):
            rng = np.random.default_rng([cfg.seed, split_index, i])
            image, objects = render_image(rng, cfg)
            image_id = (split_index + 1) * 1_000_000 + i
            name = f"{image_id}.jpg"
            ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            if not ok:
                raise RuntimeError(f"could not encode synthetic image {name}")
            (img_dir / name).write_bytes(buf.tobytes())
            digest.update(buf.tobytes())
            images.append({"id": image_id, "file_name": name, "height": image.shape[0], "width": image.shape[1]})
            for cls, (x1, y1, x2, y2) in objects:
                w, h = x2 - x1 + 1, y2 - y1 + 1
                annotations.append(
                    {"id": ann_id, "image_id": image_id, "category_id": cls + 1, "bbox": [x1, y1, w, h],
                     "area": w * h, "iscrowd": 0}
                )  # fmt: skip
                ann_id += 1
        splits[split] = {"images": images, "annotations": annotations}
        roots[split] = f"images/{split}"
        report["splits"][split] = {"images": n, "objects": len(annotations), "sha256": digest.hexdigest()}
        log(f"synthetic {split}: {n} images, {len(annotations)} objects")
    classes = [(i + 1, name) for i, name in enumerate(CLASS_NAMES)]
    write_prepared_dataset(out, "synthetic", classes, splits, roots, report)
    return report


def _asdict(cfg: SyntheticConfig) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(cfg)
    d["splits"] = dict(cfg.splits)
    return d
