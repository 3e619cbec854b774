"""Tiny student / teacher model files and test images for the CLI, inference and export tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from kdwsd.modelfile import save_model_file, student_metadata, teacher_metadata
from kdwsd.models.student import StudentClassifier
from kdwsd.models.teacher import WSDDN

CLASSES = ["circle", "square", "star"]
FRAME, STUDENT_SIZE = 64, 32
NET = {"backbone": "small", "widths": (8, 8, 16, 16), "hidden": 32, "roi_size": 1, "dropout": 0.0}


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial batch-norm statistics and biases, so that eval mode is really exercised."""
    g = torch.Generator().manual_seed(seed)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def write_student(path: Path, norm: str = "torchvision") -> Path:
    torch.manual_seed(0)
    model = StudentClassifier(len(CLASSES), tau_init=0.2, **NET)
    _perturb(model, 1)
    cfg = {"size": STUDENT_SIZE, "backbone": "small", "widths": list(NET["widths"]), "hidden": 32}
    save_model_file(path, model, student_metadata(classes=CLASSES, config=cfg, norm=norm, frame_size=FRAME, seed=0,
                                                  experiment="kd_full"))  # fmt: skip
    return path


def write_teacher(path: Path, norm: str = "torchvision", proposals: dict | None = None) -> Path:
    torch.manual_seed(0)
    model = WSDDN(len(CLASSES), box_score_scale=10.0, box_score_bias=1.0, **NET)
    _perturb(model, 2)
    cfg = {"rois": 20, "network": {"backbone": "small"}}
    save_model_file(path, model, teacher_metadata(classes=CLASSES, config=cfg, norm=norm, frame_size=FRAME, rois=20,
                                                  proposals=proposals or {"max_boxes": 30, "params": {}}))  # fmt: skip
    return path


def write_images(folder: Path, n: int = 4) -> list[Path]:
    """n small BGR images of different sizes with shapes on them, alternately PNG and JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        h, w = 48 + 9 * i, 80 - 7 * i
        img = (rng.random((h, w, 3)) * 60).astype(np.uint8)
        cv2.circle(img, (w // 3, h // 2), 10 + i, (40, 200, 90 + 30 * i), -1)
        cv2.rectangle(img, (w // 2, 5), (w - 6, h // 2), (230, 60, 20), -1)
        p = folder / f"img{i}.{'png' if i % 2 == 0 else 'jpg'}"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths
