"""DVC versions the run of any configuration, not only the default (runs/dvc.yaml, docs/versioning.md).

dvc.yaml versions the default run (config/config.yaml). Every other run listed in runs/runs.yaml
(``python tools/versioning.py add-run --configfile [BASE] CONFIG``) is one stage of runs/dvc.yaml,
``run@<run>``, which a bare ``dvc repro`` never builds. The fast tests check the stage definitions (the
paper configs included) without running Snakemake; the slow one versions an overlay of the tiny config for
real, in a copy of the session's shared git + DVC repository (tests/test_staleness.py::shared_tiny_repo).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_staleness import REPO, assert_nothing_to_do, copy_run, require_tools, sh, shared_tiny_repo
from versioning import DEFAULT_CONFIG, RestoreError, add_run, dry_run, dvc_stage, dvc_status, restore, run_name

PAPER_CONFIGS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "config").glob("*.yaml"))
PAPER_CONFIGS.remove(DEFAULT_CONFIG)


def stage_bodies() -> tuple[dict, dict]:
    """dvc.yaml's `pipeline` stage and runs/dvc.yaml's foreach body, as written."""
    root = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["pipeline"]
    runs = yaml.safe_load((REPO / "runs" / "dvc.yaml").read_text())["stages"]["run"]
    assert runs["foreach"] == "${runs}"
    return root, runs["do"]


def scratch_repo(dest: Path) -> Path:
    """A git + DVC repository holding the DVC files, config/ and tools/ of this one, stand-ins for the other
    deps (nothing is built: only stage definitions and dry runs), no results."""
    require_tools("git", "dvc")
    for rel in ["dvc.yaml", "runs", "config", "tools", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore"]:
        src, dst = REPO / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    for stand_in in ["Snakefile", "workflow/x", "scripts/x", "src/kdwsd/x"]:
        (dest / stand_in).parent.mkdir(parents=True, exist_ok=True)
        (dest / stand_in).write_text("stand-in\n")
    sh(dest, "git", "init", "-q", "-b", "main")
    return dest


def test_run_stage_is_the_default_stage_with_the_runs_config_files() -> None:
    """dvc.yaml's `pipeline` owns the deps and the out list; runs/dvc.yaml must repeat them exactly."""
    root, body = stage_bodies()
    assert body.pop("wdir") == ".."  # paths relative to the repository root, as in dvc.yaml
    assert body.pop("cmd") == root.pop("cmd") + " --configfile ${item.base} ${item.config}"
    assert body.pop("params") == [{"${item.base}": None}, {"${item.config}": None}]  # every key of both
    assert root.pop("params") == [{DEFAULT_CONFIG: None}]
    as_run = json.loads(json.dumps(root).replace("${run}", "${key}"))
    assert body == as_run, "runs/dvc.yaml's stage differs from dvc.yaml's `pipeline`: change both"


def test_runs_list_is_empty_in_the_repository() -> None:
    """A listed run that was never built has no hashes in runs/dvc.lock: a bare `dvc pull` would fail."""
    assert yaml.safe_load((REPO / "runs" / "runs.yaml").read_text()) == {"runs": {}}


