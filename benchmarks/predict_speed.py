"""`kdwsd predict` throughput against the student network's, on a finished run (CPU by default, ``--device``).

Reads the student's images/s measured by the efficiency stage (``<run>/efficiency.json``: network only, on
frames already decoded and normalised, batches of 8, the median of its timed passes) and measures here, now:

* ``network as the efficiency stage times it``: the same measurement again (:func:`kdwsd.efficiency.
  images_per_second`, batches of 8, median of 7 passes): the machine may be busier or idler than during the run;
* ``network at predict's batch size``: the same network in larger batches, for reference;
* ``kdwsd predict``: the command itself, in a subprocess, on ``--images`` files (the run's test images, repeated
  to make a folder of that size), output discarded, its own reported images/s (decode, resize, normalise,
  network and printing; neither the model loading nor the start of its processes, each labelling one made-up
  image, is counted: that start is shown apart); median of ``--repeat`` runs (the first also warms the OS file
  cache), with its default processes and with ``--processes 1`` (one process whose thread pool prepares while
  the network waits). The machine's speed drifts, so each run is paired with the network timed just before it
  and its share of the network is the median of the pairs';
* the cost of each preprocessing step alone, per image, on one thread.

    PYTHONPATH=src python benchmarks/predict_speed.py [--run results/synthetic] [--model kd_full] [--images 2000]
    PYTHONPATH=src python benchmarks/predict_speed.py --paper config/coco2014.yaml [--images 64]

``--paper CONFIG`` needs no run: it writes a student of that config's architecture with random weights
(``pretrained: none``) and COCO-sized 640 x 480 JPEGs to a temporary folder and compares predict with the
network there (no efficiency record then).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

import cv2
import numpy as np
import torch

from kdwsd.data.dataset import normalise, warp_image
from kdwsd.data.prepared import load_split
from kdwsd.efficiency import images_per_second
from kdwsd.inference import load_model
from kdwsd.modelfile import save_model_file, student_metadata
from kdwsd.models.student import build_student, student_input

EFFICIENCY_BATCH, EFFICIENCY_BATCHES = 8, 3  # what the efficiency stage times (kdwsd.efficiency defaults)


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


def _cli_run(model: Path, paths: list[str], device: str, extra: list[str]) -> tuple[float, float]:
    """The images/s ``kdwsd predict`` reports for ``paths`` and the seconds it took to start its processes (0
    without)."""
    cmd = [sys.executable, "-m", "kdwsd.cli", "predict", str(model), *paths, "--device", device, *extra]
    res = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    found = re.search(r"\(([\d.]+) images/s", res.stderr)
    if res.returncode != 0 or not found:
        raise SystemExit(f"kdwsd predict failed ({res.returncode}): {res.stderr[-2000:]}")
    started = re.search(r"processes in ([\d.]+) s\)", res.stderr)
    return float(found.group(1)), float(started.group(1)) if started else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("results/synthetic"))
    ap.add_argument("--model", default="kd_full", help="model name under <run>/models/")
    ap.add_argument("--split", default="test")
    ap.add_argument("--images", type=int, default=2000, help="files predicted (the split's, repeated as needed)")
    ap.add_argument("--batch-size", type=int, default=None, help="predict's --batch-size (default: its own)")
    ap.add_argument("--processes", type=int, default=None, help="predict's --processes (default: its own)")
    ap.add_argument("--workers", type=int, default=None, help="predict's --workers (default: its own)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N: the network's and predict's device")
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
        split_paths = [str(p) for p in load_split(args.run / "data", args.split).paths]
        paths = list(islice(cycle(split_paths), args.images))
        model_path = args.run / "models" / f"{args.model}.pt"
        recorded = json.loads((args.run / "efficiency.json").read_text())["student"]["images_per_s"]
    pred = load_model(model_path, device=args.device, processes=args.processes)
    dev = pred.device
    frame, size, norm = int(pred.info.frame_size), int(pred.info.input_size), pred.info.norm
    batch = pred.batch_size_for(len(paths), args.batch_size)
    unique = list(dict.fromkeys(paths))[: max(EFFICIENCY_BATCH * EFFICIENCY_BATCHES, batch * 4)]
    bgr = [cv2.imread(p) for p in unique]
    resized = [warp_image(b, frame) for b in bgr]
    frames = torch.from_numpy(np.stack([normalise(f, norm) for f in resized])).to(dev)

    def network(b: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            torch.sigmoid(pred.model(student_input(b["image"], size)))

    as_efficiency = [{"image": x} for x in frames.split(EFFICIENCY_BATCH)][:EFFICIENCY_BATCHES]
    big_now, *_ = images_per_second(network, [{"image": x} for x in frames.split(batch)], dev)

    extra = [*(["--batch-size", str(args.batch_size)] if args.batch_size else []),
             *(["--workers", str(args.workers)] if args.workers else [])]  # fmt: skip
    # The machine's speed drifts (by 25 % within a minute on a shared VM): each predict run is paired with the
    # network timed just before it, and the shares are the median of the pairs'.
    nets, default_rates, starts, one_rates, one_nets = [], [], [], [], []
    for _ in range(args.repeat):
        nets.append(images_per_second(network, as_efficiency, dev))
        own = ["--processes", str(args.processes)] if args.processes else []
        rate, start = _cli_run(model_path, paths, args.device, [*extra, *own])
        default_rates.append(rate)
        starts.append(start)
        if dev.type == "cpu":
            one_nets.append(images_per_second(network, as_efficiency, dev)[0])
            one_rates.append(_cli_run(model_path, paths, args.device, [*extra, "--processes", "1"])[0])
    eff_now = statistics.median(n[0] for n in nets)
    eff_lo, eff_hi = min(n[1] for n in nets), max(n[2] for n in nets)
    frame_row = np.empty((3, frame, frame), np.float32)
    steps = {
        "decode (cv2.imread)": lambda: [cv2.imread(p) for p in unique],
        f"resize to the {frame}px frame": lambda: [warp_image(b, frame) for b in bgr],
        "normalise (into a batch row, as predict does)": lambda: [normalise(f, norm, out=frame_row) for f in resized],
    }
    print(f"model {model_path} ({pred.kind}, {pred.info.arch.get('backbone')}, frame {frame}, input {size}, {norm}), "
          f"{len(paths)} files, {dev}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, predict "
          f"processes {pred.cpu_processes()}, batch {batch}")  # fmt: skip

    def row(name: str, rate: float, note: str = "", paired: list[float] | None = None) -> None:
        shares = (f"{100 * rate / recorded:3.0f} % of the recorded, " if recorded else "") + (
            f"{100 * rate / eff_now:3.0f} % of the network now" if paired is None else
            f"{100 * statistics.median(r / n for r, n in zip(paired[0], paired[1], strict=True)):3.0f} % of the "
            f"network timed just before")  # fmt: skip
        print(f"  {name:<48} {rate:8.1f} images/s  {shares}{note}")

    def runs(rates: list[float]) -> str:
        return f"median of {', '.join(f'{r:.0f}' for r in rates)}"

    if recorded is not None:
        print(f"  {'efficiency stage (recorded in the run), network':<48} {recorded:8.1f} images/s")
    print(f"  {'network now, as the efficiency stage times it':<48} {eff_now:8.1f} images/s  median of "
          f"{', '.join(f'{n[0]:.0f}' for n in nets)}; passes {eff_lo:.0f}-{eff_hi:.0f}")  # fmt: skip
    row(f"network now, batch {batch}", big_now)
    row(f"kdwsd predict ({pred.cpu_processes()} processes)", statistics.median(default_rates),
        f"  {runs(default_rates)}; started in {1e3 * statistics.median(starts):.0f} ms",
        paired=[default_rates, [n[0] for n in nets]])  # fmt: skip
    if one_rates:
        row("kdwsd predict --processes 1", statistics.median(one_rates), f"  {runs(one_rates)}",
            paired=[one_rates, one_nets])  # fmt: skip
    torch.set_num_threads(1)
    for name, fn in steps.items():
        print(f"  {name:<52} {1e3 * _best(fn, args.repeat) / len(unique):8.3f} ms/image (one thread)")


if __name__ == "__main__":
    main()
