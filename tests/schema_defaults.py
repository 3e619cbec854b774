"""Config sections as the workflow builds them: given keys plus the config schema's defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kdwsd.train.loop import OptimConfig

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def optim_defaults() -> dict[str, Any]:
    props = yaml.safe_load(SCHEMA.read_text())["$defs"]["optim"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def optim_config(**values: Any) -> OptimConfig:
    """An optimiser section: the given keys plus the schema's defaults (epochs 1, batch 4 unless given)."""
    return OptimConfig.from_dict({"epochs": 1, "batch_size": 4, **optim_defaults(), **values})


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``--configfile base overlay``: nested dictionaries are updated key by key, anything else is replaced
    (Snakemake's update_config); neither input is modified."""
    import copy

    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
