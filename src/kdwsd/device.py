"""Devices: which device a job uses (checked, fail-fast), one GPU per local job, and numeric precision.

* :func:`resolve_device` turns a config's ``device`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``) into a
  :class:`torch.device`. ``auto`` silently falls back to the CPU; an explicit ``cuda`` that is not usable
  raises :class:`DeviceUnavailableError` with what was asked for and what was found (torch version and its
  CUDA build, ``torch.cuda.is_available()``, device count, the driver's error, ``CUDA_VISIBLE_DEVICES``),
  instead of a driver traceback hours into a job or, worse, days of CPU training.
* :func:`preflight_device` runs the same check once before any local job starts (the Snakefile's
  ``onstart``), and does nothing when the jobs run elsewhere (a cluster executor, or inside a SLURM
  allocation): a login node without a GPU must not refuse to submit GPU jobs.
* :func:`assign_local_gpu` gives each of several GPU jobs running side by side on one machine its own GPU:
  a non-blocking ``flock`` on one slot file per GPU under ``slot_dir``. The lock belongs to the open file,
  so the operating system releases it when the process exits, crashed or not (no stale slots to clean).
  Under SLURM the scheduler has already isolated the job's GPU(s) in ``CUDA_VISIBLE_DEVICES``: index 0.
* :func:`job_device` is what a job calls: the resolved device, with the claimed GPU when several are visible.

``precision`` is one of ``fp32`` (no autocast: the default, and what targets and reported metrics use),
``bf16`` or ``fp16`` (autocast on CUDA only; fp16 training also needs a gradient scaler). On a CPU the two
reduced precisions fall back to fp32 with one logged warning, so that CPU runs and tests still pass.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GPU_SLOT_DIR",
    "LOCAL_EXECUTORS",
    "PRECISIONS",
    "DeviceUnavailableError",
    "assign_local_gpu",
    "autocast",
    "autocast_dtype",
    "cuda_report",
    "grad_scaler",
    "job_device",
    "preflight_device",
    "release_local_gpu",
    "resolve_device",
]

log = logging.getLogger("kdwsd.device")

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_warned: set[tuple[str, str]] = set()

#: Where the jobs of a local run claim their GPU (relative to the Snakemake working directory).
GPU_SLOT_DIR = ".snakemake/gpu-slots"

#: Snakemake executors whose jobs run on this machine (``None``: no executor given = local).
LOCAL_EXECUTORS = frozenset({None, "", "local"})

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


class DeviceUnavailableError(RuntimeError):
    """An explicitly requested device cannot be used here. ``report``: the facts behind the message."""

    def __init__(self, message: str, report: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.report = dict(report)


def cuda_report(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What this process can see of CUDA, without raising.

    Returns ``{"torch": version, "torch_cuda_build": str | None, "is_available": bool, "device_count": int,
    "init_error": str | None, "CUDA_VISIBLE_DEVICES": str | None}``. ``init_error`` is the first line of
    the exception ``torch.cuda.init()`` raises when CUDA is not available (e.g. "Found no NVIDIA driver on
    your system", or the driver-too-old message of a cu130 wheel on an older driver).
    """
    env = os.environ if env is None else env
    available = bool(torch.cuda.is_available())
    init_error = None
    if not available:  # only then: initialising CUDA would cost a context (and break fork) in this process
        try:
            torch.cuda.init()
        except Exception as exc:  # any driver / build failure: report it, never let its traceback escape
            lines = str(exc).strip().splitlines()
            init_error = f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()
    try:
        count = int(torch.cuda.device_count())
    except Exception:
        count = 0
    return {
        "torch": torch.__version__,
        "torch_cuda_build": torch.version.cuda,
        "is_available": available,
        "device_count": count,
        "init_error": init_error,
        "CUDA_VISIBLE_DEVICES": env.get("CUDA_VISIBLE_DEVICES"),
    }


def _describe(report: Mapping[str, Any]) -> str:
    build = report["torch_cuda_build"] or "none (a CPU-only build)"
    visible = report["CUDA_VISIBLE_DEVICES"]
    return (
        f"torch {report['torch']} (CUDA build: {build}), torch.cuda.is_available() = {report['is_available']}, "
        f"device count = {report['device_count']}, driver/init error: {report['init_error'] or 'none'}, "
        f"CUDA_VISIBLE_DEVICES = {'unset' if visible is None else repr(visible)}"
    )


