"""The workflow under SLURM: profiles/slurm through a single-node cluster (tests/slurm_cluster.py).

    python -m pytest tests/test_slurm.py -q -m slurm          # squeue status mode (no accounting)
    KDWSD_SLURM_ACCOUNTING=1 python -m pytest tests/test_slurm.py -q -m slurm   # slurmdbd + sacct

What runs is described by one WorkflowSpec (WORKFLOW below). It is a toy workflow
(tests/data/toy_workflow) until the real pipeline is ready; switching means replacing WORKFLOW by
a spec for workflow/Snakefile + tests/configs/tiny.yaml (see REAL_PIPELINE_EXAMPLE).

The profile given to Snakemake is profiles/slurm merged key by key with
profiles/slurm-noaccounting (when the cluster has no accounting) and the test layer
tests/data/slurm_profile_test (smaller CPUs/memory/runtime, faster status polling). GPU rules keep
`gpu: 1`: the test cluster's node has a fake GPU, so the GPU request goes through the scheduler.
"""

from __future__ import annotations

import copy
import filecmp
import itertools
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
TEST_PROFILE_LAYER = REPO / "tests" / "data" / "slurm_profile_test"
PYTHON = sys.executable  # the venv's python; SLURM jobs re-run `<this python> -m snakemake`

SUBMIT_RE = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$", re.M)


# ---------------------------------------------------------------------------- what to run
@dataclass
class WorkflowSpec:
    snakefile: Path
    config_args: list[str]  # e.g. ["--configfile", ".../tiny.yaml"] or ["--config", "k=v"]
    rules: set[str]  # rules expected to run as SLURM jobs
    gpu_rules: set[str]  # rules that must reach SLURM with a GPU request
    compare: list[str]  # globs (relative to the run directory) that must equal a local run
    train_rule: str  # rule with per-epoch checkpoints, cancelled in the resume test
    train_log: str  # its log (relative to the run directory), appended to by each attempt
    slow_train_args: list[str] = field(default_factory=list)  # config making training last > ~20 s
    fast_train_args: list[str] = field(default_factory=list)  # same result as slow, but quick (local)
    timeout_train_args: list[str] = field(default_factory=list)  # training of ~100 s (> 1 min limit)
    timeout_fast_args: list[str] = field(default_factory=list)  # same result, quick (local)
    epoch_done_re: str = r"\[job (\S+)\] epoch (\d+)/(\d+) done"
    epoch_started_re: str = r"\[job (\S+)\] epoch (\d+)/(\d+) started"
    resumed_re: str = r"\[job (\S+)\] resumed from checkpoint epoch (\d+)"
    scratch_re: str = r"\[job (\S+)\] starting from scratch"


TOY = WorkflowSpec(
    snakefile=REPO / "tests" / "data" / "toy_workflow" / "Snakefile",
    config_args=["--config", "epochs=3", "epoch_seconds=0.2"],
    rules={"synthetic_dataset", "teacher", "summary"},
    gpu_rules={"teacher"},
    compare=["results/data.json", "results/teacher/model.json", "results/summary.json"],
    train_rule="teacher",
    train_log="results/ckpt/teacher/progress.log",
    slow_train_args=["--config", "epochs=8", "epoch_seconds=3"],
    fast_train_args=["--config", "epochs=8", "epoch_seconds=0"],
    timeout_train_args=["--config", "epochs=50", "epoch_seconds=2"],
    timeout_fast_args=["--config", "epochs=50", "epoch_seconds=0"],
)

# How the lead switches to the real pipeline (names from the issue; adjust the globs, the
# training log path and the regexes to what the pipeline really writes):
REAL_PIPELINE_EXAMPLE = WorkflowSpec(
    snakefile=REPO / "workflow" / "Snakefile",
    config_args=["--configfile", str(REPO / "tests" / "configs" / "tiny.yaml")],
    rules={
        "synthetic_dataset",
        "proposals",
        "proposals_qc",
        "teacher",
        "teacher_cache",
        "student_stage1",
        "student",
        "evaluate",
        "evaluate_teacher",
        "efficiency",
        "plots",
        "summary",
    },
    gpu_rules={"teacher", "teacher_cache", "student_stage1", "student", "evaluate", "evaluate_teacher", "efficiency"},
    compare=["results/*/metrics/*.json"],
    train_rule="teacher",
    train_log="results/tiny/checkpoints/teacher/progress.log",
    slow_train_args=["--config", "teacher_epochs=8"],
    timeout_train_args=["--config", "teacher_epochs=50"],
)

WORKFLOW = TOY


# ---------------------------------------------------------------------------- helpers
def _deep_merge(base: dict, layer: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def compose_profile(layers: list[Path | dict], dest: Path) -> Path:
    """Merge profile directories' config.yaml (or dicts) key by key, later wins, into dest/config.yaml.

    Snakemake replaces whole keys across --profile/--workflow-profile/command line, so
    set-resources of a test layer would otherwise drop every rule of the real profile.
    """
    merged: dict = {}
    for layer in layers:
        if not isinstance(layer, dict):
            layer = yaml.safe_load((layer / "config.yaml").read_text()) or {}
        merged = _deep_merge(merged, layer)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return dest


def profile_for(profile: str, cluster, scratch: Path, extra: dict | None = None) -> Path:
    """profiles/local, or profiles/slurm [+ slurm-noaccounting] + the test layer [+ extra]."""
    if profile == "local":
        return PROFILES / "local"
    if profile == "slurm":
        layers: list[Path | dict] = [PROFILES / "slurm"]
        if cluster is not None and not cluster.accounting:
            layers.append(PROFILES / "slurm-noaccounting")
        layers.append(TEST_PROFILE_LAYER)
        if extra:
            layers.append(extra)
        return compose_profile(layers, scratch / f"profile-slurm-test-{scratch.name}")
    return Path(profile)


@dataclass
class SnakemakeRun:
    returncode: int
    log: str
    seconds: float
    workdir: Path

    def submissions(self) -> list[tuple[str, str]]:
        """(rule, SLURM job id) for every sbatch submission in the log."""
        out = []
        for _, slurm_id, logfile in SUBMIT_RE.findall(self.log):
            m = re.search(r"rule_([A-Za-z0-9_]+?)(?:_wildcards_[^/]*)?/", logfile)
            out.append((m.group(1) if m else "?", slurm_id))
        return out


def snakemake_cmd(
    args: list[str], profile: str, cluster, workdir: Path, timeout: int, profile_extra: dict | None = None
) -> list[str]:
    prof = profile_for(profile, cluster, workdir.parent, profile_extra)
    cmd = [
        "timeout",
        "-s",
        "KILL",
        str(timeout),
        PYTHON,
        "-m",
        "snakemake",
        "-s",
        str(WORKFLOW.snakefile),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(prof),
    ]
    if profile != "local":
        cmd += ["--executor", "slurm"]
    return cmd + list(args)


def _env(cluster) -> dict:
    import os

    env = dict(cluster.env) if cluster is not None else dict(os.environ)
    env["PATH"] = f"{Path(PYTHON).parent}:{env.get('PATH', '')}"
    return env


def run_snakemake(args: list[str], profile: str, cluster, workdir: Path, timeout: int = 420) -> SnakemakeRun:
    """Run Snakemake (local profile or SLURM through `cluster`) and return its combined log.

    Wrapped in `timeout -s KILL`: SIGTERM makes Snakemake wait for running jobs.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        snakemake_cmd(args, profile, cluster, workdir, timeout),
        env=_env(cluster),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = SnakemakeRun(proc.returncode, proc.stdout, time.monotonic() - t0, workdir)
    (workdir.parent / f"{workdir.name}.snakemake.log").write_text(run.log)
    print(f"[test_slurm] snakemake ({profile}) in {workdir}: rc={run.returncode}, {run.seconds:.1f} s")
    return run


def assert_ok(run: SnakemakeRun) -> None:
    assert run.returncode == 0, f"snakemake failed (rc {run.returncode}):\n{run.log[-6000:]}"


def assert_same_outputs(a: Path, b: Path, patterns: list[str]) -> None:
    for pattern in patterns:
        files_a = sorted(p.relative_to(a) for p in a.glob(pattern))
        files_b = sorted(p.relative_to(b) for p in b.glob(pattern))
        assert files_a, f"no output matches {pattern} in {a}"
        assert files_a == files_b, f"{pattern}: {files_a} vs {files_b}"
        for rel in files_a:
            assert filecmp.cmp(a / rel, b / rel, shallow=False), f"{rel} differs between {a} and {b}"


def scontrol_job(cluster, job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", job_id], env=cluster.env, capture_output=True, text=True, timeout=30
    ).stdout


# ---------------------------------------------------------------------------- no cluster needed
@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profiles_are_valid_for_installed_snakemake(profile, tmp_path):
    """Dry run: every key of the profiles is a valid option, GPU rules ask for a GPU."""
    prof = profile_for(profile, None, tmp_path) if profile == "local" else PROFILES / "slurm"
    cmd = [
        PYTHON,
        "-m",
        "snakemake",
        "-n",
        "--forceall",
        "-s",
        str(TOY.snakefile),
        "--directory",
        str(tmp_path / "run"),
        "--workflow-profile",
        str(prof),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    blocks = dict(re.findall(r"rule (\w+):\n(?:    .*\n)*?    resources: (.*)", r.stdout + r.stderr))
    assert "gpu=1" in blocks["teacher"]
    assert "gpu=" not in blocks["synthetic_dataset"] and "gpu=" not in blocks["summary"]
    if profile == "slurm":
        assert "cpus_per_task=8" in blocks["teacher"] and "runtime=720" in blocks["teacher"]
    # the test layer overrides sizes but keeps the GPU request and the other rules' entries
    merged = yaml.safe_load(
        (compose_profile([PROFILES / "slurm", TEST_PROFILE_LAYER], tmp_path / "m") / "config.yaml").read_text()
    )
    assert merged["set-resources"]["teacher"] == {"gpu": 1, "cpus_per_task": 1, "mem_mb": 1000, "runtime": 15}
    assert merged["executor"] == "slurm" and merged["restart-times"] == 2


# ---------------------------------------------------------------------------- through SLURM
@pytest.mark.slurm
def test_workflow_through_slurm_matches_local(slurm_cluster, tmp_path):
    local = run_snakemake(WORKFLOW.config_args, "local", None, tmp_path / "local")
    assert_ok(local)
    slurm = run_snakemake(WORKFLOW.config_args, "slurm", slurm_cluster, tmp_path / "slurm")
    assert_ok(slurm)

    # every job went through sbatch, and SLURM knows each job id
    subs = slurm.submissions()
    assert {rule for rule, _ in subs} == WORKFLOW.rules, slurm.log[-4000:]
    history = {j["JobId"]: j for j in slurm_cluster.job_history()}
    for rule, job_id in subs:
        assert job_id in history, f"SLURM job {job_id} ({rule}) not in job history: {history}"
        assert history[job_id]["State"] == "COMPLETED", history[job_id]
        if slurm_cluster.accounting:  # the job reached the accounting database
            assert history[job_id]["source"] == "sacct", history[job_id]
        if history[job_id].get("Comment") not in (None, "", "(null)"):
            assert history[job_id]["Comment"].startswith(f"rule_{rule}")
        # GPU rules reached the scheduler with a GPU request, CPU rules without
        gpu_request = re.search(r"(TresPerJob|TresPerNode|TRES)=\S*gpu", scontrol_job(slurm_cluster, job_id))
        if rule in WORKFLOW.gpu_rules:
            assert gpu_request, f"{rule} (job {job_id}) has no GPU request:\n{scontrol_job(slurm_cluster, job_id)}"
        else:
            assert not gpu_request, f"CPU rule {rule} (job {job_id}) asked for a GPU"

    if not slurm_cluster.accounting:  # squeue status mode stayed in force (no switch to sacct)
        assert "Falling back to 'sacct'" not in slurm.log, slurm.log[-4000:]

    assert_same_outputs(local.workdir, slurm.workdir, WORKFLOW.compare)
    print(f"[test_slurm] local {local.seconds:.1f} s, SLURM {slurm.seconds:.1f} s, {len(subs)} SLURM jobs")


def _wait_for_log(path: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            m = re.search(pattern, path.read_text())
            if m:
                return m
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) before {pattern!r} appeared in {path}")
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} did not appear in {path} within {timeout:.0f} s")


def run_interrupted_training(
    cluster,
    tmp_path: Path,
    name: str,
    train_args: list[str],
    interrupt,
    profile_extra: dict | None = None,
    timeout: int = 480,
) -> SnakemakeRun:
    """Run the workflow through SLURM in the background; `interrupt(proc, progress_log, log_path)`
    is called meanwhile (e.g. waits for 2 epochs and scancels the training job)."""
    workdir = tmp_path / name
    workdir.mkdir()
    log_path = tmp_path / f"{name}.snakemake.log"
    cmd = snakemake_cmd(train_args, "slurm", cluster, workdir, timeout, profile_extra)
    t0 = time.monotonic()
    with open(log_path, "w") as fh:
        proc = subprocess.Popen(cmd, env=_env(cluster), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        interrupt(proc, workdir / WORKFLOW.train_log, log_path)
        rc = proc.wait(timeout=timeout + 30)
    finally:
        if proc.poll() is None:  # never leave a snakemake behind when an assertion fired
            import os
            import signal

            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    run = SnakemakeRun(rc, log_path.read_text(), time.monotonic() - t0, workdir)
    print(f"[test_slurm] {name}: rc={rc}, {run.seconds:.1f} s")
    assert_ok(run)
    return run


def assert_resumed_training(
    run: SnakemakeRun, cluster, failed_state: str, tmp_path: Path, local_args: list[str]
) -> list[str]:
    """The training rule failed (SLURM state `failed_state`), Snakemake resubmitted it
    (restart-times) under new SLURM job ids, every later attempt resumed from the checkpoint of the
    attempt before it, and the result equals an uninterrupted local run. Returns the job ids."""
    jobs = [j for r, j in run.submissions() if r == WORKFLOW.train_rule]
    assert len(jobs) >= 2 and len(set(jobs)) == len(jobs), run.log[-4000:]
    assert re.search(rf"SLURM status is: '{failed_state}", run.log), run.log[-4000:]
    assert "Trying to restart job" in run.log, run.log[-4000:]
    history = {j["JobId"]: j for j in cluster.job_history()}
    for job in jobs[:-1]:
        assert history[job]["State"].startswith(failed_state), history.get(job)
    assert history[jobs[-1]]["State"] == "COMPLETED", history.get(jobs[-1])

    text = (run.workdir / WORKFLOW.train_log).read_text()
    started: dict[str, list[int]] = {}
    done: dict[str, list[int]] = {}
    for job, epoch, _ in re.findall(WORKFLOW.epoch_started_re, text):
        started.setdefault(job, []).append(int(epoch))
    for job, epoch, _ in re.findall(WORKFLOW.epoch_done_re, text):
        done.setdefault(job, []).append(int(epoch))
    resumed = dict(re.findall(WORKFLOW.resumed_re, text))
    assert re.findall(WORKFLOW.scratch_re, text) == [jobs[0]], text
    n_epochs = int(re.findall(WORKFLOW.epoch_done_re, text)[-1][2])
    for prev, job in itertools.pairwise(jobs):
        assert job in resumed, f"attempt {job} did not resume:\n{text}"
        k = int(resumed[job])
        # resumed from the last checkpoint the previous attempt wrote (its last finished epoch,
        # or the one it was killed in right after saving it)
        assert max(done[prev]) <= k <= max(started[prev]) and k >= 1, text
        assert started.get(job, [])[:1] in ([k + 1], []) and started.get(job, []) == list(
            range(k + 1, k + 1 + len(started.get(job, [])))
        ), text
    assert max(done[jobs[-1]]) == n_epochs, text

    local = run_snakemake(local_args, "local", None, tmp_path / f"{run.workdir.name}-local")
    assert_ok(local)
    assert_same_outputs(local.workdir, run.workdir, WORKFLOW.compare)
    return jobs


@pytest.mark.slurm
def test_cancelled_training_job_is_resubmitted_and_resumes(slurm_cluster, tmp_path):
    if slurm_cluster.accounting:
        # snakemake-executor-plugin-slurm 2.8.0 compares the sacct state with 'CANCELLED', but
        # sacct reports a user's scancel as 'CANCELLED by <uid>': the plugin takes the job for
        # running and Snakemake waits forever. squeue reports plain 'CANCELLED' (no-accounting
        # mode). The time-limit test below covers resubmission + resume with sacct.
        pytest.xfail("plugin 2.8.0 + sacct: 'CANCELLED by <uid>' is not recognised as failed (hangs)")
    cancelled = []

    def scancel_after_two_epochs(proc, progress_log, log_path):
        _wait_for_log(progress_log, r"epoch 2/\d+ done", proc, timeout=240)
        subs = [
            j
            for r, j in SnakemakeRun(0, log_path.read_text(), 0, progress_log).submissions()
            if r == WORKFLOW.train_rule
        ]
        assert len(subs) == 1, log_path.read_text()
        subprocess.run(["scancel", subs[0]], env=slurm_cluster.env, check=True, timeout=30)
        cancelled.append(subs[0])

    run = run_interrupted_training(
        slurm_cluster, tmp_path, "slurm-scancel", WORKFLOW.slow_train_args, scancel_after_two_epochs
    )
    jobs = assert_resumed_training(
        run, slurm_cluster, "CANCELLED", tmp_path, WORKFLOW.fast_train_args or WORKFLOW.slow_train_args
    )
    assert jobs[0] == cancelled[0] and len(jobs) == 2


@pytest.mark.slurm
def test_training_job_killed_at_time_limit_is_resubmitted_and_resumes(slurm_cluster, tmp_path):
    """SLURM kills the training job at its time limit (1 min; TIMEOUT), Snakemake resubmits it.

    Slow (~3 min): runs by default with accounting (where it replaces the scancel test), else
    only with KDWSD_SLURM_SLOW=1.
    """
    import os

    if not slurm_cluster.accounting and os.environ.get("KDWSD_SLURM_SLOW") != "1":
        pytest.skip("time-limit test (~3 min) runs with KDWSD_SLURM_ACCOUNTING=1 or KDWSD_SLURM_SLOW=1")

    def nothing(proc, progress_log, log_path):
        return None

    run = run_interrupted_training(
        slurm_cluster,
        tmp_path,
        "slurm-timeout",
        WORKFLOW.timeout_train_args,
        nothing,
        profile_extra={"set-resources": {WORKFLOW.train_rule: {"runtime": 1}}},
        timeout=540,
    )
    assert_resumed_training(
        run, slurm_cluster, "TIMEOUT", tmp_path, WORKFLOW.timeout_fast_args or WORKFLOW.timeout_train_args
    )
