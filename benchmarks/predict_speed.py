"""`kdwsd predict` throughput against the student network's, on a finished run (CPU by default).

Reads the student's images/s measured by the efficiency stage (``<run>/efficiency.json``: network only, on
frames already decoded and normalised) and times, on the run's test images:

* ``network``: the same measurement here, now (the machine may be busier or idler than during the run);
* ``predict``: :meth:`kdwsd.inference.Predictor.iter_predict` on the image files (decode, resize, normalise
  and network: what ``kdwsd predict FOLDER`` does, without printing), best of ``--repeat`` passes (the first
  pass also warms the OS file cache);
* the cost of each preprocessing step alone, per image, on one thread.

    PYTHONPATH=src python benchmarks/predict_speed.py [--run results/synthetic] [--model kd_full] [--images 400]
    PYTHONPATH=src python benchmarks/predict_speed.py --paper config/coco2014.yaml [--images 64]

``--paper CONFIG`` needs no run: it writes a student of that config's architecture with random weights
(``pretrained: none``) and COCO-sized 640 x 480 JPEGs to a temporary folder and compares predict with the
network there (no efficiency record then).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from kdwsd.data.dataset import normalise, warp_image
from kdwsd.data.prepared import load_split
from kdwsd.inference import load_model
from kdwsd.modelfile import save_model_file, student_metadata
from kdwsd.models.student import build_student, student_input


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _paper_student(config: Path, folder: Path, n: int) -> tuple[list[str], Path]:
    """A random-weight student file of ``config``'s architecture and ``n`` 640 x 480 JPEGs in ``folder``."""
    import yaml

    cfg = yaml.safe_load(config.read_text())
    section = {**cfg["student"], "pretrained": "none"}
    classes = [f"class{i}" for i in range(80)]
    model = build_student(section, len(classes)).eval()
    path = folder / "student.pt"
    save_model_file(path, model, student_metadata(classes=classes, config=section, norm=cfg.get("input_norm", "caffe"),
                                                  frame_size=cfg["teacher"]["test_size"], seed=0,
                                                  experiment="kd_full"))  # fmt: skip
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        image = cv2.GaussianBlur((rng.random((480, 640, 3)) * 255).astype(np.uint8), (0, 0), 3)
        paths.append(str(folder / f"{i}.jpg"))
        cv2.imwrite(paths[-1], image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("results/synthetic"))
    ap.add_argument("--model", default="kd_full", help="model name under <run>/models/")
    ap.add_argument("--split", default="test")
    ap.add_argument("--images", type=int, default=400, help="images timed (the split's first N)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the predictor's (kdwsd predict's)")
    ap.add_argument("--workers", type=int, default=None, help="predict's decode threads (default: its own)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cv2-threads", type=int, default=None, help="cv2.setNumThreads before timing (default: OpenCV's)")
    ap.add_argument(
        "--paper",
        type=Path,
        default=None,
        metavar="CONFIG",
        help="time a random-weight student of this config's architecture on 640x480 JPEGs instead",
    )
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    if args.paper is not None:
        paths, model_path = _paper_student(args.paper, Path(tmp.name), args.images)
        recorded = None
    else:
        paths = [str(p) for p in load_split(args.run / "data", args.split).paths[: args.images]]
        model_path = args.run / "models" / f"{args.model}.pt"
        recorded = json.loads((args.run / "efficiency.json").read_text())["student"]["images_per_s"]
    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    pred = load_model(model_path, device="cpu", workers=args.workers)
    frame, size, norm = int(pred.info.frame_size), int(pred.info.input_size), pred.info.norm
    args.batch_size = args.batch_size or pred.default_batch_size
    bgr = [cv2.imread(p) for p in paths]
    resized = [warp_image(b, frame) for b in bgr]
    frames = torch.from_numpy(np.stack([normalise(f, norm) for f in resized]))
    batches = frames.split(args.batch_size)

    @torch.no_grad()
    def network() -> None:
        for x in batches:
            torch.sigmoid(pred.model(student_input(x, size)))

    network()  # warm-up
    net_rate = len(paths) / _best(network, args.repeat)
    predict_rate = len(paths) / _best(lambda: sum(1 for _ in pred.iter_predict(paths, batch_size=args.batch_size)),
                                      args.repeat)  # fmt: skip
    steps = {
        "decode (cv2.imread)": lambda: [cv2.imread(p) for p in paths],
        f"resize to the {frame}px frame": lambda: [warp_image(b, frame) for b in bgr],
        "normalise": lambda: [normalise(f, norm) for f in resized],
    }
    print(f"model {model_path} ({pred.kind}, {pred.info.arch.get('backbone')}, frame {frame}, input {size}, {norm}), "
          f"{len(paths)} images, batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
          f"predict workers {pred.workers}")  # fmt: skip
    if recorded is not None:
        print(f"  efficiency stage (recorded in the run): {recorded:8.1f} images/s  network only")
    print(f"  network now, batch {args.batch_size:<3}              {net_rate:8.1f} images/s")
    print(
        f"  predict (decode + resize + network):      {predict_rate:8.1f} images/s  = "
        + (f"{100 * predict_rate / recorded:.0f} % of the recorded, " if recorded else "")
        + f"{100 * predict_rate / net_rate:.0f} % of the network now"
    )
    torch.set_num_threads(1)
    for name, fn in steps.items():
        print(f"  {name:<40} {1e3 * _best(fn, args.repeat) / len(paths):6.3f} ms/image (one thread)")


if __name__ == "__main__":
    main()