def resolve_device(requested: str, *, where: str, env: Mapping[str, str] | None = None) -> torch.device:
    """The device for ``requested``, or a clear error when an explicit CUDA device is missing.

    Args:
        requested: ``"auto"`` (CUDA device 0 when available, else the CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``.
        where: what asked for it, named in errors (e.g. ``"config key teacher.device"``).
        env: environment to report ``CUDA_VISIBLE_DEVICES`` from (default ``os.environ``).

    Raises:
        ValueError: ``requested`` is not one of the forms above.
        DeviceUnavailableError: ``cuda`` / ``cuda:N`` is not usable in this process.
    """
    m = _DEVICE_RE.match(str(requested).strip())
    if not m:
        raise ValueError(f"{where}: device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {requested!r}")
    kind, index = m.group(1), m.group(2)
    if kind == "cpu":
        if index is not None:
            raise ValueError(f"{where}: device 'cpu' takes no index, got {requested!r}")
        return torch.device("cpu")
    if kind == "auto":
        if index is not None:
            raise ValueError(f"{where}: device 'auto' takes no index, got {requested!r}")
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report = cuda_report(env)
    wanted = int(index) if index is not None else 0
    if not report["is_available"] or report["device_count"] <= wanted:
        reason = ("CUDA is not available" if not report["is_available"]
                  else f"only {report['device_count']} CUDA device(s) are visible")  # fmt: skip
        raise DeviceUnavailableError(
            f"{where} asks for device {requested!r}, but {reason}: {_describe(report)}. "
            "Fix: run on a GPU node; install a torch build whose CUDA version the driver supports "
            "(nvidia-smi shows the highest CUDA version of the driver); or set the device to 'auto' / 'cpu' "
            "to train on the CPU on purpose.",
            report,
        )
    return torch.device("cuda", wanted)


def preflight_device(
    requested: str,
    executor: str | None,
    *,
    where: str = "config key device",
    env: Mapping[str, str] | None = None,
) -> torch.device | None:
    """Check ``requested`` once before any job starts, only when jobs will run on this machine.

    Args:
        requested: the configured device (see :func:`resolve_device`).
        executor: the Snakemake executor's name (``--executor``); ``None`` / ``"local"`` = this machine.
        where: named in the error.
        env: environment (default ``os.environ``); ``SLURM_JOB_ID`` there means we are inside a SLURM
            allocation and the compute node's own job does the check.

    Returns:
        the resolved device, or ``None`` when the check was skipped (cluster executor or SLURM allocation:
        a login node without a GPU must not refuse to submit GPU jobs; each job checks on its node).

    Raises:
        DeviceUnavailableError, ValueError: as :func:`resolve_device`.
    """
    env = os.environ if env is None else env
    if executor not in LOCAL_EXECUTORS or env.get("SLURM_JOB_ID"):
        return None
    return resolve_device(requested, where=where, env=env)


# --------------------------------------------------------------------------------------------------
# one GPU per local job
# --------------------------------------------------------------------------------------------------
# slot_dir -> (open lock file, index); the open file holds the flock until release or process exit.
_HELD: dict[Path, tuple[Any, int]] = {}


def _scheduler_isolated(env: Mapping[str, str]) -> bool:
    """True when a scheduler (SLURM) set CUDA_VISIBLE_DEVICES for this job."""
    return bool(env.get("CUDA_VISIBLE_DEVICES")) and bool(env.get("SLURM_JOB_ID"))


