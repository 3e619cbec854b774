"""Run a stage function for a Snakemake rule: logging, thread limits, keyword arguments, errors in the log."""

from __future__ import annotations

import inspect
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["COMPUTE_KNOBS", "RuleArgumentError", "rule_kwargs", "run_rule", "setup_logging"]

log = logging.getLogger("kdwsd")

# Speed knobs (config `compute:`): they reach the stage functions outside Snakemake's tracked params, so
# changing one reruns nothing (Snakemake's params trigger would rerun every job downstream).
COMPUTE_KNOBS = ("loader_workers", "proposal_processes", "teacher_batch_size", "student_batch_size",
                 "cache_shard_size", "frame_cache_mb")  # fmt: skip
# Listed only so that editing a library source reruns the rule (code), or so that a pretrained file is fetched
# before the job starts (fetched; its path reaches the stage function through params).
_IGNORED_INPUTS = ("code", "fetched")


class RuleArgumentError(TypeError):
    """A rule and its stage function disagree on an argument name."""


def setup_logging(log_path: Path | str | None, threads: int = 1) -> logging.Logger:
    """Log ``kdwsd.*`` to ``log_path`` (the rule's ``log:`` file) and stderr; limit torch/OpenCV threads."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    log.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.insert(0, logging.FileHandler(log_path, mode="a"))
    for handler in handlers:
        handler.setFormatter(fmt)
        log.addHandler(handler)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(handlers[0])
    import cv2
    import torch

    torch.set_num_threads(max(1, threads))
    cv2.setNumThreads(max(1, threads))
    return log


def _named(io: Any) -> dict[str, list[str]]:
    """``{name: [items]}`` of a Snakemake Namedlist (input / output / log)."""
    # A single named item is recorded as (index, None), a list as (start, end).
    return {name: [str(v) for v in io[start : start + 1 if end is None else end]]
            for name, (start, end) in io._names.items()}  # fmt: skip


def rule_kwargs(snakemake: Any, fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments of ``fn`` taken from the rule (see the package docstring)."""
    signature = inspect.signature(fn)
    accepted = set(signature.parameters)
    rule = getattr(snakemake, "rule", "?")
    files: dict[str, list[str]] = {**_named(snakemake.input), **_named(snakemake.output)}
    for name in _IGNORED_INPUTS:
        files.pop(name, None)
    values: dict[str, Any] = {}
    for name, items in files.items():
        if name not in accepted:
            raise RuleArgumentError(f"rule {rule}: input/output '{name}' is not an argument of {fn.__qualname__}")
        annotation = str(signature.parameters[name].annotation)
        if annotation.startswith(("list", "Sequence")):
            values[name] = items
        elif len(items) == 1:
            values[name] = items[0]
        else:
            raise RuleArgumentError(f"rule {rule}: '{name}' has {len(items)} files, {fn.__qualname__} takes one")
    for name, value in snakemake.params.items():
        if name not in accepted:
            raise RuleArgumentError(f"rule {rule}: params '{name}' is not an argument of {fn.__qualname__}")
        values[name] = value
    # Wildcards are passed where the function asks for them and no file of the same name exists (the
    # student rule's {model} wildcard names its `model` output).
    for name, value in snakemake.wildcards.items():
        if name in accepted and name not in values:
            values[name] = value
    if "threads" in accepted:
        values["threads"] = int(snakemake.threads)
    compute = (snakemake.config or {}).get("compute", {})
    for name in COMPUTE_KNOBS:
        if name in accepted and name in compute:
            values[name] = compute[name]
    missing = [n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty and n not in values]
    if missing:
        raise RuleArgumentError(f"rule {rule}: {fn.__qualname__} needs {missing}, which the rule does not give")
    return values


def run_rule(snakemake: Any, fn: Callable[..., Any]) -> Any:
    """Call the stage function ``fn`` for the running rule.

    A failure is written with its traceback to the rule's log file (the file Snakemake points to, which on a
    cluster is what survives), and the console gets a one-line summary; the exit status is non-zero.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    logger = setup_logging(log_path, int(getattr(snakemake, "threads", 1)))
    wildcards = ", ".join(f"{k}={v}" for k, v in snakemake.wildcards.items())
    logger.info("step %s%s started with %d threads", snakemake.rule, f" ({wildcards})" if wildcards else "",
                snakemake.threads)  # fmt: skip
    try:
        return fn(**rule_kwargs(snakemake, fn))
    except Exception as exc:
        if log_path is not None:
            with open(log_path, "a") as f:
                f.write(f"step {snakemake.rule} failed:\n{traceback.format_exc()}")
        print(f"kdwsd: step {snakemake.rule} failed: {type(exc).__name__}: {exc}"
              + (f" (traceback in {log_path})" if log_path else ""), file=sys.stderr)  # fmt: skip
        raise SystemExit(1) from None
