"""Run a rule's script outside Snakemake, the way the ``script:`` directive does (an injected object)."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from snakemake.iocontainers import Namedlist

REPO = Path(__file__).resolve().parents[1]


def _named(values: dict[str, Any]) -> Namedlist:
    return Namedlist(fromdict=values)


def run_script(rule: str, *, input: dict[str, Any] | None = None, output: dict[str, Any] | None = None,
               params: dict[str, Any] | None = None, wildcards: dict[str, Any] | None = None,
               log: str | None = None, config: dict[str, Any] | None = None, threads: int = 1) -> None:
    """Run ``scripts/<rule>.py`` with a stand-in for the ``snakemake`` object (named input, output, params,
    wildcards, log, config, threads)."""
    smk = SimpleNamespace(rule=rule, input=_named(input or {}), output=_named(output or {}),
                          params=_named(params or {}), wildcards=_named(wildcards or {}),
                          log=_named({"log": log} if log else {}), config=config or {}, threads=threads)
    if str(REPO / "scripts") not in sys.path:  # as Snakemake's script preamble does
        sys.path.append(str(REPO / "scripts"))
    try:
        runpy.run_path(str(REPO / "scripts" / f"{rule}.py"), init_globals={"snakemake": smk}, run_name="__main__")
    except SystemExit as exc:  # the runner logs the failure and exits 1; tests want the original error
        if exc.__context__ is not None:
            raise exc.__context__ from None
        raise
    finally:  # undo the runner's logging set-up (file handlers on the kdwsd and py.warnings loggers)
        for logger in (logging.getLogger("kdwsd"), logging.getLogger("py.warnings")):
            for h in list(logger.handlers):
                h.close()
                logger.removeHandler(h)
        logging.captureWarnings(False)
