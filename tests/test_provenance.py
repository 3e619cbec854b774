"""Tests of kdwsd.provenance in a temporary git repository."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from kdwsd.provenance import collect_provenance, write_provenance


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "HOME": str(repo), "PATH": "/usr/bin:/bin:/usr/local/bin"}  # fmt: skip
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()  # fmt: skip


def test_collect_provenance_in_git_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("1\n")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-qm", "first")
    head = _git(repo, "rev-parse", "HEAD")
    p = collect_provenance(repo / ".")
    assert p["git_commit"] == head and len(head) == 40
    assert p["git_dirty"] is False and p["git_changes"] == []
    (repo / "a.txt").write_text("2\n")
    p = collect_provenance(repo)
    assert p["git_dirty"] is True and p["git_changes"] == [" M a.txt"]
    _git(repo, "checkout", "-q", "a.txt")
    (repo / "new.txt").write_text("untracked")
    assert collect_provenance(repo)["git_dirty"] is True  # an untracked file also makes the result unreproducible
    assert p["packages"]["numpy"] == np.__version__
    assert p["packages"]["torch"] is not None and p["packages"]["opencv"] is not None
    assert p["hostname"] and p["device"]
    when = dt.datetime.fromisoformat(p["time_utc"])
    assert when.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 120


def test_not_a_checkout(tmp_path: Path) -> None:
    p = collect_provenance(tmp_path)
    assert p["git_commit"] == "unknown" and p["git_dirty"] == "unknown"


def test_write_provenance_json_and_yaml(tmp_path: Path) -> None:
    config = {"run": "demo", "student": {"lr": 0.001, "sizes": (224, 672)}, "out": tmp_path / "x"}
    rec = write_provenance(tmp_path / "p" / "prov.json", config, repo_dir=tmp_path, inputs=["a.npz"])
    back = json.loads((tmp_path / "p" / "prov.json").read_text())
    assert back == rec
    assert back["config"]["student"] == {"lr": 0.001, "sizes": [224, 672]} and back["config"]["out"] == str(
        tmp_path / "x"
    )
    assert back["inputs"] == ["a.npz"] and back["provenance"]["git_commit"] == "unknown"
    write_provenance(tmp_path / "prov.yaml", config, repo_dir=tmp_path)
    y = yaml.safe_load((tmp_path / "prov.yaml").read_text())
    assert y["config"]["run"] == "demo" and "packages" in y["provenance"]
    with pytest.raises(ValueError, match="suffix"):
        write_provenance(tmp_path / "prov.txt", config)