def test_every_config_gets_its_stage_and_bare_repro_builds_only_the_default(tmp_path: Path) -> None:
    """Each config/*.yaml (the paper configs too) listed with add-run is a stage run@<its run> whose command
    passes that file to Snakemake, whose params are that file and whose outs are results/<run>/...; the default
    config stays dvc.yaml's `pipeline`; a bare `dvc repro` builds the default run only."""
    dvc_repo = pytest.importorskip("dvc.repo")
    repo = scratch_repo(tmp_path / "repo")
    for config in PAPER_CONFIGS:
        assert add_run([config], repo) == f"runs/dvc.yaml:run@{run_name([REPO / config])}"
    assert add_run(["config/config.yaml", "config/ablation/random.yaml"], repo)  # an overlay
    listed = yaml.safe_load((repo / "runs" / "runs.yaml").read_text())
    assert listed["runs"]["coco2014"] == {"base": "config/coco2014.yaml", "config": "config/coco2014.yaml"}
    assert (repo / "runs" / "runs.yaml").read_text().startswith("# The runs that runs/dvc.yaml versions")

    stages = {f"{s.path_in_repo}:{s.name}": s for s in dvc_repo.Repo(str(repo)).index.stages}
    default = stages.pop("dvc.yaml:pipeline")
    default_run = run_name([REPO / DEFAULT_CONFIG])

    def outs(stage, run: str) -> list[tuple]:
        prefix = f"results/{run}/"
        assert all(o.def_path.startswith(prefix) for o in stage.outs)
        return [(o.def_path.removeprefix(prefix), o.persist, bool(o.metric), o.plot) for o in stage.outs]

    def params(stage) -> list[tuple]:
        return [(d.def_path, d.params) for d in stage.deps if type(d).__name__ == "ParamsDependency"]

    assert default.cmd == "python tools/versioning.py build --cores all"
    assert params(default) == [(DEFAULT_CONFIG, [])]  # [] = every key
    expected = [(run_name([REPO / config]), [config]) for config in PAPER_CONFIGS]
    expected.append(("synthetic-proposals-random", [DEFAULT_CONFIG, "config/ablation/random.yaml"]))
    assert {"coco2014", "voc2007", "nuswide"} <= {run for run, _ in expected}
    for run, files in expected:
        stage = stages.pop(f"runs/dvc.yaml:run@{run}")
        assert Path(stage.wdir) == repo
        both = " ".join([files[0], files[-1]])  # a self-contained config is its own base
        assert stage.cmd == f"python tools/versioning.py build --cores all --configfile {both}"
        assert params(stage) == [(f, []) for f in files]
        assert outs(stage, run) == outs(default, default_run)
        assert [d.def_path for d in stage.deps if type(d).__name__ == "Dependency"] == [
            d.def_path for d in default.deps if type(d).__name__ == "Dependency"
        ]
    assert not stages

    dry = sh(repo, "dvc", "repro", "--dry").stdout
    assert "Running stage 'pipeline'" in dry and "run@" not in dry, dry
    dry = sh(repo, "dvc", "repro", "--dry", "runs/dvc.yaml:run@voc2007").stdout
    assert "--configfile config/voc2007.yaml config/voc2007.yaml" in dry and "'pipeline'" not in dry, dry


def test_add_run_refuses_what_dvc_could_not_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    (repo / "config" / "config.yaml").write_text("run: synthetic\nk: 1\n")
    (repo / "tweak.yaml").write_text("k: 2\n")
    (repo / "mine.yaml").write_text("run: mine\nk: 3\n")
    (repo / "other.yaml").write_text("run: mine\nk: 4\n")
    with pytest.raises(ValueError, match="default run"):
        add_run(["config/config.yaml"], repo)
    with pytest.raises(ValueError, match=r"give tweak\.yaml its own `run:`"):  # would share results/synthetic
        add_run(["config/config.yaml", "tweak.yaml"], repo)
    with pytest.raises(ValueError, match="no such file"):
        add_run(["missing.yaml"], repo)
    (tmp_path / "elsewhere.yaml").write_text("run: elsewhere\n")
    with pytest.raises(ValueError, match="outside the repository"):
        add_run([tmp_path / "elsewhere.yaml"], repo)
    with pytest.raises(ValueError, match="one config file, or a base"):
        add_run(["config/config.yaml", "tweak.yaml", "mine.yaml"], repo)
    assert add_run(["config/config.yaml", "mine.yaml"], repo) == "runs/dvc.yaml:run@mine"
    assert add_run(["config/config.yaml", str(repo / "mine.yaml")], repo) == "runs/dvc.yaml:run@mine"  # no change
    with pytest.raises(ValueError, match="already listed"):
        add_run(["other.yaml"], repo)
    listed = {"runs": {"mine": {"base": "config/config.yaml", "config": "mine.yaml"}}}
    assert yaml.safe_load((repo / "runs" / "runs.yaml").read_text()) == listed


def test_restore_checks_the_stage_of_its_run(tmp_path: Path) -> None:
    """The restore step asks DVC about the run it touches: dvc.yaml for the default, run@<run> for a listed run."""
    repo = tmp_path
    (repo / "config").mkdir()
    (repo / "config" / "config.yaml").write_text("run: synthetic\n")
    (repo / "config" / "paper.yaml").write_text("run: paper\n")
    (repo / "mine.yaml").write_text("run: mine\n")
    add_run(["config/paper.yaml"], repo)
    add_run(["config/config.yaml", "mine.yaml"], repo)
    assert dvc_stage(repo) == "dvc.yaml"
    assert dvc_stage(repo, [repo / "config" / "config.yaml"]) == "dvc.yaml"
    assert dvc_stage(repo, ["config/paper.yaml"]) == "runs/dvc.yaml:run@paper"
    assert dvc_stage(repo, ["config/config.yaml", "mine.yaml"]) == "runs/dvc.yaml:run@mine"
    assert dvc_stage(repo, ["paper.yaml"], workdir=repo / "config") == "runs/dvc.yaml:run@paper"
    with pytest.raises(RestoreError, match=r"versioned with --configfile config/config\.yaml mine\.yaml"):
        dvc_stage(repo, ["mine.yaml"])
    (repo / "config" / "unlisted.yaml").write_text("run: unlisted\n")
    with pytest.raises(RestoreError, match=r"no DVC stage.*add-run --configfile config/unlisted\.yaml"):
        dvc_stage(repo, ["config/unlisted.yaml"])


