"""Stage: train the WSDDN teacher on image-level labels (multi-scale + mirror), and load it back."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from kdwsd.data.dataset import MultiLabelImages, epoch_loader
from kdwsd.data.prepared import load_split
from kdwsd.losses import wsddn_bce
from kdwsd.modelfile import teacher_metadata
from kdwsd.models.heads import network_kwargs
from kdwsd.models.teacher import WSDDN, wsddn_scores
from kdwsd.proposals.store import ProposalStore
from kdwsd.train.loop import (
    OptimConfig,
    caffe_param_groups,
    clear_checkpoint,
    file_fingerprint,
    fit,
    load_model_file,
    pick_device,
    save_model_file,
    seed_everything,
)

__all__ = ["build_teacher", "load_teacher", "teacher_step", "train_teacher"]

log = logging.getLogger("kdwsd.train")


def build_teacher(cfg: dict[str, Any], num_classes: int) -> WSDDN:
    """A WSDDN from the ``teacher`` config section."""
    return WSDDN(num_classes, **network_kwargs(cfg))


def load_teacher(path: Path | str) -> WSDDN:
    """Rebuild a trained teacher from its model file (no pretrained download needed)."""
    state = load_model_file(path)
    arch = dict(state["arch"])
    model = WSDDN(pretrained="none", **arch)
    model.load_state_dict(state["model"])
    return model.eval()


def teacher_step(model: WSDDN, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """WSDDN forward + BCE on image labels (the only supervision)."""
    out = model(batch["image"], batch["boxes"], batch["box_scores"], batch["mask"])
    _, scores = wsddn_scores(out.cls_logits, out.det_logits, out.mask)
    return wsddn_bce(scores, batch["labels"]), {}


def train_teacher(
    cfg: dict[str, Any],
    data_dir: Path | str,
    proposal_shards: list[str],
    out_model: Path | str,
    checkpoint_dir: Path | str,
    log_csv: Path | str,
    norm: str,
    device: str = "auto",
) -> None:
    """Train T-WDet on the ``train`` split and write ``out_model``."""
    seed_everything(cfg["seed"])
    dev = pick_device(device)
    split = load_split(data_dir, "train")
    dataset = MultiLabelImages(split, norm, ProposalStore(proposal_shards), max_rois=cfg["num_rois"])
    optim = OptimConfig.from_dict(cfg["optim"])
    batches = epoch_loader(dataset, optim.batch_size, cfg["train_sizes"], cfg["flip"], cfg["seed"],
                           cfg.get("loader_workers", 0))  # fmt: skip
    model = build_teacher(cfg, len(split.classes))
    log.info("teacher: %d train images, %d classes, device %s", len(split), len(split.classes), dev)
    groups = caffe_param_groups(model, optim, WSDDN.head_prefixes())
    fit(model, teacher_step, batches, optim, groups, checkpoint_dir, log_csv, dev,
        fingerprint={"teacher": cfg, "norm": norm, "inputs": file_fingerprint([data_dir, *proposal_shards])},
        desc="teacher")  # fmt: skip
    save_model_file(out_model, model, teacher_metadata(classes=split.classes, config=cfg, norm=norm))
    clear_checkpoint(checkpoint_dir)
