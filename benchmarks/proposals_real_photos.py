"""EdgeBoxes recall and speed on real photographs that ship inside installed packages (no download).

Photos: scikit-image ``astronaut``, ``chelsea``, ``coffee``, ``rocket``, ``stereo_motorcycle`` (left),
scikit-learn ``china``, ``flower``, matplotlib ``grace_hopper`` — 8 colour photos, 43 hand-drawn
ground-truth boxes (30 whole objects + 13 object parts). Because 8 photos give a noisy estimate, each
variant also runs on 4 random crops per photo (55-85 % of each side, fixed seed; a box is kept, clipped,
when at least half of it is inside the crop): "photos + crops" = 40 images, 152 boxes.

For each edge-map / EdgeBoxes variant it prints recall at IoU 0.5 and 0.7 among the top 500 boxes and the
speed on one core (``cv2.setNumThreads(1)``; images/s = images / CPU seconds of ``edge_boxes``, image
decoding excluded). Variants are the defaults of ``kdwsd.proposals`` with one or more parameters changed;
the ``path:`` rows go step by step from the naive edge map to the defaults.

    .venv/bin/python benchmarks/proposals_real_photos.py [--variants NAME ...] [--crops 4] [--draw DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kdwsd.proposals import edge_boxes, recall_at_iou

OBJ, PART = True, False

# Ground truth: (x1, y1, x2, y2) inclusive pixels, whole object (OBJ) or object part (PART), description.
GROUND_TRUTH: dict[str, list[tuple[tuple[int, int, int, int], bool, str]]] = {
    "astronaut": [  # 512 x 512: astronaut portrait with flag, shuttle model and helmet
        ((18, 14, 362, 511), OBJ, "the astronaut (hair to bottom edge, orange suit)"),
        ((277, 343, 511, 511), OBJ, "black helmet, bottom right, cut by the image border"),
        ((0, 0, 97, 511), OBJ, "US flag on the left, visible part"),
        ((354, 0, 470, 288), OBJ, "space-shuttle model with its stand, top right"),
        ((152, 14, 302, 190), PART, "head: hair to chin"),
        ((132, 346, 212, 424), PART, "round mission patch on the chest"),
        ((279, 339, 329, 376), PART, "name tag right of the zipper"),
    ],
    "chelsea": [  # 451 x 300: close-up of a tabby cat's head
        ((0, 0, 420, 299), OBJ, "the cat (head fills the frame; right ear to x~420)"),
        ((135, 85, 210, 148), PART, "left eye"),
        ((292, 108, 345, 163), PART, "right eye"),
        ((235, 222, 294, 268), PART, "nose"),
    ],
    "coffee": [  # 600 x 400: espresso cup on a saucer on a wooden table
        ((172, 18, 410, 308), OBJ, "cup with handle"),
        ((75, 70, 480, 390), OBJ, "saucer"),
        ((325, 65, 425, 328), OBJ, "spoon on the saucer, right of the cup"),
    ],
    "rocket": [  # 640 x 427: rocket on the launch pad at dusk between towers
        ((305, 126, 340, 405), OBJ, "the rocket (tip to pad)"),
        ((0, 0, 90, 426), OBJ, "lattice tower, left edge"),
        ((558, 0, 639, 426), OBJ, "lattice tower, right edge"),
        ((165, 122, 210, 420), OBJ, "lightning tower, left of the rocket"),
        ((437, 122, 480, 420), OBJ, "lightning tower, right of the rocket"),
        ((265, 405, 380, 426), OBJ, "launch platform under the rocket"),
    ],
    "stereo_motorcycle": [  # 741 x 500 (left image): motorcycle in a garage with shelves
        ((90, 75, 685, 452), OBJ, "the motorcycle (rear light to front wheel, mirrors to wheels)"),
        ((505, 290, 685, 452), PART, "front wheel"),
        ((120, 232, 285, 402), PART, "rear wheel"),
        ((40, 105, 290, 308), OBJ, "wooden bench behind the motorcycle"),
        ((0, 120, 40, 230), OBJ, "bicycle at the left edge, visible part"),
        ((527, 28, 590, 100), OBJ, "cardboard box on the top shelf"),
        ((612, 186, 685, 277), OBJ, "cardboard box on the lower shelf, right"),
        ((520, 180, 618, 248), OBJ, "red storage bin on the lower shelf"),
        ((402, 52, 418, 93), OBJ, "yellow bottle on the top shelf (small)"),
        ((505, 122, 562, 188), PART, "headlight"),
    ],
    "china": [  # 640 x 427: pagoda (Summer Palace) above a lake and trees
        ((62, 28, 372, 426), OBJ, "the pagoda (spire to bottom edge)"),
        ((93, 28, 320, 140), PART, "top roof of the pagoda"),
        ((423, 224, 502, 242), OBJ, "island in the lake (small)"),
        ((545, 135, 639, 426), OBJ, "tree at the right edge"),
    ],
    "flower": [  # 640 x 427: dahlia in front of dark foliage
        ((170, 85, 447, 357), OBJ, "the dahlia"),
        ((287, 375, 468, 426), OBJ, "second dahlia cut by the bottom edge"),
        ((575, 390, 622, 426), OBJ, "flower bud, bottom right (small)"),
    ],
    "grace_hopper": [  # 512 x 600: portrait of Grace Hopper in uniform before a flag
        ((10, 22, 511, 599), OBJ, "the person (cap to bottom edge)"),
        ((148, 22, 372, 178), OBJ, "uniform cap"),
        ((0, 0, 235, 599), OBJ, "US flag on the left, visible part"),
        ((175, 168, 362, 232), PART, "glasses"),
        ((78, 482, 168, 517), PART, "name tag"),
        ((322, 488, 455, 527), PART, "ribbon bar"),
    ],
}

# The naive edge map: grey Sobel magnitude scaled by its maximum, thinned, at the original resolution,
# with OpenCV's EdgeBoxes defaults (minBoxArea 1000, maxAspectRatio 3).
NAIVE: dict[str, Any] = dict(
    color_space="gray", smoothing_sigma=0.0, surround=0.0, normalize_percentile=100.0, max_side=None,
    min_box_area=1000.0, max_aspect_ratio=3.0,
)  # fmt: skip
_PATH_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("naive: grey Sobel / max, NMS, native res, OpenCV EdgeBoxes defaults", {}),
    ("+ Lab colour gradients (max over channels)", dict(color_space="lab")),
    ("+ Gaussian smoothing sigma 1", dict(smoothing_sigma=1.0)),
    ("+ normalise by 99th percentile", dict(normalize_percentile=99.0)),
    ("+ work at max side 320", dict(max_side=320)),
    ("+ surround suppression k=1", dict(surround=1.0)),
    ("+ max_aspect_ratio 10 (= defaults)", dict(max_aspect_ratio=10.0)),
]


def _path_variants() -> list[tuple[str, dict[str, Any]]]:
    out, params = [], dict(NAIVE)
    for i, (label, change) in enumerate(_PATH_STEPS):
        params = {**params, **change}
        out.append((f"path{i}", {"label": label, **params}))
    return out


VARIANTS: list[tuple[str, dict[str, Any]]] = [
    *_path_variants(),
    ("defaults", {"label": "defaults"}),
    ("no_nms", {"label": "defaults, no NMS", "nms": False}),
    ("gray", {"label": "defaults, grey", "color_space": "gray"}),
    ("rgb", {"label": "defaults, RGB", "color_space": "rgb"}),
    ("luv", {"label": "defaults, Luv", "color_space": "luv"}),
    ("sigma0.5", {"label": "defaults, smoothing sigma 0.5", "smoothing_sigma": 0.5}),
    ("sigma2", {"label": "defaults, smoothing sigma 2", "smoothing_sigma": 2.0}),
    ("scales1,.5", {"label": "defaults, scales (1, 0.5)", "scales": [1.0, 0.5]}),
    ("surround0.5", {"label": "defaults, surround 0.5", "surround": 0.5}),
    ("surround1.5", {"label": "defaults, surround 1.5", "surround": 1.5}),
    ("sur_sig4", {"label": "defaults, surround_sigma 4", "surround_sigma": 4.0}),
    ("sur_sig16", {"label": "defaults, surround_sigma 16", "surround_sigma": 16.0}),
    ("pct99.5", {"label": "defaults, percentile 99.5", "normalize_percentile": 99.5}),
    ("orient2", {"label": "defaults, orientation_radius 2", "orientation_radius": 2}),
    ("nms_r1", {"label": "defaults, nms_radius 1", "nms_radius": 1}),
    ("side256", {"label": "defaults, max side 256", "max_side": 256}),
    ("side400", {"label": "defaults, max side 400", "max_side": 400}),
    ("native", {"label": "defaults, native resolution", "max_side": None}),
    ("ar3", {"label": "defaults, max_aspect_ratio 3", "max_aspect_ratio": 3.0}),
    ("ar6", {"label": "defaults, max_aspect_ratio 6", "max_aspect_ratio": 6.0}),
    ("area500", {"label": "defaults, min_box_area 500", "min_box_area": 500.0}),
    ("area2000", {"label": "defaults, min_box_area 2000", "min_box_area": 2000.0}),
    ("area4000", {"label": "defaults, min_box_area 4000", "min_box_area": 4000.0}),
    ("alpha0.6", {"label": "defaults, alpha 0.6", "alpha": 0.6}),
    ("alpha0.7", {"label": "defaults, alpha 0.7", "alpha": 0.7}),
    ("beta0.7", {"label": "defaults, beta 0.7", "beta": 0.7}),
    ("beta0.8", {"label": "defaults, beta 0.8", "beta": 0.8}),
    ("kappa1.25", {"label": "defaults, kappa 1.25", "kappa": 1.25}),
    ("cluster1", {"label": "defaults, cluster_min_mag 1", "cluster_min_mag": 1.0}),
    ("edgemin0.05", {"label": "defaults, edge_min_mag 0.05", "edge_min_mag": 0.05}),
    ("merge1", {"label": "defaults, edge_merge_thr 1", "edge_merge_thr": 1.0}),
]


@dataclass
class Sample:
    """One benchmark image and its ground truth (float32 [G, 4] boxes, bool [G] is-object)."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    is_object: np.ndarray
    is_crop: bool


