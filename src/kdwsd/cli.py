"""The ``kdwsd`` command: label images with a trained model, export the student, describe a model file.

Examples::

    kdwsd info results/synthetic/models/kd_full.pt
    kdwsd predict results/synthetic/models/kd_full.pt photo.jpg more_photos/ "shots/*.png" --top-k 3
    kdwsd predict results/synthetic/models/teacher.pt photo.jpg --draw-boxes boxes/
    find photos -name '*.jpg' | kdwsd predict results/synthetic/models/kd_full.pt - --json > labels.json
    kdwsd export results/synthetic/models/kd_full.pt --format onnx -o kd_full.onnx

Exit status: 0 success; 1 some images could not be read (each is named on stderr, the others are labelled);
2 bad arguments or an unusable model file; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdwsd",
        description="Use a model trained by the kdwsd pipeline (results/<run>/models/*.pt): label your own "
        "images, export the student for deployment, or show what a model file holds.",
        epilog="Students (baseline.pt, kd_full.pt, ...) are the small fast classifiers; teacher.pt is the WSDDN "
        "detector (slower: it computes proposals per image, EdgeBoxes by default). Run 'kdwsd COMMAND --help' for "
        "details.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "predict", help="label images (files, folders, globs)",
        description="Print the labels and scores of each image. The preprocessing (resize to the training frame, "
        "normalisation, student input size) is read from the model file, so images of any size and format "
        "OpenCV reads can be given as they are. By default every label scoring at least 0.5 is printed.",
    )  # fmt: skip
    p.add_argument("model", help="model file (.pt) written by the pipeline, a student or the teacher")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, folders (their image files, not recursive), quoted glob patterns, @LIST (a "
                   "text file of image paths, one per line) or - (paths from standard input)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="print at most the K best labels per image")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="print labels scoring at least T (default 0.5, or no threshold when --top-k is given)")
    p.add_argument("--json", action="store_true", help="write one JSON document to stdout (all class scores too)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available) | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="images per network call (default 64, or 16 for models whose frame is above 256 px; with "
                   "several CPU processes, lowered so that the batches split evenly between them)")
    p.add_argument("--processes", type=int, default=None, metavar="N",
                   help="CPU on Linux: processes labelling batches side by side, one thread each (default: "
                   "PyTorch's thread count; 1: one process, with --workers threads reading images)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="threads reading and resizing images in one process (GPU, or --processes 1; default "
                   "min(4, CPUs))")
    p.add_argument("--proposals", default=None, choices=["edgeboxes", "selective_search", "random"],
                   help="teacher only: the proposal method for your images (default: the one it was trained with)")
    p.add_argument("--structured-model", type=Path, default=None, metavar="FILE",
                   help="teacher only: OpenCV's structured-edge model (model.yml.gz), when the path the model file "
                   "records is not found")
    p.add_argument("--draw-boxes", type=Path, default=None, metavar="DIR",
                   help="teacher only: write each image with the best box of each printed label to DIR/<name>.png")
    p.set_defaults(func=_predict)

    p = sub.add_parser(
        "export", help="export a student to ONNX, TorchScript or a torch.export program",
        description="Write the student as a standalone model taking float32[B, 3, F, F] (the image warped to "
        "F x F and normalised, as the JSON sidecar OUT.json describes) and returning float32[B, C] sigmoid "
        "scores. The preprocessing metadata is also embedded in the file (ONNX metadata_props, TorchScript / "
        "exported-program extra file 'kdwsd.json').",
    )  # fmt: skip
    p.add_argument("model", help="student model file (.pt)")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript", "exported-program"])
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output file")
    p.set_defaults(func=_export)

    p = sub.add_parser("info", help="show what a model file holds",
                       description="Classes, kind, architecture, frame and input sizes, normalisation, and the config "
                       "and git commit the model was trained from.")  # fmt: skip
    p.add_argument("model", help="model file (.pt)")
    p.add_argument("--json", action="store_true", help="write the description as JSON")
    p.set_defaults(func=_info)
    return parser


def _err(msg: str) -> None:
    print(f"kdwsd: error: {msg}", file=sys.stderr)


def _predict(args: argparse.Namespace) -> int:
    from kdwsd.inference import expand_image_args, load_model

    if args.top_k is not None and args.top_k < 1:
        _err("--top-k must be >= 1")
        return EXIT_USAGE
    threshold = args.threshold if args.threshold is not None else (None if args.top_k is not None else 0.5)
    if args.processes is not None and args.processes < 1:
        _err("--processes must be >= 1")
        return EXIT_USAGE
    predictor = load_model(args.model, device=args.device, workers=args.workers, proposals=args.proposals,
                           structured_model=args.structured_model, processes=args.processes)  # fmt: skip
    if args.draw_boxes is not None and predictor.kind != "teacher":
        _err(f"--draw-boxes needs the teacher (WSDDN) model; {args.model} is a student, which has no boxes")
        return EXIT_USAGE
    skipped: list[str] = []
    paths = expand_image_args(args.images, skipped)
    if skipped:
        kinds = sorted({Path(p).suffix.lower() or "(no extension)" for p in skipped})
        print(f"kdwsd: {len(skipped)} file{'s' * (len(skipped) != 1)} of the folders given not read (not an image "
              f"extension: {', '.join(kinds[:8])}{', ...' if len(kinds) > 8 else ''})", file=sys.stderr)  # fmt: skip
    if not paths:
        _err(f"no image files found in {args.images}")
        return EXIT_SOME_FAILED
    with predictor:
        return _label_all(args, predictor, paths, threshold)


def _label_all(args: argparse.Namespace, predictor: Any, paths: list[str], threshold: float | None) -> int:
    """Label ``paths`` and print the results, the failures and the speed."""
    from tqdm import tqdm

    batch_size = predictor.batch_size_for(len(paths), args.batch_size)
    # Started (and warmed up) before the clock, as the model is loaded: images/s is the labelling's own rate.
    start_s = predictor.start(batch_size, len(paths))
    if args.json:  # streamed: one result per line as it comes, nothing held for a long list
        head = {"model": str(args.model), "kind": predictor.kind, "classes": predictor.classes,
                "threshold": threshold, "top_k": args.top_k}  # fmt: skip
        sys.stdout.write(json.dumps(head)[:-1] + ', "results": [')
    # A progress bar where it cannot garble the output: results redirected, a terminal watching stderr.
    bar = tqdm(total=len(paths), unit="img", file=sys.stderr, leave=False,
               disable=sys.stdout.isatty() or not sys.stderr.isatty())  # fmt: skip
    failed, drawn, t0 = 0, set(), time.perf_counter()
    for i, pred in enumerate(predictor.iter_predict(paths, top_k=args.top_k, threshold=threshold,
                                                    batch_size=batch_size)):  # fmt: skip
        bar.update()
        if pred.error is not None:
            failed += 1
            with bar.external_write_mode(file=sys.stderr):
                _err(str(pred.error_message()))
        if args.json:
            sys.stdout.write(("," if i else "") + "\n " + json.dumps(pred.to_dict(predictor.classes)))
        elif pred.error is None:
            text = ", ".join(f"{n} {s:.3f}" for n, s in pred.labels) or "(no label)"
            print(f"{pred.source}\t{text}", flush=False)
        if args.draw_boxes is not None and pred.error is None:
            _draw(pred, args.draw_boxes, drawn)
    seconds = time.perf_counter() - t0
    bar.close()
    rate = (len(paths) - failed) / max(seconds, 1e-9)
    processes = predictor.cpu_processes() if start_s else 1
    if args.json:
        tail = {"failed": failed, "seconds": seconds, "images_per_s": rate, "processes": processes,
                "start_seconds": start_s}  # fmt: skip
        sys.stdout.write("\n], " + json.dumps(tail)[1:] + "\n")
    started = f", after starting {processes} processes in {start_s:.2f} s" if start_s else ""
    print(f"kdwsd: {len(paths) - failed} images labelled, {failed} failed, {seconds:.2f} s ({rate:.1f} images/s, "
          f"{predictor.kind} on {predictor.device}{started})", file=sys.stderr)  # fmt: skip
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _draw(pred: Any, out_dir: Path, used: set[Path]) -> None:
    """Write the image with the teacher's boxes to ``out_dir/<stem>.png`` (``<stem>_<n>.png`` on a name clash)."""
    import cv2

    from kdwsd.data.dataset import load_image
    from kdwsd.inference import draw_boxes

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(pred.source).stem
    out, n = out_dir / f"{stem}.png", 1
    while out in used:
        out, n = out_dir / f"{stem}_{n}.png", n + 1
    used.add(out)
    cv2.imwrite(str(out), draw_boxes(load_image(pred.source), pred))


