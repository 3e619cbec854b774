"""Only what is stale reruns: dry runs on a completed tiny run after one change each (exact job lists).

One full tiny run is shared by this file and tests/test_dvc.py (:func:`shared_tiny_repo`: a throwaway
git + DVC repository in the session's temp dir, built once with ``dvc repro``). Each module works on a copy
of it. The copy holds its own Snakefile, workflow/, scripts/ and src/kdwsd, so ``lib(...)`` inputs point into
the copy and editing a copied library module is what Snakemake sees; the scripts still import the installed
package (the repository's src/, editable install). That is fine here: the mutation tests only dry-run.

Job lists come from ``snakemake --summary`` (tab-separated: output file, rule, plan) and the "Job stats"
table of ``snakemake --dry-run`` (see tools/versioning.py: stale_outputs / dry_run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from schema_defaults import deep_merge
from versioning import dry_run, library_imports, restore, stale_outputs

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
VENV_BIN = Path(sys.executable).parent
RUN = "results/tiny"
# what a throwaway repository needs: the workflow, the library sources its lib() inputs point at, DVC files
REPO_FILES = ["Snakefile", "workflow", "scripts", "config", "envs", "src/kdwsd", "tools", "dvc.yaml", "runs",
              ".dvcignore", ".dvc/config", ".dvc/.gitignore", ".gitignore"]  # fmt: skip
SEEDS = ("", "_seed1")  # tests/configs/tiny.yaml: seeds [0, 1]
EXPERIMENTS = ("baseline", "baseline_long", "kd_feature", "kd_prediction", "kd_full")
STUDENTS = [f"{e}{s}" for e in EXPERIMENTS for s in SEEDS]
FIGURES = ("per_class_improvement", "examples", "training_curves")
PLOTS = {f"plots/{n}.{e}" for n in FIGURES for e in ("png", "pdf", "svg")}
SUMMARY = {"summary.md", "provenance.json", "tables/results.csv", "tables/results.tex", "tables/differences.csv",
           "tables/differences.tex", "tables/bootstrap.csv"}  # fmt: skip
QC = {"proposals/qc.csv", "proposals/recall.csv", *(f"plots/proposal_recall.{e}" for e in ("png", "pdf", "svg"))}


def seeds(*experiments: str) -> tuple[str, ...]:
    """The models of these experiments, every seed of the tiny config."""
    return tuple(f"{e}{s}" for e in experiments for s in SEEDS)


# ---------------------------------------------------------------- shared helpers (also used by test_dvc.py)
def tool_env() -> dict[str, str]:
    """Environment for git/dvc/snakemake subprocesses: the venv first on PATH, a git identity."""
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
            "GIT_AUTHOR_NAME": "kdwsd test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "kdwsd test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}  # fmt: skip


def require_tools(*names: str) -> None:
    for name in names:
        if shutil.which(name, path=tool_env()["PATH"]) is None:
            pytest.skip(f"`{name}` is not installed (needed to build a throwaway git + DVC repository)")


def sh(cwd: Path, *cmd: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command; fail the test with its output when it fails."""
    res = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
    return res


def read_config(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def write_config(repo: Path, config: dict[str, Any]) -> None:
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def make_repo(dest: Path) -> Path:
    """A git repository holding a copy of the working tree files the workflow needs, tiny config as default.

    ``config/config.yaml`` becomes the tiny config merged over the default, so that plain ``snakemake`` and
    ``dvc repro`` (and dvc.yaml's ``${run}``) use it without --configfile. Committed once.
    """
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in REPO_FILES:
        src, dst = REPO / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore)
        else:
            shutil.copy2(src, dst)
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    write_config(dest, deep_merge(default, yaml.safe_load(TINY.read_text())))
    sh(dest, "git", "init", "-q", "-b", "main")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-q", "-m", "workflow + tiny config")
    return dest


