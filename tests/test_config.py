"""The config schema (workflow/schemas/config.schema.yaml) and the shipped configs (config/*.yaml).

Each shipped file is self-contained: its effective config (the file validated with the schema's defaults
filled, as workflow/rules/common.smk does) holds the file's own values and schema defaults, nothing else.
Misspelt keys fail validation naming the key, and the schema agrees with the code it describes.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from schema_defaults import deep_merge
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from kdwsd.configcheck import UnknownConfigKeyError, check_known_keys, property_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_DIR = ROOT / "config"
DEFAULT_FILE = "config.yaml"
PAPER_FILES = ("coco2014.yaml", "nuswide.yaml", "voc2007.yaml")
SHIPPED = (DEFAULT_FILE, *PAPER_FILES)
MISSING = object()

# (base file, overlay, the misspelt key or bad value that the error must name)
MISSPELLINGS = [
    ("coco2014.yaml", {"dataset": {"use_exisiting": "/x"}}, "use_exisiting"),
    ("config.yaml", {"teacher": {"num_roi": 50}}, "num_roi"),
    ("coco2014.yaml", {"teacher": {"num_roi": 50}}, "num_roi"),
    ("config.yaml", {"dataset": {"sead": 3}}, "sead"),
    ("config.yaml", {"bogus": 1}, "bogus"),
    ("config.yaml", {"proposals": {"params": {"alhpa": 0.6}}}, "alhpa"),
    ("config.yaml", {"student": {"stage1": {"optim": {"warmup_iter": 5}}}}, "warmup_iter"),
    ("config.yaml", {"run": "../escape"}, "../escape"),
    ("config.yaml", {"run": "a/b"}, "a/b"),
    ("coco2014.yaml", {"downloads": {"files": {"vgg19": {"url": "http://x/y.pth"}}}}, "vgg19"),
    ("coco2014.yaml", {"downloads": {"files": {"vgg16": {"sha": "ab"}}}}, "sha"),
    ("config.yaml", {"downloads": {"folder": "x"}}, "folder"),
]


# ---------------------------------------------------------------------------- helpers
def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_file(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIG_DIR / name).read_text())


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """What a run sees: a deep copy validated with the defaults filled (raises WorkflowError)."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA_PATH), set_default=True)
    return config


