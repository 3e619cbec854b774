"""Exported students (ONNX, TorchScript, torch.export) give the PyTorch predictor's scores, carry their metadata."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import CLASSES, FRAME, STUDENT_SIZE, write_images, write_student

import kdwsd
from kdwsd.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("export")
    student = write_student(d / "student.pt")
    images = write_images(d / "images", n=3)
    pred = kdwsd.load_model(student, device="cpu")
    frames = np.stack([pred.prepare(str(p))["frame"] for p in images])  # float32[3, 3, F, F], batch 3 != traced 2
    return {"dir": d, "student": student, "frames": frames, "scores": pred.scores(images)}


def _run(fmt: str, path: Path, frames: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"frames": frames})[0]
    if fmt == "torchscript":
        with pytest.warns(FutureWarning):  # torch.jit is deprecated upstream, still loads
            module = torch.jit.load(str(path))
        return module(torch.from_numpy(frames)).detach().numpy()
    return torch.export.load(str(path)).module()(torch.from_numpy(frames)).detach().numpy()


def _embedded(fmt: str, path: Path) -> dict:
    if fmt == "onnx":
        import onnx

        return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["kdwsd"])
    with zipfile.ZipFile(path) as z:  # TorchScript and .pt2 are zip archives with the extra file inside
        name = next(n for n in z.namelist() if n.endswith("kdwsd.json"))
        return json.loads(z.read(name))


@pytest.mark.parametrize("fmt,ext", [("onnx", "onnx"), ("torchscript", "ts"), ("exported-program", "pt2")])
def test_export_round_trip(setup: dict, fmt: str, ext: str, capsys: pytest.CaptureFixture) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxscript")
    out = setup["dir"] / f"student.{ext}"
    assert main(["export", str(setup["student"]), "--format", fmt, "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    got = _run(fmt, out, setup["frames"])
    # ONNX Runtime has its own kernels (different summation order): float32 rounding only
    np.testing.assert_allclose(got, setup["scores"], rtol=0, atol=1e-5 if fmt == "onnx" else 1e-7)
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar == _embedded(fmt, out)
    assert sidecar["classes"] == CLASSES and sidecar["frame_size"] == FRAME and sidecar["input_size"] == STUDENT_SIZE
    assert sidecar["normalisation"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert sidecar["input"]["shape"] == ["batch", 3, FRAME, FRAME] and sidecar["format"] == fmt


def test_sidecar_recipe_reproduces_the_frames(setup: dict) -> None:
    """A deployment that follows only the sidecar's numbers gets the predictor's input exactly."""
    import cv2

    out = setup["dir"] / "recipe.pt2"
    assert main(["export", str(setup["student"]), "--format", "exported-program", "-o", str(out)]) == 0
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    n = meta["normalisation"]
    img = cv2.imread(str(sorted((setup["dir"] / "images").iterdir())[0]))
    f = meta["frame_size"]
    x = cv2.resize(img, (f, f), interpolation=cv2.INTER_LINEAR)[..., ::-1 if n["channels"] == "RGB" else slice(None)]
    x = (x.astype(np.float32) * np.float32(n["scale"]) - np.float32(n["mean"])) / np.float32(n["std"])
    np.testing.assert_allclose(x.transpose(2, 0, 1), setup["frames"][0], rtol=0, atol=1e-6)
