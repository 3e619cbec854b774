"""The model-file format (``results/<run>/models/<name>.pt``, docs/formats.md §3): write, read, check.

A model file is ``torch.save`` of a plain dictionary (so it loads with ``weights_only=True``)::

    {"model": state_dict, "arch": constructor kwargs, "format_version": 2, "kind": "student" | "teacher",
     "classes": [...], "norm": "torchvision" | "caffe", "frame_size": int, "input_size": int,
     "config": the student / teacher config section, "provenance": {...}, ...}

``frame_size`` is the square side the image is warped to (aspect ratio not kept) before normalisation;
``input_size`` the side the network sees (the student resizes the frame in-network; for the teacher both
are ``teacher.test_size``). Files written before format 2 (no ``format_version``) still load:
:func:`read_model_file` fills the missing fields from ``config`` and ``arch``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "ModelFileError",
    "ModelInfo",
    "load_model_file",
    "provenance",
    "read_model_file",
    "save_model_file",
    "student_metadata",
    "teacher_metadata",
]

FORMAT_VERSION = 2
KINDS = ("student", "teacher")
_PACKAGES = ("kdwsd", "torch", "torchvision", "numpy", "opencv-contrib-python-headless")


class ModelFileError(ValueError):
    """A model file is unreadable, incomplete, or not the model the caller expects."""


def save_model_file(path: Path | str, model: nn.Module, extra: dict[str, Any]) -> None:
    """Atomically write ``{"model": state_dict, "arch": model.arch, **extra}``.

    ``extra`` should be the dictionary of :func:`student_metadata` / :func:`teacher_metadata`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"model": state, "arch": getattr(model, "arch", {}), **extra}, tmp)
    os.replace(tmp, path)


