"""The one training loop used by the teacher and every student experiment.

Seeding, Caffe-style per-parameter learning-rate / decay multipliers, a step learning-rate schedule, an
fp32 / bf16 / fp16 precision setting (fp32 by default), gradient accumulation over micro-batches, a
resumable checkpoint at the end of each epoch and on SIGTERM / SIGUSR1 (SLURM's warning before a
preemption or the time limit; kept outside Snakemake's declared outputs), tqdm progress and a CSV + text log.
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
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from kdwsd.device import autocast, grad_scaler
from kdwsd.errors import quarantine
from kdwsd.train.guard import DivergenceGuard

__all__ = [
    "OptimConfig",
    "TrainingInterrupted",
    "caffe_param_groups",
    "clear_checkpoint",
    "file_fingerprint",
    "fit",
    "images_in_batch",
    "seed_everything",
    "split_batch",
    "valid_rois_in_batch",
]

log = logging.getLogger("kdwsd.train")
Batch = dict[str, torch.Tensor]
StepFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]
Normaliser = Callable[[Batch], float]


@dataclass
class OptimConfig:
    """Optimiser knobs: a ``*.optim`` config section, whose types, defaults and meanings the config schema
    (``workflow/schemas/config.schema.yaml``, ``$defs/optim``) owns."""

    epochs: int
    batch_size: int
    optimizer: str  # sgd | adamw
    lr: float
    momentum: float
    weight_decay: float
    lr_steps: list[int]  # epochs after which lr ×= lr_gamma
    lr_gamma: float
    warmup_iters: int
    grad_clip: float | None
    head_lr_mult: float  # Caffe lr_mult of new classifier heads (decay_mult = this too)
    bias_lr_mult: float  # Caffe lr_mult of biases (no decay)
    accumulate: int  # micro-batches per optimiser step
    divergence_factor: float | None  # stop when the loss exceeds this factor x its running mean

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OptimConfig:
        fields = set(cls.__dataclass_fields__)
        unknown, missing = set(d) - fields, fields - set(d)
        if unknown or missing:
            raise KeyError(f"optimiser section: unknown keys {sorted(unknown)}, missing keys {sorted(missing)} "
                           "(a config validated against the schema has every key)")
        return cls(**d)


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


def images_in_batch(batch: Batch) -> float:
    """The normaliser of the classification losses (sum over classes / B): the batch size B."""
    return float(len(batch["image"]))


def valid_rois_in_batch(batch: Batch) -> float:
    """The normaliser of the feature-KD loss (``1 / (2 N_roi)``): the number of valid RoIs, ``mask`` [B, R]."""
    return float(batch["mask"].sum())


def split_batch(batch: Batch, parts: int) -> list[Batch]:
    """Split every tensor of a batch along dim 0 (images) into ``parts`` micro-batches (empty ones dropped).

    Padded RoI arrays keep their width R; their ``mask`` still marks the valid RoIs.
    """
    chunks = {k: torch.tensor_split(v, parts) for k, v in batch.items()}
    micro = [{k: c[i] for k, c in chunks.items()} for i in range(parts)]
    return [m for m in micro if len(next(iter(m.values())))]


class TrainingInterrupted(SystemExit):
    """Raised by :func:`fit` after it wrote a checkpoint on SIGTERM / SIGUSR1; exit status 1 with a message.

    Running the same command again (a SLURM requeue, a Snakemake retry or resubmission) resumes from it.
    """


def _rng_state() -> dict[str, Any]:
    """Every random-number state training consumes, in ``torch.load(weights_only=True)``-safe types."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy_rng": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python_rng": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        if len(state["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        else:
            log.warning("checkpoint has CUDA RNG states of %d devices, this machine %d: not restored",
                        len(state["cuda_rng"]), torch.cuda.device_count())  # fmt: skip
    if state.get("numpy_rng") is not None:
        name, keys, pos, has_gauss, gauss = state["numpy_rng"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if state.get("python_rng") is not None:
        version, internal, gauss_next = state["python_rng"]
        random.setstate((version, tuple(internal), gauss_next))


def _skip_batches(loader: Iterable[Batch], done: int) -> Iterable[Batch]:
    """The batches of an epoch after the first ``done`` (a mid-epoch resume); for a DataLoader only its
    batch sampler is advanced, so the skipped images are not loaded."""
    if isinstance(loader, DataLoader) and loader.batch_sampler is not None:
        keys = list(islice(iter(loader.batch_sampler), done, None))
        return DataLoader(loader.dataset, batch_sampler=keys, collate_fn=loader.collate_fn,
                          num_workers=loader.num_workers, pin_memory=loader.pin_memory)  # fmt: skip
    return islice(loader, done, None)


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
    desc: str = "train",
    precision: str = "fp32",
    accumulate: int = 1,
    normaliser: Normaliser = images_in_batch,
    divergence_factor: float | None = 1e3,
    epoch_end: Callable[[nn.Module, int], dict[str, Any]] | None = None,
) -> nn.Module:
    """Train ``model`` for ``cfg.epochs`` epochs, resuming from ``checkpoint_dir/last.pt`` when present.

    Args:
        step: ``step(model, batch) -> (loss, {name: value})``; the batch is already on ``device``; ``loss``
            is normalised by ``normaliser(batch)`` (a sum over the batch divided by it).
        batches: ``batches(epoch)`` returns that epoch's mini-batches (deterministic per epoch).
        fingerprint: anything JSON-serialisable identifying the run's configuration; a checkpoint written
            under another fingerprint is not resumed (it is set aside as ``last.pt.stale``); an unreadable
            (truncated, corrupt) one is set aside as ``last.pt.corrupt`` and training starts over.
        precision: ``fp32`` | ``bf16`` | ``fp16`` autocast (reduced precisions on CUDA only; fp16 with a
            gradient scaler).
        accumulate: micro-batches per optimiser step. Each batch is split into ``accumulate`` parts along
            the images; part ``i``'s loss is weighted by ``normaliser(part_i) / normaliser(batch)`` so that the
            accumulated gradient equals the whole batch's (exact for models without batch norm; dropout
            draws differ). 1 runs the batch at once, exactly as before.
        normaliser: what a step's loss is divided by: :func:`images_in_batch` (B, classification losses)
            or :func:`valid_rois_in_batch` (N_roi, feature KD). Used only when ``accumulate > 1``.

        epoch_end: ``epoch_end(model, epochs_done) -> {column: value}`` adds columns to the epoch's row of the
            curve (e.g. validation mAP); every random state is restored after it, so it changes no training.
        divergence_factor: stop (:class:`~kdwsd.train.guard.TrainingDivergedError`, naming ``desc``, the epoch,
            the step and the term) when a loss term is non-finite or exceeds this factor x its running mean;
            None checks only that the loss is finite. The checkpoint of the last finished epoch is kept.

    On SIGTERM or SIGUSR1 the current step completes, a checkpoint with the position inside the epoch
    and all RNG states is written and :class:`TrainingInterrupted` is raised; the next call resumes there.
    """
    if accumulate < 1:
        raise ValueError(f"{desc}: accumulate must be >= 1 (got {accumulate})")
    ckpt_dir = Path(checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "last.pt"
    fp = _fingerprint(fingerprint)
    model.to(device)
    optimizer = _make_optimizer(param_groups, cfg)
    guard = DivergenceGuard(divergence_factor) if divergence_factor else None
    scaler = grad_scaler(device, precision)
    start_epoch, it, skip = 0, 0, 0
    resume: dict[str, Any] | None = None
    state = _load_checkpoint(ckpt, desc) if ckpt.is_file() else None
    if state is not None:
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            start_epoch, it = int(state["epoch"]), int(state["iteration"])
            skip = int(state.get("batch_in_epoch", 0))
            resume = state
            if not skip:  # at an epoch boundary the RNG is restored before the epoch's loader starts
                _set_rng_state(state)
            log.info("%s: resuming from checkpoint %s at epoch %d/%d%s", desc, ckpt, start_epoch, cfg.epochs,
                     f", batch {skip}" if skip else "")  # fmt: skip
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

    def save(epochs_done: int, batch_in_epoch: int, epoch_progress: dict[str, Any] | None) -> None:
        tmp = ckpt.with_name("last.pt.tmp")
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
             "epoch": epochs_done, "batch_in_epoch": batch_in_epoch, "epoch_progress": epoch_progress,
             "iteration": it, **_rng_state(), "fingerprint": fp, "optim_config": asdict(cfg)},
            tmp,
        )  # fmt: skip
        os.replace(tmp, ckpt)

    if resume is None:
        note("starting from scratch")
    else:
        note(f"resumed from checkpoint epoch {start_epoch}" + (f" batch {skip}" if skip else ""))

    with _stop_on_signals() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            mid = epoch == start_epoch and skip > 0
            note(f"epoch {epoch + 1}/{cfg.epochs} " + (f"resumed at batch {skip}" if mid else "started"))
            model.train()
            partial = (resume or {}).get("epoch_progress") if mid else None
            sums: dict[str, float] = dict(partial["sums"]) if partial else {}
            n_batches = int(partial["batches"]) if partial else 0
            n_images = int(partial["images"]) if partial else 0
            seconds_before = float(partial["seconds"]) if partial else 0.0
            t0 = time.perf_counter()
            loader = batches(epoch)
            if mid:
                loader = _skip_batches(loader, skip)
            total = len(loader) if hasattr(loader, "__len__") else None
            iterator = iter(loader)
            if mid and resume is not None:  # the interrupted run had already started this epoch's loader
                _set_rng_state(resume)
            bar = tqdm(iterator, desc=f"{desc} epoch {epoch + 1}/{cfg.epochs}", leave=False, mininterval=2,
                       total=total, initial=n_batches if mid else 0)  # fmt: skip
            for batch in bar:
                factor = _lr_factor(cfg, epoch, it)
                for g in optimizer.param_groups:
                    g["lr"] = cfg.lr * g["lr_mult"] * factor
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                if accumulate == 1:  # the whole batch at once (the default; keep this path op for op)
                    with autocast(device, precision):
                        loss, terms = step(model, batch)
                    loss_value = loss.item()
                    _check_loss(guard, loss_value, desc, epoch + 1, it, terms)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                else:
                    where = f"{desc}: epoch {epoch + 1}, iteration {it}"
                    loss_value, terms = _accumulate(model, step, batch, accumulate, normaliser, device, precision,
                                                    optimizer, scaler, where)  # fmt: skip
                    _check_loss(guard, loss_value, desc, epoch + 1, it, terms)
                if cfg.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                it += 1
                n_batches += 1
                n_images += len(batch["image"])
                for k, v in {"loss": loss_value, **terms}.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                bar.set_postfix(loss=f"{sums['loss'] / n_batches:.4f}", refresh=False)  # redraw at mininterval only
                if stop:
                    seconds = seconds_before + time.perf_counter() - t0
                    save(epoch, n_batches, {"sums": sums, "batches": n_batches, "images": n_images, "seconds": seconds})
                    _interrupted(stop[0], ckpt, desc, f"epoch {epoch + 1}/{cfg.epochs}, batch {n_batches}", note)
            seconds = seconds_before + time.perf_counter() - t0
            row = {"epoch": epoch + 1, **{k: v / max(n_batches, 1) for k, v in sums.items()},
                   "lr": cfg.lr * _lr_factor(cfg, epoch, it), "images_per_s": n_images / max(seconds, 1e-9),
                   "seconds": seconds}  # fmt: skip
            if epoch_end is not None:
                rng = _rng_state()
                row.update(epoch_end(model, epoch + 1))
                _set_rng_state(rng)
            _append_csv(curve, row)
            log.info("%s: epoch %d/%d %s", desc, epoch + 1, cfg.epochs,
                     " ".join(f"{k}={v:.4g}" for k, v in row.items()
                              if k != "epoch" and isinstance(v, float | int)))  # fmt: skip
            save(epoch + 1, 0, None)
            note(f"epoch {epoch + 1}/{cfg.epochs} done")
            if stop:
                _interrupted(stop[0], ckpt, desc, f"the end of epoch {epoch + 1}/{cfg.epochs}", note)
    shutil.copyfile(curve, log_csv)
    return model


