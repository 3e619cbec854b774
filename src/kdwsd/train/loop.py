"""The one training loop used by the teacher and every student experiment.

Device auto-selection (CUDA when present, bf16 autocast there), seeding, Caffe-style per-parameter
learning-rate / decay multipliers, a step learning-rate schedule, a resumable checkpoint at the end of each
epoch (kept outside Snakemake's declared outputs), tqdm progress and a CSV + text log.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from kdwsd.modelfile import load_model_file, save_model_file  # re-exported: the format lives there

__all__ = [
    "OptimConfig",
    "autocast",
    "caffe_param_groups",
    "clear_checkpoint",
    "file_fingerprint",
    "fit",
    "load_model_file",
    "pick_device",
    "save_model_file",
    "seed_everything",
]

log = logging.getLogger("kdwsd.train")
Batch = dict[str, torch.Tensor]
StepFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class OptimConfig:
    """Optimiser knobs (a ``*.optim`` section of the config)."""

    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_steps: list[int] = field(default_factory=list)  # epochs after which lr ×= lr_gamma
    lr_gamma: float = 0.1
    warmup_iters: int = 0
    grad_clip: float | None = None
    head_lr_mult: float = 10.0  # Caffe lr_mult of new classifier heads (decay_mult = this too)
    bias_lr_mult: float = 2.0  # Caffe lr_mult of biases (no decay)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OptimConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise KeyError(f"unknown optimiser keys: {sorted(unknown)}")
        return cls(**d)


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """bf16 autocast on CUDA; a disabled context elsewhere (evaluation scores are computed in fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def caffe_param_groups(
    model: nn.Module,
    cfg: OptimConfig,
    head_prefixes: Sequence[str],
    extra: dict[str, tuple[float, float]] | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups with the authors' Caffe multipliers.

    weights ×1 lr / ×1 decay; biases and norm parameters ×``bias_lr_mult`` lr / no decay; parameters whose
    name starts with a head prefix: weights ×``head_lr_mult`` lr and decay, biases ×2·``head_lr_mult`` lr;
    ``extra`` maps exact parameter names to ``(lr_mult, decay_mult)`` (e.g. the student's τ: (10, 0)).
    """
    extra = extra or {}
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_bias = p.ndim <= 1
        head = any(name.startswith(h) for h in head_prefixes)
        if name in extra:
            mults = extra[name]
        elif head:
            mults = (cfg.head_lr_mult * (cfg.bias_lr_mult if is_bias else 1.0), 0.0 if is_bias else cfg.head_lr_mult)
        else:
            mults = (cfg.bias_lr_mult, 0.0) if is_bias else (1.0, 1.0)
        groups.setdefault(mults, []).append(p)
    return [
        {"params": ps, "lr_mult": lm, "lr": cfg.lr * lm, "weight_decay": cfg.weight_decay * dm}
        for (lm, dm), ps in groups.items()
    ]


def _make_optimizer(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}' (expected 'sgd' or 'adamw')")


def _lr_factor(cfg: OptimConfig, epoch: int, it: int) -> float:
    factor = cfg.lr_gamma ** sum(epoch >= s for s in cfg.lr_steps)
    if it < cfg.warmup_iters:
        factor *= (it + 1) / cfg.warmup_iters
    return factor


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_fingerprint(paths: Iterable[Path | str]) -> list[tuple[str, int]]:
    """``(name, size)`` of input files: part of a run's fingerprint, so that a checkpoint left by an
    interrupted run is not resumed after its inputs changed."""
    out = []
    for p in paths:
        p = Path(p)
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        out.append((p.name, size))
    return out


def clear_checkpoint(checkpoint_dir: Path | str) -> None:
    """Remove the resumable checkpoint once the final model is safely written (``progress.log``, the
    history of attempts, is kept)."""
    d = Path(checkpoint_dir)
    for name in ("last.pt", "last.pt.tmp", "last.pt.stale", "curve.csv"):
        (d / name).unlink(missing_ok=True)
    if d.is_dir() and not any(d.iterdir()):
        d.rmdir()


def fit(
    model: nn.Module,
    step: StepFn,
    batches: Callable[[int], Iterable[Batch]],
    cfg: OptimConfig,
    param_groups: list[dict[str, Any]],
    checkpoint_dir: Path | str,
    log_csv: Path | str,
    device: torch.device,
    fingerprint: Any,
    amp: bool = True,
    desc: str = "train",
) -> nn.Module:
    """Train ``model`` for ``cfg.epochs`` epochs, resuming from ``checkpoint_dir/last.pt`` when present.

    Args:
        step: ``step(model, batch) -> (loss, {name: value})``; the batch is already on ``device``.
        batches: ``batches(epoch)`` returns that epoch's mini-batches (deterministic per epoch).
        fingerprint: anything JSON-serialisable identifying the run's configuration; a checkpoint written
            under another fingerprint is not resumed (it is set aside as ``last.pt.stale``).
    """
    ckpt_dir = Path(checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "last.pt"
    fp = _fingerprint(fingerprint)
    model.to(device)
    optimizer = _make_optimizer(param_groups, cfg)
    start_epoch, it = 0, 0
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, it = int(state["epoch"]), int(state["iteration"])
            torch.set_rng_state(state["torch_rng"])
            log.info("%s: resuming from checkpoint %s at epoch %d/%d", desc, ckpt, start_epoch, cfg.epochs)
        else:
            os.replace(ckpt, ckpt.with_name("last.pt.stale"))
            log.info("%s: checkpoint %s is from another configuration; starting over", desc, ckpt)
    log_csv = Path(log_csv)
    log_csv.parent.mkdir(parents=True, exist_ok=True)
    # Per-epoch rows accumulate next to the checkpoint (Snakemake deletes a retried job's declared outputs)
    # and are copied to the declared ``log_csv`` at the end, so a resumed run keeps its earlier epochs.
    curve = ckpt_dir / "curve.csv"
    _keep_epochs(curve, start_epoch)
    # An append-only history of attempts next to the checkpoint: Snakemake deletes a job's declared log
    # before a retry, this file survives (and shows a cluster resubmission resuming).
    job = os.environ.get("SLURM_JOB_ID", f"pid-{os.getpid()}")
    progress = ckpt_dir / "progress.log"

    def note(msg: str) -> None:
        with open(progress, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [job {job}] {msg} ({desc})\n")

    note(f"resumed from checkpoint epoch {start_epoch}" if start_epoch else "starting from scratch")

    for epoch in range(start_epoch, cfg.epochs):
        note(f"epoch {epoch + 1}/{cfg.epochs} started")
        model.train()
        sums: dict[str, float] = {}
        n_batches, n_images, t0 = 0, 0, time.perf_counter()
        bar = tqdm(batches(epoch), desc=f"{desc} epoch {epoch + 1}/{cfg.epochs}", leave=False, mininterval=2)
        for batch in bar:
            factor = _lr_factor(cfg, epoch, it)
            for g in optimizer.param_groups:
                g["lr"] = cfg.lr * g["lr_mult"] * factor
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast(device, amp):
                loss, terms = step(model, batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"{desc}: loss is {loss.item()} at epoch {epoch + 1}, iteration {it}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            it += 1
            n_batches += 1
            n_images += len(batch["image"])
            for k, v in {"loss": loss.item(), **terms}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            bar.set_postfix(loss=f"{sums['loss'] / n_batches:.4f}", refresh=False)  # redraw at mininterval only
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **{k: v / max(n_batches, 1) for k, v in sums.items()},
               "lr": cfg.lr * _lr_factor(cfg, epoch, it), "images_per_s": n_images / max(seconds, 1e-9),
               "seconds": seconds}  # fmt: skip
        _append_csv(curve, row)
        log.info("%s: epoch %d/%d %s", desc, epoch + 1, cfg.epochs,
                 " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))  # fmt: skip
        tmp = ckpt.with_name("last.pt.tmp")
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
             "iteration": it, "torch_rng": torch.get_rng_state(), "fingerprint": fp,
             "optim_config": asdict(cfg)},
            tmp,
        )  # fmt: skip
        os.replace(tmp, ckpt)
        note(f"epoch {epoch + 1}/{cfg.epochs} done")
    shutil.copyfile(curve, log_csv)
    return model


def _keep_epochs(path: Path, epochs: int) -> None:
    """Keep the rows of the first ``epochs`` epochs of a curve CSV (a killed job may have written one more)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epochs]
    path.unlink()
    for r in rows:
        _append_csv(path, r)


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