def load_model_file(path: Path | str) -> dict[str, Any]:
    """Load a model file safely (``weights_only=True``) as the raw dictionary, naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"cannot load model file {path}: {exc}") from exc


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def provenance(source_dir: Path | str | None = None) -> dict[str, Any]:
    """Where a model came from: git commit and dirty flag, Python and package versions.

    The stable part of :func:`kdwsd.provenance.collect_provenance` (no host name, no time), so that the same
    code trained on the same data writes a byte-identical model file (what resume and SLURM tests check).

    Args:
        source_dir: a directory inside the git working tree to describe (default: the one holding this
            package's source); ``git_commit`` is "unknown" outside a git working tree (an installed wheel).
    """
    from kdwsd.provenance import collect_provenance

    full = collect_provenance(source_dir if source_dir is not None else Path(__file__).resolve().parent)
    return {k: full[k] for k in ("git_commit", "git_dirty", "python", "packages")}


def student_metadata(
    *,
    classes: list[str],
    config: dict[str, Any],
    norm: str,
    frame_size: int,
    seed: int,
    experiment: str,
    source_dir: Path | str | None = None,
) -> dict[str, Any]:
    """The ``extra`` dictionary a student trainer passes to :func:`save_model_file`.

    Args:
        classes: the C class names in score-column order (the training split's ``classes``).
        config: the student's training recipe (``config["size"]`` is the student's input side).
        norm: input normalisation (``input_norm``: ``torchvision`` | ``caffe``).
        frame_size: the teacher frame the image is warped to before the in-network resize
            (``teacher.test_size``).
        seed: the training seed; experiment: ``baseline`` | ``kd_feature`` | ``kd_prediction`` | ``kd_full``.
    """
    return {
        "format_version": FORMAT_VERSION, "kind": "student", "classes": list(classes), "config": config,
        "norm": norm, "frame_size": int(frame_size), "input_size": int(config["size"]), "seed": seed,
        "experiment": experiment, "provenance": provenance(source_dir),
    }  # fmt: skip


def teacher_metadata(
    *,
    classes: list[str],
    config: dict[str, Any],
    norm: str,
    frame_size: int,
    rois: int,
    proposals: dict[str, Any] | None = None,
    source_dir: Path | str | None = None,
) -> dict[str, Any]:
    """The ``extra`` dictionary the teacher trainer passes to :func:`save_model_file`.

    Args:
        classes, norm: as :func:`student_metadata`; config: the teacher's training recipe.
        frame_size: the single-scale frame the teacher scores images at (``teacher.test_size``).
        rois: the proposals per image it takes (``teacher.rois``).
        proposals: how the training proposals were made (``method``, default ``edgeboxes``; ``max_boxes``;
            ``params``, the method's parameters) so that a user's image gets the same kind of boxes; None
            records nothing (EdgeBoxes with the defaults of :func:`kdwsd.proposals.edge_boxes` then).
    """
    props = None if proposals is None else {"method": str(proposals.get("method", "edgeboxes")),
                                            "max_boxes": int(proposals["max_boxes"]),
                                            "params": dict(proposals.get("params") or {})}  # fmt: skip
    return {
        "format_version": FORMAT_VERSION, "kind": "teacher", "classes": list(classes), "config": config,
        "norm": norm, "frame_size": int(frame_size), "input_size": int(frame_size), "rois": int(rois),
        "proposals": props, "provenance": provenance(source_dir),
    }  # fmt: skip


@dataclass
class ModelInfo:
    """Everything a model file says about its model, with pre-format-2 files filled in from ``config``.

    Attributes:
        kind: ``student`` or ``teacher``; arch: constructor kwargs; classes: C names in score order;
        norm: ``torchvision`` | ``caffe``; frame_size: side the image is warped to (None when an old
        file does not record it, e.g. a stage-1 student); input_size: side the network sees.
    """

    path: str
    kind: str
    arch: dict[str, Any]
    classes: list[str]
    norm: str
    frame_size: int | None
    input_size: int
    config: dict[str, Any]
    format_version: int
    provenance: dict[str, Any] | None = None
    seed: int | None = None
    experiment: str | None = None
    proposals: dict[str, Any] | None = None
    rois: int | None = None
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary (no weights)."""
        out = {k: v for k, v in self.__dict__.items() if k != "state_dict"}
        out["num_classes"] = len(self.classes)
        out["parameters"] = int(sum(v.numel() for k, v in self.state_dict.items() if "running_" not in k
                                    and not k.endswith("num_batches_tracked")))  # fmt: skip
        return out


def _kind_of(state: dict[str, Any]) -> str:
    if state.get("kind") in KINDS:
        return state["kind"]
    # Format 1: the student's arch records its temperature init, the teacher has two fc8 heads.
    if "tau_init" in state.get("arch", {}) or "tau" in state.get("model", {}):
        return "student"
    if "fc8_c.weight" in state.get("model", {}):
        return "teacher"
    raise ModelFileError("cannot tell whether it holds a student or a teacher")


def read_model_file(
    path: Path | str,
    *,
    expect_kind: str | None = None,
    expect_classes: int | list[str] | None = None,
    expect_arch: dict[str, Any] | None = None,
) -> ModelInfo:
    """Load a model file (``weights_only=True``) and check it is the model the caller expects.

    Args:
        expect_kind: ``student`` | ``teacher`` (None: either).
        expect_classes: a class count, or the class names in order (None: any).
        expect_arch: architecture keys that must match (e.g. ``{"backbone": "small"}``).
    Raises:
        ModelFileError: naming the file and both values when the kind, the class count / names or an
            architecture key differ, or when a required field is missing.
    """
    state = load_model_file(path)
    try:
        kind = _kind_of(state)
    except ModelFileError as exc:
        raise ModelFileError(f"model file {path}: {exc}") from None
    if expect_kind is not None and kind != expect_kind:
        raise ModelFileError(f"model file {path} holds a {kind} (arch {state['arch'].get('backbone')} backbone, "
                             f"{state['arch'].get('num_classes')} classes), but a {expect_kind} was expected; "
                             f"pass a {expect_kind} model file")  # fmt: skip
    for key in ("model", "arch", "classes", "config", "norm"):
        if key not in state:
            raise ModelFileError(f"model file {path} has no '{key}' entry: it was not written by kdwsd's "
                                 f"save_model_file")  # fmt: skip
    arch, cfg, classes = dict(state["arch"]), dict(state["config"]), list(state["classes"])
    if arch.get("num_classes") != len(classes):
        raise ModelFileError(f"model file {path}: arch has {arch.get('num_classes')} classes but {len(classes)} "
                             f"class names are stored")  # fmt: skip
    if expect_classes is not None:
        want = expect_classes if isinstance(expect_classes, int) else len(expect_classes)
        if want != len(classes):
            raise ModelFileError(f"model file {path} has {len(classes)} classes {classes}, but {want} were "
                                 f"expected")  # fmt: skip
        if not isinstance(expect_classes, int) and list(expect_classes) != classes:
            raise ModelFileError(f"model file {path} has classes {classes}, expected {list(expect_classes)}")
    for key, want in (expect_arch or {}).items():
        have = arch.get(key)
        if (list(have) if isinstance(have, tuple) else have) != (list(want) if isinstance(want, tuple) else want):
            raise ModelFileError(f"model file {path}: architecture '{key}' is {have!r} in the file but {want!r} "
                                 f"was expected")  # fmt: skip
    if kind == "student":
        input_size = int(state.get("input_size", cfg.get("size", 0)))
        frame = state.get("frame_size")
    else:
        input_size = int(state.get("input_size", cfg.get("test_size", 0)))
        frame = state.get("frame_size", input_size)
    if input_size <= 0:
        raise ModelFileError(f"model file {path}: no input size (neither 'input_size' nor config "
                             f"'{'size' if kind == 'student' else 'test_size'}')")  # fmt: skip
    return ModelInfo(
        path=str(path), kind=kind, arch=arch, classes=classes, norm=str(state["norm"]),
        frame_size=None if frame is None else int(frame), input_size=input_size, config=cfg,
        format_version=int(state.get("format_version", 1)), provenance=state.get("provenance"),
        seed=state.get("seed"), experiment=state.get("experiment"), proposals=state.get("proposals"),
        rois=state.get("rois", cfg.get("rois", cfg.get("num_rois"))), state_dict=state["model"],
    )  # fmt: skip
