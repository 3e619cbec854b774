"""Rebuild trained networks from their model files (kdwsd.modelfile): no pretrained download needed."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from kdwsd.modelfile import ModelFileError, ModelInfo, read_model_file
from kdwsd.models.student import StudentClassifier
from kdwsd.models.teacher import WSDDN

__all__ = ["build_network", "load_student", "load_teacher"]


def build_network(info: ModelInfo) -> nn.Module:
    """The eval-mode network of a :class:`~kdwsd.modelfile.ModelInfo`, naming the file on a state-dict
    mismatch."""
    cls = StudentClassifier if info.kind == "student" else WSDDN
    try:
        model = cls(pretrained="none", **info.arch)
        model.load_state_dict(info.state_dict)
    except (TypeError, RuntimeError) as exc:
        raise ModelFileError(f"model file {info.path}: its weights do not fit a {info.kind} with arch "
                             f"{info.arch}: {exc}") from exc  # fmt: skip
    return model.eval()


def load_student(path: Path | str) -> StudentClassifier:
    """A trained student, in eval mode (refuses a teacher's file, naming both)."""
    return build_network(read_model_file(path, expect_kind="student"))  # type: ignore[return-value]


def load_teacher(path: Path | str) -> WSDDN:
    """A trained teacher, in eval mode (refuses a student's file, naming both)."""
    return build_network(read_model_file(path, expect_kind="teacher"))  # type: ignore[return-value]
