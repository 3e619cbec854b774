"""DVC versions what Snakemake builds (dvc.yaml, docs/versioning.md), on the tiny config, for real.

Works on a copy of the session's shared git + DVC repository (tests/test_staleness.py::shared_tiny_repo:
commit 1 = tiny config + dvc.lock of a complete ``dvc repro``). A second commit changes one student knob.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_staleness import (
    REPO,
    RUN,
    assert_nothing_to_do,
    copy_run,
    edited,
    read_config,
    require_tools,
    sh,
    shared_tiny_repo,
    stale_jobs,
    tool_env,
    write_config,
)
from versioning import RestoreError, dvc_status, restore, stale_outputs

MODELS = ["teacher", "baseline", "kd_feature", "kd_prediction", "kd_full"]
UPSTREAM = ["data", "proposals", "cache", "models/teacher.pt"]  # a student knob must leave these alone
UPSTREAM_RULES = {"synthetic_dataset", "proposals", "proposals_qc", "teacher", "teacher_cache", "evaluate_teacher"}


def tree_sha256(repo: Path) -> dict[str, str]:
    """sha256 of every file under results/tiny (resumable-training checkpoints are not versioned)."""
    root = repo / RUN
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "checkpoints"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def mtimes(repo: Path, rels: list[str]) -> dict[str, int]:
    root = repo / RUN
    out = {}
    for rel in rels:
        p = root / rel
        for f in [p] if p.is_file() else sorted(p.rglob("*")):
            if f.is_file():
                out[str(f.relative_to(root))] = f.stat().st_mtime_ns
    return out


def dvc_json(repo: Path, *args: str) -> dict:
    return json.loads(sh(repo, "dvc", *args, "--json").stdout)


def head(repo: Path) -> str:
    return sh(repo, "git", "rev-parse", "HEAD").stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = shared_tiny_repo(tmp_path_factory)
    return copy_run(base, tmp_path_factory.mktemp("dvc") / "repo")


@pytest.fixture(scope="module")
def two_commits(repo: Path) -> dict:
    """Commit 2: student.loss_weights.kd 1 -> 3, then ``dvc repro`` (Snakemake reruns only what uses it)."""
    sh(repo, "git", "checkout", "-q", "main")
    sh(repo, "dvc", "checkout")
    restore(repo)
    first = {"rev": head(repo), "files": tree_sha256(repo), "upstream_mtimes": mtimes(repo, UPSTREAM)}
    config = read_config(repo)
    config["student"]["loss_weights"]["kd"] = 3.0
    write_config(repo, config)
    sh(repo, "dvc", "repro", timeout=1200)
    second_files = tree_sha256(repo)
    upstream_after = mtimes(repo, UPSTREAM)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "student.loss_weights.kd = 3")
    return {"first": first, "second": {"rev": head(repo), "files": second_files}, "upstream_after": upstream_after}


@pytest.mark.slow
def test_dvc_repro_builds_and_versions_the_whole_run(repo: Path) -> None:
    """`dvc repro` ran Snakemake; DVC tracks every result file; Snakemake and DVC both have nothing to do."""
    assert dvc_status(repo) == {}
    assert_nothing_to_do(repo)
    lock = (repo / "dvc.lock").read_text()
    assert "cmd: python tools/versioning.py build --cores all" in lock
    for out in ["data", "proposals", "models", "cache", "scores", "logs", "summary.md", "metrics",
                "efficiency.json", "per_class", "plots", "tables", "provenance.json", "benchmarks"]:  # fmt: skip
        assert f"path: {RUN}/{out}\n" in lock, out
    tracked = {e["path"] for e in json.loads(sh(repo, "dvc", "ls", "-R", "--dvc-only", "--json", ".", RUN).stdout)}
    files = set(tree_sha256(repo))
    assert files == tracked, f"not versioned: {sorted(files - tracked)}; missing: {sorted(tracked - files)}"
    for m in MODELS:
        assert f"models/{m}.pt" in files and f"metrics/{m}.json" in files and f"per_class/{m}.csv" in files
    assert sh(repo, "git", "status", "--porcelain").stdout == ""  # results/ stay out of git


@pytest.mark.slow
def test_push_delete_pull_is_bit_identical(repo: Path, tmp_path: Path) -> None:
    """Push to a local directory remote, delete results + cache + Snakemake state, pull: same bytes back."""
    sh(repo, "dvc", "remote", "add", "--local", "-d", "store", str(tmp_path / "remote"))
    sh(repo, "dvc", "push")
    before = tree_sha256(repo)
    assert len(before) > 30
    for gone in [repo / RUN, repo / ".dvc" / "cache", repo / ".snakemake"]:  # as on a fresh clone
        shutil.rmtree(gone)
    sh(repo, "dvc", "pull")
    assert tree_sha256(repo) == before
    assert dvc_status(repo) == {}
    restore(repo)  # no Snakemake metadata, files in pull order: stamp them in DAG order, record metadata
    assert_nothing_to_do(repo)
    assert tree_sha256(repo) == before  # the restore step only touches
    config = read_config(repo)
    config["teacher"]["rois"] = 16  # with the metadata recorded again, a knob change is seen
    with edited(repo / "config" / "config.yaml", yaml.safe_dump(config, sort_keys=False)):
        assert {"teacher", "teacher_cache", "evaluate_teacher", "efficiency"} <= set(stale_jobs(repo))
    assert_nothing_to_do(repo)


@pytest.mark.slow
def test_student_knob_commit_reruns_students_only(two_commits: dict) -> None:
    first, second = two_commits["first"], two_commits["second"]
    assert two_commits["upstream_after"] == first["upstream_mtimes"]  # not rewritten, not even touched
    changed = {f for f in second["files"] if second["files"][f] != first["files"].get(f)}
    assert {"models/kd_full.pt", "models/kd_prediction.pt", "scores/kd_full.npy"} <= changed
    assert not {f for f in changed if f.startswith(("data/", "proposals/", "cache/")) or f == "models/teacher.pt"}


@pytest.mark.slow
def test_metrics_show_and_diff_between_commits(repo: Path, two_commits: dict) -> None:
    old, new = two_commits["first"]["rev"], two_commits["second"]["rev"]
    shown = dvc_json(repo, "metrics", "show")[""]["data"]
    for m in MODELS:
        metrics = shown[f"{RUN}/metrics/{m}.json"]["data"]
        assert 0.0 <= metrics["mAP"] <= 1.0 and "CF1" in metrics
    assert shown[f"{RUN}/efficiency.json"]["data"]["student"]["images_per_s"] > 0
    diff = dvc_json(repo, "metrics", "diff", "--all", old, new)
    teacher, kd_full = diff[f"{RUN}/metrics/teacher.json"], diff[f"{RUN}/metrics/kd_full.json"]
    assert teacher["mAP"]["old"] == teacher["mAP"]["new"]  # the teacher was not retrained
    assert all(v["old"] == v["new"] for v in diff[f"{RUN}/metrics/baseline.json"].values())
    assert any(v["old"] != v["new"] for v in kd_full.values()), kd_full  # the KD student's scores moved
    plots = sh(repo, "dvc", "plots", "diff", "--json", old, new).stdout
    assert "per_class_improvement.png" in plots and "per_class/kd_full.csv" in plots


@pytest.mark.slow
def test_checkout_older_commit_restores_its_checkpoints(repo: Path, two_commits: dict) -> None:
    """git checkout + dvc checkout bring back commit 1's files byte for byte, then the restore step makes
    Snakemake accept them: no rerun, and only the jobs whose files or params differ get touched."""
    first, second = two_commits["first"], two_commits["second"]
    teacher = repo / RUN / "models" / "teacher.pt"
    stamp = teacher.stat().st_mtime_ns
    sh(repo, "git", "checkout", "-q", first["rev"])
    sh(repo, "dvc", "checkout")
    assert tree_sha256(repo) == first["files"]
    assert teacher.stat().st_mtime_ns == stamp  # dvc checkout rewrites only the files that differ
    assert dvc_status(repo) == {}
    stale = stale_jobs(repo)
    assert not UPSTREAM_RULES & set(stale), stale  # without the restore, only the student side is stale
    touched = restore(repo)
    assert not UPSTREAM_RULES & set(touched)
    assert_nothing_to_do(repo)
    assert tree_sha256(repo) == first["files"]
    # and forward again
    sh(repo, "git", "checkout", "-q", "main")
    sh(repo, "dvc", "checkout")
    restore(repo)
    assert_nothing_to_do(repo)
    assert tree_sha256(repo) == second["files"]


TOY_SNAKEFILE = """
configfile: "config.yaml"
rule all:
    input: "b.txt"