def schema_default(schema: dict[str, Any], config: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The schema default at ``path`` of the effective ``config`` (MISSING when the schema gives none)."""
    node, instance = schema, config
    for i, key in enumerate(path):
        sub = property_schema(schema, node, instance, key)
        if sub is None:
            return MISSING
        if i == len(path) - 1:
            return copy.deepcopy(sub["default"]) if "default" in sub else MISSING
        node, instance = sub, instance[key]
    return MISSING


def file_value(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = raw
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def leaves(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict) and tree:
        return [leaf for k, v in tree.items() for leaf in leaves(v, (*prefix, k))]
    return [(prefix, tree)]


def provenance_errors(schema: dict[str, Any], raw: dict[str, Any], eff: dict[str, Any]) -> list[str]:
    """Every key of ``eff`` must come from ``raw`` (the file) or equal the schema default at its path.

    Walks the effective config against the schema. A key absent from the file needs a schema default; when
    that default is an object, its children are then "from the file" if in the default, else defaults too.
    """
    errors: list[str] = []

    def walk(node: dict[str, Any], eff_obj: dict[str, Any], src_obj: dict[str, Any] | None, path: tuple[str, ...]):
        for key, value in eff_obj.items():
            p = (*path, key)
            name = ".".join(p)
            sub = property_schema(schema, node, eff_obj, key)
            if sub is None:
                errors.append(f"{name}: not in the schema")
                continue
            if src_obj is not None and key in src_obj:
                source = src_obj[key]
            elif "default" in sub:
                source = copy.deepcopy(sub["default"])
            else:
                errors.append(f"{name} = {value!r}: neither in the file nor a schema default")
                continue
            if isinstance(value, dict) and isinstance(source, dict):
                walk(sub, value, source, p)
            elif value != source:
                errors.append(f"{name} = {value!r}: the file / schema default says {source!r}")

    walk(schema, eff, raw, ())
    return errors


# ---------------------------------------------------------------------------- self-contained configs
@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_schema()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_is_its_values_plus_schema_defaults(schema, name):
    raw = load_file(name)
    eff = effective(raw)
    assert raw == load_file(name), "validation must not modify its input (it works on a deep copy)"
    errors = provenance_errors(schema, raw, eff)
    assert not errors, f"config/{name}: " + "; ".join(errors)


def test_provenance_walk_catches_a_foreign_value(schema):
    raw = load_file("coco2014.yaml")
    eff = effective(raw)
    eff["teacher"]["optim"]["warmup_iters"] = 50  # what the synthetic default would have leaked
    eff["dataset"]["min_side"] = 128
    errors = provenance_errors(schema, raw, eff)
    assert any(e.startswith("teacher.optim.warmup_iters") for e in errors), errors
    assert any(e.startswith("dataset.min_side") for e in errors), errors


def test_coco2014_effective_values():
    eff = effective(load_file("coco2014.yaml"))
    assert eff["teacher"]["optim"]["warmup_iters"] == 0
    assert eff["student"]["stage1"]["optim"]["bias_lr_mult"] == 2.0  # Caffe
    assert eff["student"]["stage1"]["optim"]["head_lr_mult"] == 10.0
    assert eff["student"]["stage1"]["optim"]["optimizer"] == "sgd"
    synthetic_keys = set(load_file(DEFAULT_FILE)["dataset"]) - {"name"}
    assert {"splits", "min_side"} <= synthetic_keys
    assert not synthetic_keys & set(eff["dataset"]), "synthetic dataset keys in the coco2014 config"
    assert eff["dataset"]["name"] == "coco2014" and eff["run"] == "coco2014"


@pytest.mark.parametrize("name", PAPER_FILES)
def test_nothing_leaks_from_the_default_file(schema, name):
    """A paper config's value that equals config/config.yaml's is in the paper file or is the schema default."""
    raw, eff = load_file(name), effective(load_file(name))
    default_raw = load_file(DEFAULT_FILE)
    leaked = []
    for path, value in leaves(eff):
        if file_value(default_raw, path) is MISSING or file_value(default_raw, path) != value:
            continue
        if file_value(raw, path) is not MISSING:
            continue
        if schema_default(schema, eff, path) == value:
            continue
        # a leaf under a default object (e.g. student.loss_weights.kd) takes the parent's default
        parent_default = schema_default(schema, eff, path[:-1]) if len(path) > 1 else MISSING
        if isinstance(parent_default, dict) and parent_default.get(path[-1], MISSING) == value:
            continue
        leaked.append(f"{'.'.join(path)} = {value!r}")
    assert not leaked, f"config/{name} takes values of config/{DEFAULT_FILE}: " + ", ".join(leaked)


def test_schema_default_lookup(schema):
    eff = effective(load_file("nuswide.yaml"))
    assert schema_default(schema, eff, ("teacher", "optim", "warmup_iters")) == 0
    assert schema_default(schema, eff, ("teacher", "dropout")) == 0.5  # allOf -> $ref network
    assert schema_default(schema, eff, ("dataset", "num_classes")) == 81  # the nuswide if/then branch
    assert schema_default(schema, eff, ("dataset", "archives", "groundtruth", "md5")) is None
    assert schema_default(schema, eff, ("cache", "rois")) == "all"
    assert schema_default(schema, eff, ("student", "optim", "lr")) is MISSING
    synthetic = effective(load_file(DEFAULT_FILE))
    assert schema_default(schema, synthetic, ("dataset", "min_side")) == 128
    assert schema_default(schema, synthetic, ("dataset", "num_classes")) is MISSING


# ---------------------------------------------------------------------------- misspellings
@pytest.mark.parametrize(("base", "overlay", "wrong"), MISSPELLINGS, ids=[m[2] for m in MISSPELLINGS])
def test_misspelling_fails_naming_the_key(base, overlay, wrong):
    with pytest.raises(WorkflowError) as info:
        effective(deep_merge(load_file(base), overlay))
    assert repr(wrong) in str(info.value) or wrong in str(info.value)
    assert str(info.value).count("\n") > 0  # the jsonschema message, not a bare failure


def test_run_rejects_dot_dot_inside_a_name():
    with pytest.raises(WorkflowError):
        effective(deep_merge(load_file(DEFAULT_FILE), {"run": "a..b"}))
    effective(deep_merge(load_file(DEFAULT_FILE), {"run": "my_run.v2"}))


# ---------------------------------------------------------------------------- schema == code
def _field_defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = MISSING
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _params_mismatches(schema: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    from kdwsd.proposals import EdgeBoxesParams, EdgeMapParams

    code = {**_field_defaults(EdgeMapParams), **_field_defaults(EdgeBoxesParams)}
    props = schema["properties"]["proposals"]["properties"]["params"]["properties"]
    assert set(props) == set(code), f"schema-only {set(props) - set(code)}, code-only {set(code) - set(props)}"
    return {k: (props[k].get("default", MISSING), code[k]) for k in code if props[k].get("default", MISSING) != code[k]}


def test_proposal_params_match_the_dataclasses(schema):
    from kdwsd.proposals import EdgeBoxesParams, EdgeMapParams

    names = [f.name for f in dataclasses.fields(EdgeBoxesParams)] + [f.name for f in dataclasses.fields(EdgeMapParams)]
    assert len(names) == len(set(names)), "a parameter name is in both dataclasses"
    mismatches = _params_mismatches(schema)
    assert not mismatches, f"proposals.params defaults (schema, dataclass) differ: {mismatches}"


def test_experiments_enum_matches_the_registry(schema):
    from kdwsd.experiments import EXPERIMENTS

    enum = schema["properties"]["student"]["properties"]["experiments"]["items"]["enum"]
    assert set(enum) == set(EXPERIMENTS)
    assert len(enum) == len(set(enum))


def test_optim_schema_matches_optim_config(schema):
    from kdwsd.train.loop import OptimConfig

    props = schema["$defs"]["optim"]["properties"]
    assert set(props) == {f.name for f in dataclasses.fields(OptimConfig)}
    # every field is either required or has a default, so OptimConfig.from_dict takes every validated section
    required = set(schema["$defs"]["optim"]["required"])
    assert {k for k, v in props.items() if "default" not in v} == required


# ---------------------------------------------------------------------------- through snakemake
@pytest.mark.slow
@pytest.mark.parametrize(("base", "overlay", "wrong"), MISSPELLINGS, ids=[m[2] for m in MISSPELLINGS])
def test_snakemake_dry_run_rejects_misspelling(tmp_path, base, overlay, wrong):
    overlay_file = tmp_path / "overlay.yaml"
    overlay_file.write_text(yaml.safe_dump(overlay))
    workdir = tmp_path / "work"
    workdir.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1",
           "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(CONFIG_DIR / base), str(overlay_file)]  # fmt: skip
    pythonpath = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    # an unknown key is named with the allowed ones (kdwsd.configcheck); a bad value by the schema validation
    marker = "UnknownConfigKeyError" if "UnknownConfigKeyError" in out else "Error validating config file"
    assert marker in out, out
    assert wrong in out, out
    # it failed while parsing the workflow: no job was planned or run, nothing was written
    assert "Job stats" not in out and "rule " not in out.split(marker)[0], out
    assert not (workdir / "results").exists()


@pytest.mark.parametrize(("base", "overlay", "key"), [m for m in MISSPELLINGS if not m[2].startswith(("..", "a/"))])
def test_unknown_key_error_names_the_key_and_the_allowed_ones(base, overlay, key):
    with pytest.raises(UnknownConfigKeyError) as err:
        check_known_keys(deep_merge(load_file(base), overlay), SCHEMA_PATH)
    text = str(err.value)
    assert f"'{key}'" in text or f".{key}'" in text
    assert "keys allowed in" in text


def test_unknown_key_error_suggests_the_close_match():
    with pytest.raises(UnknownConfigKeyError, match=r"did you mean 'use_existing'\?"):
        check_known_keys(deep_merge(load_file("coco2014.yaml"), {"dataset": {"use_exisiting": "/x"}}), SCHEMA_PATH)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_have_no_unknown_key(name):
    check_known_keys(load_file(name), SCHEMA_PATH)