def _check_loss(
    guard: DivergenceGuard | None, value: float, desc: str, epoch: int, it: int, terms: dict[str, float]
) -> None:
    """Stop on a non-finite loss, and (with a guard) on one that grew past its factor x the running mean."""
    if guard is not None:
        guard.check(value, desc, epoch, it, terms)
    elif not math.isfinite(value):
        raise FloatingPointError(f"{desc}: loss is {value} at epoch {epoch}, iteration {it}")


def _load_checkpoint(ckpt: Path, desc: str) -> dict[str, Any] | None:
    """Read a resumable checkpoint; an unreadable one is moved aside (``last.pt.corrupt``) and None returned,
    so that a truncated file (e.g. the disk filled during a save) does not fail every rerun."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not {"model", "optimizer", "epoch", "iteration"} <= state.keys():
            raise ValueError("not a kdwsd training checkpoint (keys missing)")
        return state
    except Exception as exc:  # torch raises RuntimeError / OSError / EOFError / UnpicklingError for bad files
        dest = quarantine(ckpt, stamp=False)
        log.warning("%s: checkpoint %s is unreadable (%s: %s); moved aside to %s, training starts over",
                    desc, ckpt, type(exc).__name__, exc, dest)  # fmt: skip
        return None


@contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """Collect SIGTERM / SIGUSR1 into the yielded list instead of dying; the previous handlers are restored.

    SLURM sends SIGTERM (or the job's ``--signal``, e.g. ``USR1@120``) before it kills a job, so the loop
    can finish its step and write a checkpoint. Handlers can only be installed from the main thread.
    """
    stop: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, lambda signum, frame: stop.append(signum))
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _accumulate(
    model: nn.Module,
    step: StepFn,
    batch: Batch,
    parts: int,
    normaliser: Normaliser,
    device: torch.device,
    precision: str,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    where: str,
) -> tuple[float, dict[str, float]]:
    """Backpropagate ``batch`` as ``parts`` micro-batches whose losses are re-weighted to the whole batch's
    normalisation; returns the whole-batch loss and terms (terms weighted like the loss)."""
    micro = split_batch(batch, parts)
    norms = [normaliser(m) for m in micro]
    whole = sum(norms)
    optimizer.zero_grad(set_to_none=True)
    loss_value, terms = 0.0, {}
    for m, n in zip(micro, norms, strict=True):
        weight = n / whole if whole else 0.0
        with autocast(device, precision):
            loss, t = step(model, m)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"{where}: loss is {loss.item()} (micro-batch of {len(m['image'])} images)")
        scaler.scale(loss * weight).backward()
        loss_value += weight * loss.item()
        for k, v in t.items():
            terms[k] = terms.get(k, 0.0) + weight * float(v)
    return loss_value, terms


def _interrupted(signum: int, ckpt: Path, desc: str, where: str, note: Callable[[str], None]) -> None:
    name = signal.Signals(signum).name
    msg = f"{desc}: stopped by {name} at {where}; checkpoint written to {ckpt}. Run the same job again to resume."
    note(f"stopped by {name} at {where}, checkpoint written")
    log.warning(msg)
    raise TrainingInterrupted(msg)


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