rule a:
    input: "in.txt"
    output: "a.txt"
    params: k=config["k"]
    shell: "cat {input} > {output}; echo {params.k} >> {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}"
"""
TOY_DVC = """
stages:
  pipeline:
    cmd: python tools/versioning.py build --cores 1
    deps: [Snakefile, in.txt]
    params:
      - config.yaml:
    outs:
      - a.txt: {persist: true}
      - b.txt: {persist: true}
"""


@pytest.mark.slow
def test_restore_touches_only_what_dvc_vouches_for(tmp_path: Path) -> None:
    """Restore refuses when touching would hide real work (a changed knob, a missing output); without Snakemake
    metadata (fresh clone) it records it for every job; the DVC command refuses to build on unrecorded outputs."""
    require_tools("git", "dvc")
    repo = tmp_path / "toy"
    repo.mkdir()
    for name, text in {"Snakefile": TOY_SNAKEFILE, "dvc.yaml": TOY_DVC, "config.yaml": "k: 1\n", "in.txt": "x\n",
                       ".gitignore": ".snakemake/\n"}.items():  # fmt: skip
        (repo / name).write_text(text)
    (repo / "tools").mkdir()  # the DVC stage's command is the repository's tools/versioning.py
    shutil.copy2(REPO / "tools" / "versioning.py", repo / "tools" / "versioning.py")
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "k=1")
    assert restore(repo) == {}  # nothing stale: nothing touched

    (repo / "config.yaml").write_text("k: 2\n")  # a knob changed, nothing rebuilt
    with pytest.raises(RestoreError, match=r"differs from dvc\.lock"):
        restore(repo)
    assert stale_outputs(repo) == {"a": {"a.txt"}, "b": {"b.txt"}}  # still stale: nothing was touched
    sh(repo, "git", "checkout", "config.yaml")

    (repo / "b.txt").unlink()
    with pytest.raises(RestoreError, match="missing"):
        restore(repo)
    sh(repo, "dvc", "checkout")
    # as after a fresh clone + pull: no Snakemake metadata, and b.txt written before a.txt
    shutil.rmtree(repo / ".snakemake")
    earlier = (repo / "a.txt").stat().st_mtime - 10
    os.utime(repo / "b.txt", (earlier, earlier))
    assert stale_outputs(repo) == {"b": {"b.txt"}}  # mtime only: the params of `a` are not checked at all
    (repo / "config.yaml").write_text("k: 2\n")
    res = subprocess.run(["dvc", "repro"], cwd=repo, env=tool_env(), capture_output=True, text=True)
    assert res.returncode != 0 and "no Snakemake metadata" in res.stderr  # the guard: no silent stale results
    sh(repo, "git", "checkout", "config.yaml")
    before = {f: (repo / f).read_bytes() for f in ("a.txt", "b.txt")}
    # `a` has no record: forced (touch only), so that its params are recorded; `b` is downstream
    assert restore(repo) == {"a": {"a.txt"}, "b": {"b.txt"}}  # (restore checks that nothing is left to do)
    assert {f: (repo / f).read_bytes() for f in ("a.txt", "b.txt")} == before
    assert dvc_status(repo) == {}
    (repo / "config.yaml").write_text("k: 2\n")
    assert stale_outputs(repo) == {"a": {"a.txt"}, "b": {"b.txt"}}  # the params trigger works again
    sh(repo, "dvc", "repro")
    assert (repo / "a.txt").read_text() == "x\n2\n"
