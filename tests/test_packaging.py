"""Packaging hygiene: licence, citation, the conda environment in step with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# pip name -> conda-forge name where they differ
CONDA_NAMES = {"torch": "pytorch", "opencv-contrib-python-headless": "opencv-contrib-python-headless"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].strip().lower()


def test_conda_environment_lists_every_runtime_dependency_and_no_relative_install() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs" / "kdwsd.yaml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    relative = [p for p in pip if p.startswith("-e") or "../" in p]
    assert not relative, f"{relative}: a relative pip path resolves from Snakemake's copy of the file"
    have = conda | {_name(p) for p in pip}
    missing = [d for d in map(_name, project["dependencies"]) if CONDA_NAMES.get(d, d) not in have]
    assert not missing, f"envs/kdwsd.yaml lacks {missing}"


def test_licence_and_citation() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] and cff["version"] == project["version"]
    paper = cff["preferred-citation"]
    assert paper["doi"] == "10.1145/3240508.3240567" and paper["authors"][0]["family-names"] == "Liu"


def test_extras_keep_the_slurm_plugin_and_dvc_optional() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert [_name(d) for d in extras["workflow"]] == ["snakemake"]
    assert [_name(d) for d in extras["slurm"]] == ["snakemake-executor-plugin-slurm"]
    assert [_name(d) for d in extras["dvc"]] == ["dvc"]
    assert "slurm" in (REPO / "envs" / "setup-venv.sh").read_text()  # CI and developers get every extra