def _export(args: argparse.Namespace) -> int:
    from kdwsd.export import export_student

    sidecar = export_student(args.model, args.output, args.format)
    print(f"wrote {args.output} and {sidecar}")
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from kdwsd.modelfile import read_model_file

    info = read_model_file(args.model).describe()
    if args.json:
        json.dump(info, sys.stdout, indent=1, default=str)
        print()
        return EXIT_OK
    prov = info.get("provenance") or {}
    commit = prov.get("git_commit")
    lines = [
        f"model file    {info['path']}",
        f"kind          {info['kind']}" + (f" ({info['experiment']}, seed {info['seed']})" if info.get("experiment")
                                           else ""),
        f"classes       {info['num_classes']}: {', '.join(info['classes'])}",
        f"architecture  {info['arch'].get('backbone')} backbone, widths {info['arch'].get('widths')}, "
        f"hidden {info['arch'].get('hidden')}, {info['parameters']:,} parameters",
        f"input         image warped to {info['frame_size']}x{info['frame_size']} (aspect ratio not kept), "
        f"normalisation '{info['norm']}', network input {info['input_size']}x{info['input_size']}",
        f"format        version {info['format_version']}",
        f"trained from  commit {commit + (' (dirty)' if prov.get('git_dirty') else '') if commit else 'unknown'}"
        + (f", torch {prov['packages'].get('torch')}" if prov.get("packages") else ""),
        f"config        {json.dumps(info['config'], sort_keys=True)}",
    ]  # fmt: skip
    if info["kind"] == "teacher":
        lines.insert(5, f"proposals     {info['proposals'] or 'not recorded: EdgeBoxes defaults, config num_rois'}")
    print("\n".join(lines))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 some images failed, 2 usage / model error)."""
    from kdwsd.modelfile import ModelFileError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ModelFileError, FileNotFoundError, ValueError, ImportError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:  # `kdwsd predict ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C: the prediction processes are stopped with the pool, no traceback
        _err("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