def shared_tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build (once per session) a git + DVC repository with a complete tiny run made by ``dvc repro``.

    Commit 1 holds the code, config/config.yaml (tiny) and dvc.lock. Do not modify it: copy it with
    :func:`copy_run`. A failed build is remembered so that the second module fails fast.
    """
    require_tools("git", "dvc")
    base = tmp_path_factory.getbasetemp() / "kdwsd-tiny-base"
    marker = base.with_name(base.name + ".state")
    if marker.exists():
        state = marker.read_text()
        if state != "ok":
            pytest.fail(f"the shared tiny run failed earlier in this session:\n{state}")
        return base
    try:
        make_repo(base)
        sh(base, "dvc", "repro", timeout=1200)
        sh(base, "git", "add", "-A")
        sh(base, "git", "commit", "-q", "-m", "tiny run: dvc.lock")
    except BaseException as e:
        marker.write_text(f"{type(e).__name__}: {e}"[-6000:])
        raise
    marker.write_text("ok")
    return base


def copy_run(base: Path, dest: Path) -> Path:
    """Copy the shared repository (files, modification times, .git, .dvc cache, .snakemake metadata).

    Then run the restore step: Snakemake's metadata records the absolute paths of the lib() inputs, so in
    a moved copy every job would report "set of input files has changed" (see docs/versioning.md).
    """
    shutil.copytree(base, dest, symlinks=True)
    restore(dest)
    return dest


@contextmanager
def edited(path: Path, text: str) -> Iterator[None]:
    """Temporarily replace a file's content; the original content comes back afterwards."""
    original = path.read_text()
    path.write_text(text)
    try:
        yield
    finally:
        path.write_text(original)


def stale_jobs(workdir: Path) -> dict[str, set[str]]:
    """Rule -> outputs (relative to results/tiny) of the jobs a run would execute."""
    prefix = f"{RUN}/"
    return {rule: {o.removeprefix(prefix) for o in outs} for rule, outs in stale_outputs(workdir).items()}


def assert_nothing_to_do(workdir: Path) -> None:
    dr = dry_run(workdir)
    assert dr.nothing_to_do, f"dry run wants to run {dr.counts}:\n{dr.output[-6000:]}"
    assert "Nothing to be done" in dr.output
    assert stale_jobs(workdir) == {}


def student_outputs(*models: str) -> set[str]:
    return {f for m in models for f in (f"models/{m}.pt", f"logs/{m}.csv")}


def evaluation_outputs(*models: str) -> set[str]:
    return {f for m in models for f in (f"metrics/{m}.json", f"per_class/{m}.csv", f"scores/{m}.npy")}


def assert_jobs(workdir: Path, expected: dict[str, set[str]]) -> None:
    """Exactly these jobs (rule -> outputs) would run, and the dry run's job table agrees (plus `all`)."""
    assert stale_jobs(workdir) == expected
    counts = dry_run(workdir).counts
    assert counts.pop("all") == 1
    assert set(counts) == set(expected)
    per_job = {"proposals": 2, "student": 2, "student_stage1": 2, "teacher": 2, "teacher_cache": 2,
               "evaluate_student": 3, "evaluate_teacher": 3, "plots": len(PLOTS), "summary": len(SUMMARY),
               "proposals_qc": len(QC)}  # outputs per job  # fmt: skip
    assert counts == {rule: len(outs) // per_job.get(rule, 1) for rule, outs in expected.items()}


# ------------------------------------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = shared_tiny_repo(tmp_path_factory)
    return copy_run(base, tmp_path_factory.mktemp("staleness") / "repo")


@pytest.mark.slow
def test_noop_dry_run_has_nothing_to_do(run_dir: Path) -> None:
    assert_nothing_to_do(run_dir)


@pytest.mark.slow
def test_student_loss_weight_reruns_only_the_kd_students_and_their_descendants(run_dir: Path) -> None:
    """student.loss_weights.kd weighs L_p' of stage 2: only kd_prediction and kd_full use it (params trigger)."""
    config = read_config(run_dir)
    config["student"]["loss_weights"]["kd"] = 2.0
    cfg_file = run_dir / "config" / "config.yaml"
    with edited(cfg_file, yaml.safe_dump(config, sort_keys=False)):
        kd = seeds("kd_prediction", "kd_full")
        assert_jobs(run_dir, {
            "student": student_outputs(*kd),
            "evaluate_student": evaluation_outputs(*kd),
            "plots": PLOTS,  # ΔAP of kd_full over the baseline, curves
            "summary": SUMMARY,
            "efficiency": {"efficiency.json"},  # times the kd_full student
        })  # fmt: skip
    assert_nothing_to_do(run_dir)  # back to the old value: the recorded params match again


@pytest.mark.slow
def test_speed_knobs_rerun_nothing(run_dir: Path) -> None:
    """compute.* (loader workers, proposal processes, inference batch sizes, cache shard size) change no result:
    they reach the stage functions outside Snakemake's params (kdwsd.stages.runner), so nothing reruns."""
    config = read_config(run_dir)
    config["compute"] = {"loader_workers": 2, "proposal_processes": 2, "teacher_batch_size": 4,
                         "student_batch_size": 7, "cache_shard_size": 5}  # fmt: skip
    with edited(run_dir / "config" / "config.yaml", yaml.safe_dump(config, sort_keys=False)):
        assert_nothing_to_do(run_dir)


@pytest.mark.slow
def test_proposal_knob_reruns_proposals_and_everything_downstream(run_dir: Path) -> None:
    """proposals.max_boxes: all shards, QC, teacher, cache and every model that reads the cache rerun.

    The dataset and the baseline student (labels only: no proposals, no teacher) stay.
    """
    config = read_config(run_dir)
    config["proposals"]["max_boxes"] = 16
    with edited(run_dir / "config" / "config.yaml", yaml.safe_dump(config, sort_keys=False)):
        distilled = seeds("kd_feature", "kd_prediction", "kd_full")
        assert_jobs(run_dir, {
            "proposals": {f"proposals/{s}/shard-{k}-of-2.{e}" for s in ("train", "test") for k in (0, 1)
                          for e in ("npz", "json")},
            "proposals_qc": QC,
            "teacher": {"models/teacher.pt", "logs/teacher.csv"},
            "teacher_cache": {"cache/train", "cache/teacher_test.npz"},
            "evaluate_teacher": evaluation_outputs("teacher"),
            "student_stage1": {f"{d}/student_stage1_seed{k}.{e}" for k in (0, 1)
                               for d, e in (("models", "pt"), ("logs", "csv"))},
            "student": student_outputs(*distilled),
            "evaluate_student": evaluation_outputs(*distilled),
            "efficiency": {"efficiency.json"},
            "plots": PLOTS,
            "summary": SUMMARY,
        })  # fmt: skip
    assert_nothing_to_do(run_dir)


@pytest.mark.slow
def test_library_edit_reruns_the_rules_that_use_it(run_dir: Path) -> None:
    """Trigger: lib() inputs are ordinary inputs, so a newer mtime reruns, unless the content is unchanged.

    Snakemake 9 records checksums of inputs < 1 MB: a touch alone reruns nothing, a content change does.
    kdwsd/stats.py (intervals) is a lib() input of the summary and plots rules only.
    """
    module = run_dir / "src" / "kdwsd" / "stats.py"
    later = module.stat().st_mtime + 60
    os.utime(module, (later, later))
    assert_nothing_to_do(run_dir)  # newer, same content: the recorded checksum matches
    with edited(module, module.read_text() + "\n# an edit that changes the content\n"):
        assert_jobs(run_dir, {"plots": PLOTS, "summary": SUMMARY})
    assert_nothing_to_do(run_dir)  # content restored (mtime still newer): checksum matches again


# Library modules every script imports that cannot change a result: package docstring, logging/threads glue.
GLUE = {"__init__.py"}
RULE_SCRIPT = re.compile(r"^\s*rule (\w+):.*?^\s*script:\s*\n\s*\"([^\"]+)\"", re.S | re.M)


def test_lib_inputs_cover_the_modules_each_script_imports(tmp_path: Path) -> None:
    """Static check behind the library trigger: a rule's lib() inputs must list every library module its
    script imports at module level, directly or transitively (tools/versioning.py: library_imports).
    Otherwise editing that module would not rerun the rule. Jobs and inputs come from a dry run.
    """
    # --configfile replaces the Snakefile's `configfile:` (Snakemake >= 8), so the default goes first
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--dry-run",
           "--configfile", str(REPO / "config" / "config.yaml"), str(TINY)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=tool_env())
    assert res.returncode == 0, res.stderr[-4000:]
    src = REPO / "src" / "kdwsd"
    inputs: dict[str, set[str]] = {}
    rule = None
    for line in res.stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = m.group(1)
        elif rule and (m := re.match(r"^\s+input: (.*)$", line)):
            files = [(tmp_path / p).resolve() for p in m.group(1).split(", ")]  # lib() paths: absolute or relative
            inputs.setdefault(rule, set()).update(str(f.relative_to(src)) for f in files if f.is_relative_to(src))
    scripts = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for name, script in RULE_SCRIPT.findall(smk.read_text()):
            scripts[name] = (smk.parent / script).resolve()
    assert set(scripts) >= set(inputs) - {"all"}
    missing = {}
    for name in sorted(set(inputs) - {"all"}):
        used = {str(p.relative_to(src)) for p in library_imports(scripts[name], src)} - GLUE
        if gaps := used - inputs[name]:
            missing[name] = sorted({g.split("/")[0].removesuffix(".py") for g in gaps})
    assert not missing, ("add these lib(...) arguments (library modules a rule's script imports that are not "
                         f"among its inputs, so editing them would not rerun the rule): {missing}")  # fmt: skip