# ------------------------------------------------------------------------ a non-default run, for real
OVERLAY = ["config/config.yaml", "my.yaml"]  # the shared repository's config/config.yaml is the tiny config
RUN2 = "tiny2"
STAGE2 = f"runs/dvc.yaml:run@{RUN2}"
OUTS = ["data", "proposals", "models", "cache", "scores", "logs", "summary.md", "tables", "provenance.json",
        "benchmarks", "metrics", "efficiency.json", "per_class", "plots"]  # fmt: skip


def run_sha256(repo: Path, run: str) -> dict[str, str]:
    """sha256 of every versioned file of results/<run> (resumable-training checkpoints are not versioned)."""
    root = repo / "results" / run
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "checkpoints"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.slow
def test_an_overlay_run_is_versioned_like_the_default(tmp_path_factory: pytest.TempPathFactory) -> None:
    """add-run + `dvc repro runs/dvc.yaml:run@tiny2` runs Snakemake with the overlay, dvc.lock hashes
    results/tiny2/..., status is clean; push, delete, pull and restore work for that run alone."""
    repo = copy_run(shared_tiny_repo(tmp_path_factory), tmp_path_factory.mktemp("dvc-runs") / "repo")
    configfiles = [repo / f for f in OVERLAY]
    (repo / "my.yaml").write_text(f"run: {RUN2}\n")
    sh(repo, "python", "tools/versioning.py", "add-run", "--configfile", *OVERLAY)
    assert dvc_status(repo, [STAGE2])  # listed, not built
    dry = sh(repo, "dvc", "repro", "--dry").stdout
    assert "Stage 'pipeline' didn't change" in dry and "run@" not in dry, dry  # bare repro: the default only

    sh(repo, "dvc", "repro", STAGE2, timeout=1800)
    lock = yaml.safe_load((repo / "runs" / "dvc.lock").read_text())["stages"][f"run@{RUN2}"]
    assert lock["cmd"] == "python tools/versioning.py build --cores all --configfile config/config.yaml my.yaml"
    assert lock["params"]["my.yaml"] == {"run": RUN2}
    assert lock["params"]["config/config.yaml"]["run"] == "tiny"  # every key of both files
    hashed = {o["path"]: o.get("md5") for o in lock["outs"]}
    assert set(hashed) == {f"results/{RUN2}/{out}" for out in OUTS} and all(hashed.values()), hashed
    assert dvc_status(repo) == {}  # both runs match their lock files
    assert dry_run(repo, configfiles=configfiles).nothing_to_do  # Snakemake agrees
    assert_nothing_to_do(repo)  # the default run was not touched
    files = run_sha256(repo, RUN2)
    assert {"models/kd_full.pt", "metrics/kd_full.json", "summary.md"} <= set(files)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "version run tiny2")
    assert sh(repo, "git", "status", "--porcelain").stdout == ""
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)[""]["data"]
    assert f"results/{RUN2}/metrics/kd_full.json" in shown and "results/tiny/metrics/kd_full.json" in shown

    sh(repo, "dvc", "remote", "add", "--local", "-d", "store", str(repo.parent / "remote"))
    sh(repo, "dvc", "push", STAGE2)
    for gone in [repo / "results" / RUN2, repo / ".snakemake"]:
        shutil.rmtree(gone)
    assert set(dvc_status(repo)) == {STAGE2}  # the other run's files are gone...
    restore(repo)  # ...which does not stop the default run's restore step
    assert_nothing_to_do(repo)
    shutil.rmtree(repo / ".dvc" / "cache")  # tiny2's files can only come from the remote now
    sh(repo, "dvc", "pull", STAGE2)
    assert run_sha256(repo, RUN2) == files
    assert dvc_status(repo, [STAGE2]) == {}  # (the default's files are not in the emptied cache)
    assert restore(repo, configfiles=configfiles)  # no Snakemake metadata: every job touched once
    assert dry_run(repo, configfiles=configfiles).nothing_to_do
    assert run_sha256(repo, RUN2) == files
    assert_nothing_to_do(repo)
