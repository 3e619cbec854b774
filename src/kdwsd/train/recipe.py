"""The training recipe shared by the teacher and every student: seed, build, param groups, fit, save."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdwsd.data.dataset import MultiLabelImages, epoch_loader
from kdwsd.device import resolve_device
from kdwsd.modelfile import save_model_file
from kdwsd.train.loop import (
    Normaliser,
    OptimConfig,
    StepFn,
    caffe_param_groups,
    clear_checkpoint,
    fit,
    images_in_batch,
    seed_everything,
)

__all__ = ["train_and_save"]

log = logging.getLogger("kdwsd.train")


def train_and_save(
    *,
    build: Callable[[], nn.Module],
    dataset: MultiLabelImages,
    sizes: Sequence[int],
    flip: bool,
    seed: int,
    optim: OptimConfig,
    step: StepFn,
    head_prefixes: Sequence[str],
    lr_mults: dict[str, tuple[float, float]] | None,
    device: str,
    checkpoint_dir: Path | str,
    curve: Path | str,
    out_model: Path | str,
    fingerprint: Any,
    metadata: dict[str, Any],
    loader_workers: int,
    desc: str,
    precision: str = "fp32",
    normaliser: Normaliser = images_in_batch,
    wrap_step: Callable[[StepFn, torch.device], StepFn] | None = None,
    epoch_end: Callable[[nn.Module, int], dict[str, Any]] | None = None,
) -> nn.Module:
    """Seed everything, ``build()`` the model (after seeding: its initialisation is part of the seed), train
    it with :func:`~kdwsd.train.loop.fit` (Caffe lr/decay multipliers, resumable) and write ``out_model``.

    Args:
        build: returns the model, with parameters that must not train already frozen.
        sizes, flip: the square sides drawn per mini-batch and random mirroring (the sampler's).
        lr_mults: exact parameter names -> ``(lr_mult, decay_mult)`` (e.g. the student's τ).
        metadata: stored in the model file next to the weights (docs/formats.md §3).
        precision, normaliser: see :func:`~kdwsd.train.loop.fit` (``optim.accumulate`` micro-batches).
        wrap_step: ``wrap_step(step, device)`` -> the step actually run (e.g. live teacher targets).
        epoch_end: extra curve columns after each epoch (see :func:`~kdwsd.train.loop.fit`).
    """
    seed_everything(seed)
    dev = resolve_device(str(device), where="device")
    batches = epoch_loader(dataset, optim.batch_size, sizes, flip, seed, loader_workers)
    model = build()
    log.info("%s: %d train images, device %s", desc, len(dataset), dev)
    groups = caffe_param_groups(model, optim, head_prefixes, lr_mults)
    if wrap_step is not None:
        step = wrap_step(step, dev)
    fit(model, step, batches, optim, groups, checkpoint_dir, curve, dev, fingerprint=fingerprint, desc=desc,
        precision=precision, accumulate=optim.accumulate, normaliser=normaliser,
        divergence_factor=optim.divergence_factor, epoch_end=epoch_end)  # fmt: skip
    save_model_file(out_model, model, metadata)
    clear_checkpoint(checkpoint_dir)
    return model
