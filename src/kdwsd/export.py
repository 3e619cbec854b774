"""Export a trained student for deployment: ONNX, TorchScript or a ``torch.export`` program.

The exported graph takes ``frames`` float32[B, 3, F, F] — the image warped to the training frame F and
normalised (both recorded in the metadata) — and returns ``scores`` float32[B, C] (sigmoid), the in-network
resize to the student's input size included. The batch dimension is dynamic. The metadata (classes, sizes,
normalisation constants, provenance) is written next to the file as ``<OUT>.json`` and embedded in it:
ONNX ``metadata_props["kdwsd"]``, TorchScript / exported-program extra file ``kdwsd.json``.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdwsd.data.dataset import CAFFE_MEAN_BGR, TV_MEAN_RGB, TV_STD_RGB
from kdwsd.modelfile import ModelInfo, read_model_file
from kdwsd.models.io import build_network
from kdwsd.models.student import student_input

__all__ = ["FORMATS", "ExportableStudent", "export_metadata", "export_student"]

FORMATS = ("onnx", "torchscript", "exported-program")


class ExportableStudent(nn.Module):
    """``frames`` float[B, 3, F, F] (warped + normalised) -> ``scores`` float[B, C] = sigmoid(student(resize))."""

    def __init__(self, student: nn.Module, input_size: int) -> None:
        super().__init__()
        self.student = student.eval()
        self.input_size = int(input_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.student(student_input(frames, self.input_size)))


def export_metadata(info: ModelInfo, fmt: str) -> dict[str, Any]:
    """What a deployment needs to feed the exported student (also the ``<OUT>.json`` sidecar)."""
    if info.norm == "torchvision":
        norm = {"channels": "RGB", "scale": 1 / 255, "mean": TV_MEAN_RGB.tolist(), "std": TV_STD_RGB.tolist()}
    else:
        norm = {"channels": "BGR", "scale": 1.0, "mean": CAFFE_MEAN_BGR.tolist(), "std": [1.0, 1.0, 1.0]}
    f = info.frame_size
    return {
        "format": fmt, "kdwsd_model_format": info.format_version, "source_model": os.path.basename(info.path),
        "kind": info.kind, "classes": info.classes, "frame_size": f, "input_size": info.input_size,
        "norm": info.norm, "normalisation": norm,
        "input": {"name": "frames", "shape": ["batch", 3, f, f], "dtype": "float32"},
        "output": {"name": "scores", "shape": ["batch", len(info.classes)], "dtype": "float32",
                   "meaning": "sigmoid class scores in 'classes' order"},
        "preprocessing": [
            "decode the image as 8-bit colour (OpenCV BGR order)",
            f"resize to {f}x{f} with bilinear interpolation (cv2.INTER_LINEAR), aspect ratio NOT kept",
            f"convert to float32; '{info.norm}' normalisation: (channels in {norm['channels']} order * "
            f"{norm['scale']:.6g} - mean) / std, per channel",
            "transpose to [3, H, W] and stack into a batch [B, 3, H, W]",
        ],
        "provenance": info.provenance, "experiment": info.experiment, "seed": info.seed,
    }  # fmt: skip


def export_student(model_path: Path | str, out: Path | str, fmt: str, opset: int = 18) -> Path:
    """Export a student model file to ``out`` in ``fmt`` (one of :data:`FORMATS`); return the sidecar path.

    Raises:
        kdwsd.modelfile.ModelFileError: the file is a teacher (it needs proposals: export a student).
        ValueError: unknown format, or a student without a recorded frame size.
        ImportError: ``onnx`` export without the ``onnx`` / ``onnxscript`` packages (``pip install kdwsd[export]``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    info = read_model_file(model_path, expect_kind="student")
    if info.frame_size is None:
        raise ValueError(f"model file {model_path} does not record its frame size (stage-1 or old file)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = ExportableStudent(build_network(info), info.input_size).eval()
    meta = export_metadata(info, fmt)
    meta_json = json.dumps(meta, indent=1, default=str)
    example = torch.zeros(2, 3, info.frame_size, info.frame_size)  # batch 2: keeps the batch dim symbolic
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            # TorchScript is deprecated upstream (still loadable without Python deps); the tracer's shape-check
            # warning is about student_input's "already at size?" test, static for a fixed frame size.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(module, example)
            torch.jit.save(traced, str(out), _extra_files={"kdwsd.json": meta_json})
    elif fmt == "exported-program":
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(module, (example,), dynamic_shapes={"frames": {0: batch}})
        torch.export.save(program, str(out), extra_files={"kdwsd.json": meta_json})
    else:
        _export_onnx(module, example, out, meta_json, opset)
    sidecar = out.with_name(out.name + ".json")
    sidecar.write_text(meta_json + "\n")
    return sidecar


def _export_onnx(module: nn.Module, example: torch.Tensor, out: Path, meta_json: str, opset: int) -> None:
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the 'onnx' and 'onnxscript' packages: pip install 'kdwsd[export]' "
                          f"({exc})") from exc  # fmt: skip
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(module, (example,), dynamo=True, input_names=["frames"], output_names=["scores"],
                                dynamic_shapes={"frames": {0: batch}}, opset_version=opset, verbose=False)  # fmt: skip
    program.save(str(out))
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "kdwsd", meta_json
    onnx.save(proto, str(out))