def assign_local_gpu(
    slot_dir: Path | str,
    n_gpus: int,
    *,
    timeout: float = 60.0,
    poll: float = 0.2,
    env: Mapping[str, str] | None = None,
) -> int:
    """Claim a GPU index in ``[0, n_gpus)`` that no other process of this machine holds.

    With Snakemake's ``resources: gpu=1`` per GPU rule and ``--resources gpu=N``, at most N GPU jobs run at
    once and each finds a free slot. Slot ``i`` is an exclusive ``flock`` on ``slot_dir/gpu<i>.lock`` (which
    records the holder's pid for people); it is released by :func:`release_local_gpu` or when the process
    exits. Calling again in the same process returns the slot it already holds.

    The index counts the devices this process sees: with ``CUDA_VISIBLE_DEVICES=2,3`` set by the user,
    index 1 is physical GPU 3. Inside a SLURM job whose ``CUDA_VISIBLE_DEVICES`` the scheduler set, the
    job's GPU is already isolated: returns 0 and touches no file.

    Args:
        slot_dir: folder of the slot files (e.g. ``.snakemake/gpu-slots``); created if missing. Must be on
            a local file system shared by the jobs (``flock`` over NFS is unreliable).
        n_gpus: number of GPUs to share (usually ``torch.cuda.device_count()``); >= 1.
        timeout: seconds to wait for a free slot before giving up.
        poll: seconds between attempts while waiting.
        env: environment (default ``os.environ``).

    Raises:
        ValueError: ``n_gpus < 1``.
        TimeoutError: every slot stayed taken for ``timeout`` seconds (more GPU jobs than GPUs: make
            ``--resources gpu=N`` at most the number of GPUs).
    """
    env = os.environ if env is None else env
    if n_gpus < 1:
        raise ValueError(f"assign_local_gpu: n_gpus must be >= 1, got {n_gpus}")
    if _scheduler_isolated(env):
        return 0
    slot_dir = Path(slot_dir).resolve()
    if slot_dir in _HELD:
        return _HELD[slot_dir][1]
    if fcntl is None:  # pragma: no cover - non-POSIX: no sharing protection, use the first GPU
        return 0
    slot_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for i in range(n_gpus):
            f = open(slot_dir / f"gpu{i}.lock", "a+")  # noqa: SIM115 - kept open: it holds the lock
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            f.truncate(0)
            f.write(f"{os.getpid()}\n")
            f.flush()
            _HELD[slot_dir] = (f, i)
            return i
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"no free GPU slot in {slot_dir} after {timeout:.0f} s: all {n_gpus} slot(s) are held by "
                f"other processes (their pids are in the gpu*.lock files). Run at most {n_gpus} GPU job(s) "
                f"at once (snakemake --resources gpu={n_gpus})."
            )
        time.sleep(poll)


def release_local_gpu(slot_dir: Path | str) -> None:
    """Give back the slot this process holds under ``slot_dir`` (no-op when it holds none)."""
    held = _HELD.pop(Path(slot_dir).resolve(), None)
    if held is not None:
        held[0].close()  # closing the file drops the flock


def job_device(
    requested: str,
    *,
    where: str,
    slot_dir: Path | str | None,
    env: Mapping[str, str] | None = None,
) -> torch.device:
    """The device one training / inference job uses: :func:`resolve_device`, then, for ``auto`` / ``cuda``
    on a machine with several visible GPUs, the GPU claimed by :func:`assign_local_gpu` under ``slot_dir``.

    An explicit ``cuda:N`` is used as given; ``slot_dir=None`` disables the claim (device 0). Inside a SLURM
    job that isolated its GPU, the claim returns 0 without touching ``slot_dir``.
    """
    device = resolve_device(requested, where=where, env=env)
    explicit_index = ":" in str(requested)
    if device.type != "cuda" or explicit_index or slot_dir is None:
        return device
    n = torch.cuda.device_count()
    if n <= 1:
        return device
    return torch.device("cuda", assign_local_gpu(slot_dir, n, env=env))


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32.

    bf16 / fp16 apply on CUDA only; elsewhere they are disabled (one warning per device type and setting).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (expected one of {sorted(PRECISIONS)})")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return None
    if device.type != "cuda":
        if (device.type, precision) not in _warned:
            _warned.add((device.type, precision))
            log.warning("precision '%s' is only used on CUDA; running in fp32 on %s", precision, device.type)
        return None
    return dtype


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """An autocast context for ``precision`` on ``device`` (disabled for fp32 and off CUDA)."""
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 autocast on CUDA (bf16 and fp32 need none).

    A disabled scaler is a pass-through: ``scale(loss)`` is ``loss`` and ``step(opt)`` is ``opt.step()``.
    """
    enabled = autocast_dtype(device, precision) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)