def load_photos() -> dict[str, np.ndarray]:
    """The 8 photos as uint8 [H, W, 3] RGB."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(skimage.data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")}
    photos["stereo_motorcycle"] = skimage.data.stereo_motorcycle()[0]
    sklearn_images = load_sample_images()
    for filename, image in zip(sklearn_images.filenames, sklearn_images.images, strict=True):
        photos[Path(filename).stem] = image
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        photos["grace_hopper"] = np.asarray(Image.open(handle).convert("RGB"))
    return {name: np.ascontiguousarray(photos[name], dtype=np.uint8) for name in GROUND_TRUTH}


def make_samples(photos: dict[str, np.ndarray], crops_per_photo: int, seed: int = 0) -> list[Sample]:
    """The full photos, then ``crops_per_photo`` random crops of each (boxes clipped, >= 50 % inside)."""
    rng = np.random.default_rng(seed)
    samples = []
    for name, image in photos.items():
        gt = GROUND_TRUTH[name]
        boxes = np.array([b for b, _, _ in gt], np.float32)
        is_object = np.array([o for _, o, _ in gt])
        samples.append(Sample(name, image, boxes, is_object, False))
        height, width = image.shape[:2]
        for k in range(crops_per_photo):
            fw, fh = rng.uniform(0.55, 0.85, 2)
            w, h = int(width * fw), int(height * fh)
            x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            clipped = boxes - np.array([x0, y0, x0, y0], np.float32)
            clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, w - 1)
            clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, h - 1)
            area = lambda b: (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)  # noqa: E731
            inside = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
            keep = inside & (area(clipped) >= 0.5 * area(boxes))
            if keep.any():
                crop = np.ascontiguousarray(image[y0 : y0 + h, x0 : x0 + w])
                samples.append(Sample(f"{name}_crop{k}", crop, clipped[keep], is_object[keep], True))
    return samples


def run_variant(samples: list[Sample], params: dict[str, Any], max_boxes: int) -> dict[str, float]:
    """Recall and one-core speed of one parameter set."""
    proposals, cpu = [], 0.0
    for sample in samples:
        start = time.process_time()
        boxes, _ = edge_boxes(sample.image, max_boxes, **params)
        cpu += time.process_time() - start
        proposals.append(boxes)
    photos = [i for i, s in enumerate(samples) if not s.is_crop]
    r_photos = recall_at_iou([proposals[i] for i in photos], [samples[i].boxes for i in photos])
    r_objects = recall_at_iou(
        [proposals[i] for i in photos], [samples[i].boxes[samples[i].is_object] for i in photos], (0.7,)
    )
    r_all = recall_at_iou(proposals, [s.boxes for s in samples])
    return {
        "photos_r50": r_photos[0.5],
        "photos_r70": r_photos[0.7],
        "objects_r70": r_objects[0.7],
        "all_r50": r_all[0.5],
        "all_r70": r_all[0.7],
        "images_per_s": len(samples) / cpu,
    }


def draw_ground_truth(photos: dict[str, np.ndarray], out_dir: Path) -> None:
    """Write each photo with its numbered ground-truth boxes as PNG (green: object, yellow: part)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, image in photos.items():
        canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        for i, ((x1, y1, x2, y2), is_object, _) in enumerate(GROUND_TRUTH[name]):
            colour = (0, 200, 0) if is_object else (0, 220, 255)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
            cv2.putText(canvas, str(i), (x1 + 3, y1 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)
        cv2.imwrite(str(out_dir / f"{name}_gt.png"), canvas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--crops", type=int, default=4, help="random crops per photo (default 4)")
    parser.add_argument("--max-boxes", type=int, default=500)
    parser.add_argument("--draw", type=Path, help="write the photos with their ground truth to this folder")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
    photos = load_photos()
    if args.draw:
        draw_ground_truth(photos, args.draw)
    samples = make_samples(photos, args.crops)
    n_crops = sum(s.is_crop for s in samples)
    n_boxes = sum(len(s.boxes) for s in samples)
    n_photo_boxes = sum(len(s.boxes) for s in samples if not s.is_crop)
    n_objects = sum(int(s.is_object.sum()) for s in samples if not s.is_crop)
    known = dict(VARIANTS)
    names = args.variants or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(known)}")

    print(
        f"{len(photos)} photos ({n_photo_boxes} boxes, {n_objects} whole objects) + {n_crops} crops "
        f"({n_boxes} boxes in all); top {args.max_boxes} boxes; images/s on one core (CPU time)\n"
    )
    header = (
        f"| {'variant':<11} | {'description':<68} | photos R@0.5 | photos R@0.7 | objects R@0.7 "
        f"| +crops R@0.5 | +crops R@0.7 | img/s |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name in names:
        params = dict(known[name])
        label = params.pop("label")
        r = run_variant(samples, params, args.max_boxes)
        print(
            f"| {name:<11} | {label:<68} | {r['photos_r50']:12.3f} | {r['photos_r70']:12.3f} "
            f"| {r['objects_r70']:13.3f} | {r['all_r50']:12.3f} | {r['all_r70']:12.3f} "
            f"| {r['images_per_s']:5.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
