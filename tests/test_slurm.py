"""The kdwsd pipeline under SLURM: profiles/slurm through a single-node cluster (tools/slurm/cluster.py).

    python -m pytest tests/test_slurm.py -q -m slurm          # squeue status mode (no accounting)
    KDWSD_SLURM_ACCOUNTING=1 python -m pytest tests/test_slurm.py -q -m slurm   # slurmdbd + sacct
    KDWSD_SLURM_SLOW=1 python -m pytest tests/test_slurm.py -q -m slurm         # + time-limit test

What runs: the real Snakefile on tests/configs/tiny.yaml plus tests/data/slurm_tiny_slow_teacher.yaml
(the teacher trains for 40 short epochs, long enough to be cancelled half-way). One SLURM run of
the whole DAG is shared by the tests; in squeue mode its teacher job is scancel'ed after epoch 2,
so the same run also shows the resubmission and the resume. One local run of the same
configuration (profiles/local), started in the background at the same time, is the reference:
with the same torch thread count (1, set by the test layer's set-threads in both runs) the
models, teacher cache, scores, metrics and per-class tables are byte-identical.

The profile given to Snakemake is profiles/slurm merged key by key with
profiles/slurm-noaccounting (when the cluster has no accounting) and the test layer
tests/data/slurm_profile_test (1 CPU and 1 thread per job, small memory/runtime, fast status
polling). GPU rules keep `gpu: 1`: the test cluster's node has two fake GPUs, so the GPU requests
go through the scheduler (and two GPU jobs may run at once).
"""

from __future__ import annotations

import contextlib
import csv
import filecmp
import io
import itertools
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from schema_defaults import deep_merge

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
TEST_PROFILE_LAYER = REPO / "tests" / "data" / "slurm_profile_test"
SNAKEFILE = REPO / "Snakefile"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SLOW_TEACHER = REPO / "tests" / "data" / "slurm_tiny_slow_teacher.yaml"  # teacher: 40 epochs
PYTHON = sys.executable  # the venv's python; SLURM jobs re-run `<this python> -m snakemake`
RUN = "results/tiny"

SUBMIT_RE = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$", re.M)

# ---------------------------------------------------------------------------- what runs
# Rules of the DAG for tiny.yaml, and those whose rule file declares `resources: gpu=1`
# (test_profiles_match_the_rule_files checks both against Snakemake's own dry run).
RULES = {
    "synthetic_dataset",
    "proposals",
    "proposals_qc",
    "teacher",
    "teacher_cache",
    "student_stage1",
    "student",
    "evaluate_student",
    "evaluate_teacher",
    "efficiency",
    "plots",
    "summary",
}
GPU_RULES = {"teacher", "teacher_cache", "student_stage1", "student", "evaluate_student", "efficiency"}
# checkpoints/<name>/progress.log -> the rule that trains <name>

# Outputs that must be byte-identical to the local run (same thread count in both runs).
COMPARE_EXACT = [
    f"{RUN}/data/**/*",
    f"{RUN}/proposals/*/*.npz",
    f"{RUN}/models/*.pt",
    f"{RUN}/cache/teacher_*.npz",
    f"{RUN}/cache/train/index.json",
    f"{RUN}/cache/train/*/*.npy",
    f"{RUN}/scores/*.npy",
    f"{RUN}/metrics/*.json",
    f"{RUN}/per_class/*.csv",
    f"{RUN}/plots/per_class_improvement.png",
    f"{RUN}/plots/examples.png",
]
# Tables equal once their timing columns are dropped.
COMPARE_CSV = {f"{RUN}/proposals/qc.csv": {"images_per_s"}}
# Training curves (one row per epoch): equal losses and learning rates per epoch. A resubmitted
# job's curve lacks the epochs of the killed attempt (test_training_curve_keeps_...).
CURVES = f"{RUN}/logs/*.csv"
CURVE_TIMINGS = {"images_per_s", "seconds"}
TIMING_KEY_RE = re.compile(r"per_s|_s_per_|speedup")  # efficiency.json: measured speeds
# Not compared: logs/*.log, checkpoints/*/progress.log, proposals/*/shard-*.json (timings),
# efficiency.json's speeds, summary.md and plots/training_curves.png (they show those timings).

TRAIN_RULE = "teacher"
TRAIN_LOG = f"{RUN}/checkpoints/teacher/progress.log"
TEACHER_TARGET = f"{RUN}/models/teacher.pt"
EPOCH_DONE_RE = r"\[job (\S+)\] epoch (\d+)/(\d+) done"
# an epoch a job started, or resumed in the middle (the previous attempt wrote a checkpoint on SIGTERM)
EPOCH_STARTED_RE = r"\[job (\S+)\] epoch (\d+)/(\d+) (?:started|resumed at batch)"
RESUMED_RE = r"\[job (\S+)\] resumed from checkpoint epoch (\d+)"
SCRATCH_RE = r"\[job (\S+)\] starting from scratch"


def config_args(*extra: Path) -> list[str]:
    """--configfile tiny.yaml [overrides...] (YAML files: --config would turn nested numbers into strings)."""
    return ["--configfile", str(REPO / "config" / "config.yaml"), str(TINY), *map(str, extra)]


# ---------------------------------------------------------------------------- helpers
def _profile_yaml(layer: Path) -> dict:
    return yaml.safe_load((layer / "config.yaml").read_text()) or {}


def compose_profile(layers: list[Path | dict], dest: Path) -> Path:
    """Merge profile directories' config.yaml (or dicts) key by key, later wins, into dest/config.yaml.

    Snakemake replaces whole keys across --profile/--workflow-profile/command line, so
    set-resources of a test layer would otherwise drop every rule of the real profile.
    """
    merged: dict = {}
    for layer in layers:
        merged = deep_merge(merged, layer if isinstance(layer, dict) else _profile_yaml(layer))
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return dest


def profile_for(profile: str, cluster, scratch: Path, extra: dict | None = None) -> Path:
    """profiles/local, or profiles/slurm [+ slurm-noaccounting] + the test layer [+ extra]."""
    if profile == "local":
        return PROFILES / "local"
    layers: list[Path | dict] = [PROFILES / "slurm"]
    if cluster is not None and not cluster.accounting:
        layers.append(PROFILES / "slurm-noaccounting")
    layers.append(TEST_PROFILE_LAYER)
    if extra:
        layers.append(extra)
    return compose_profile(layers, scratch / f"profile-{scratch.name}-{len(list(scratch.glob('profile-*')))}")


def local_thread_args() -> list[str]:
    """The test layer's set-threads, for the local reference run (same torch threads as under SLURM)."""
    threads = _profile_yaml(TEST_PROFILE_LAYER).get("set-threads", {})
    return ["--set-threads", *(f"{rule}={n}" for rule, n in threads.items())] if threads else []


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

    def jobs_of(self, rule: str) -> list[str]:
        return [j for r, j in self.submissions() if r == rule]


def _env(cluster) -> dict:
    env = dict(cluster.env) if cluster is not None else dict(os.environ)
    env["PATH"] = f"{Path(PYTHON).parent}:{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class BackgroundSnakemake:
    """Snakemake (local profile, or SLURM through `cluster`) in the background; wait() gives its run.

    Wrapped in `timeout -s KILL`: SIGTERM makes Snakemake wait for running jobs. Its own session,
    so that kill() ends Snakemake and the local jobs it started, and nothing else.
    """

    def __init__(
        self,
        args: list[str],
        profile: str,
        cluster,
        workdir: Path,
        timeout: int = 600,
        profile_extra: dict | None = None,
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.profile = workdir, profile
        self.log_path = workdir.parent / f"{workdir.name}.snakemake.log"
        prof = profile_for(profile, cluster, workdir.parent, profile_extra)
        cmd = ["timeout", "-s", "KILL", str(timeout), PYTHON, "-m", "snakemake", "-s", str(SNAKEFILE)]
        cmd += ["--directory", str(workdir), "--workflow-profile", str(prof)]
        if profile != "local":
            cmd += ["--executor", "slurm"]
        self.t0 = time.monotonic()
        with open(self.log_path, "w") as fh:
            self.proc = subprocess.Popen(
                [*cmd, *args], env=_env(cluster), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._run: SnakemakeRun | None = None
        self._seconds: float | None = None  # when it ended, even if wait() comes later
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        self.proc.wait()
        self._seconds = time.monotonic() - self.t0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self) -> SnakemakeRun:
        if self._run is None:
            rc = self.proc.wait()
            seconds = self._seconds if self._seconds is not None else time.monotonic() - self.t0
            self._run = SnakemakeRun(rc, self.log(), seconds, self.workdir)
            print(f"[test_slurm] snakemake ({self.profile}) in {self.workdir}: rc={rc}, {self._run.seconds:.1f} s")
        return self._run

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def assert_ok(run: SnakemakeRun) -> None:
    assert run.returncode == 0, f"snakemake failed (rc {run.returncode}):\n{run.log[-6000:]}"


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.glob(pattern) if p.is_file())


def assert_same_outputs(a: Path, b: Path, patterns: list[str]) -> int:
    n = 0
    for pattern in patterns:
        files_a, files_b = _files(a, pattern), _files(b, pattern)
        assert files_a, f"no output matches {pattern} in {a}"
        assert files_a == files_b, f"{pattern}: {files_a} vs {files_b}"
        differ = [str(rel) for rel in files_a if not filecmp.cmp(a / rel, b / rel, shallow=False)]
        assert not differ, f"differ between {a} and {b}: {differ}"
        n += len(files_a)
    return n


def _table(path: Path, drop: set[str]) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def _curve(path: Path) -> dict[int, dict]:
    """A training curve by epoch, without its timings. A job killed between writing an epoch's
    row and its checkpoint repeats that epoch after resuming; the repeat has the same values."""
    return {int(r.pop("epoch")): r for r in _table(path, CURVE_TIMINGS)}


def assert_same_curves(a: Path, b: Path, pattern: str, complete: bool = True) -> int:
    """Same epochs with the same values in a (the reference) and b; with complete=False, b may lack
    epochs at the start (those of a killed attempt), but not the last one."""
    files_a, files_b = _files(a, pattern), _files(b, pattern)
    assert files_a and files_a == files_b, f"{pattern}: {files_a} vs {files_b}"
    for rel in files_a:
        ca, cb = _curve(a / rel), _curve(b / rel)
        if complete:
            assert sorted(cb) == sorted(ca), f"{rel}: epochs {sorted(cb)} instead of {sorted(ca)}"
        else:
            assert cb and set(cb) <= set(ca) and max(cb) == max(ca), f"{rel}: epochs {sorted(cb)} vs {sorted(ca)}"
        differ = [e for e in cb if cb[e] != ca[e]]
        assert not differ, f"{rel}: epochs {differ} differ: {[(ca[e], cb[e]) for e in differ[:3]]}"
    return len(files_a)


def assert_same_tables(a: Path, b: Path, tables: dict[str, set[str]]) -> int:
    n = 0
    for pattern, drop in tables.items():
        files_a, files_b = _files(a, pattern), _files(b, pattern)
        assert files_a and files_a == files_b, f"{pattern}: {files_a} vs {files_b}"
        for rel in files_a:
            assert _table(a / rel, drop) == _table(b / rel, drop), f"{rel} differs (ignoring {sorted(drop)})"
        n += len(files_a)
    return n


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if not TIMING_KEY_RE.search(k)}
    return obj


def scontrol_job(cluster, job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", job_id], env=cluster.env, capture_output=True, text=True, timeout=30
    ).stdout


def _wait_for_log(path: Path, pattern: str, bg: BackgroundSnakemake, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            m = re.search(pattern, path.read_text())
            if m:
                return m
        if bg.proc.poll() is not None:
            raise AssertionError(
                f"snakemake ended (rc {bg.proc.returncode}) before {pattern!r} appeared in {path}:\n{bg.log()[-4000:]}"
            )
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} did not appear in {path} within {timeout:.0f} s")


def assert_resumed_training(run: SnakemakeRun, cluster, failed_state: str) -> list[str]:
    """The training job ended in `failed_state`, Snakemake resubmitted it, the new attempt resumed
    from the checkpoint of the previous one and finished. Returns the training rule's SLURM jobs."""
    jobs = run.jobs_of(TRAIN_RULE)
    assert len(jobs) >= 2, f"{TRAIN_RULE} was not resubmitted: {run.submissions()}\n{run.log[-4000:]}"
    assert "Trying to restart job" in run.log, run.log[-4000:]
    history = {j["JobId"]: j for j in cluster.job_history()}
    for job in jobs[:-1]:
        assert history[job]["State"].startswith(failed_state), history.get(job)
    assert history[jobs[-1]]["State"] == "COMPLETED", history.get(jobs[-1])

    text = (run.workdir / TRAIN_LOG).read_text()
    started: dict[str, list[int]] = {}
    done: dict[str, list[int]] = {}
    for job, epoch, _ in re.findall(EPOCH_STARTED_RE, text):
        started.setdefault(job, []).append(int(epoch))
    for job, epoch, _ in re.findall(EPOCH_DONE_RE, text):
        done.setdefault(job, []).append(int(epoch))
    resumed = dict(re.findall(RESUMED_RE, text))
    assert re.findall(SCRATCH_RE, text) == [jobs[0]], text
    assert set(started) <= set(jobs), f"epochs run outside the SLURM jobs {jobs}:\n{text}"
    n_epochs = int(re.findall(EPOCH_DONE_RE, text)[-1][2])
    for prev, job in itertools.pairwise(jobs):
        assert job in resumed, f"attempt {job} did not resume:\n{text}"
        k = int(resumed[job])
        # resumed from the last checkpoint the previous attempt wrote (its last finished epoch, the one it
        # was killed in right after saving it, or the middle of the next on SIGTERM: "epoch k+1 resumed at")
        assert max(done[prev]) <= k <= max(started[prev]) and k >= 1, text
        assert started.get(job, [])[:1] in ([k + 1], []) and started.get(job, []) == list(
            range(k + 1, k + 1 + len(started.get(job, [])))
        ), text
    assert max(done[jobs[-1]]) == n_epochs, text
    assert max(done[jobs[0]]) < n_epochs, f"the first attempt was not interrupted:\n{text}"
    return jobs


# ---------------------------------------------------------------------------- no cluster needed
def _dry_run(tmp_path: Path, *args: str) -> dict[str, str]:
    """{rule: its `resources:` line} from a dry run of the whole tiny DAG."""
    cmd = [PYTHON, "-m", "snakemake", "-n", "--forceall", "-s", str(SNAKEFILE), "--directory", str(tmp_path)]
    r = subprocess.run([*cmd, *config_args(), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(re.findall(r"rule (\w+):\n(?:    .*\n)*?    resources: (.*)", r.stdout + r.stderr))


def test_profiles_match_the_rule_files(tmp_path):
    """Every key of the profiles is valid for the installed Snakemake (dry runs), the profiles name
    existing rules, and they ask for a GPU for exactly the rules whose rule file declares one."""
    plain = _dry_run(tmp_path / "plain", "--cores", "2")  # the rule files alone
    assert set(plain) == RULES | {"all"}, sorted(plain)
    assert {r for r, res in plain.items() if "gpu=1" in res} == GPU_RULES, plain

    blocks: dict[str, dict[str, str]] = {}
    for name in ("local", "slurm"):
        prof = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
        assert set(prof["set-resources"]) <= RULES, f"profiles/{name}: unknown rules in set-resources"
        assert {r for r, res in prof["set-resources"].items() if res.get("gpu")} == GPU_RULES, name
        assert set(prof.get("set-threads", {})) <= RULES, f"profiles/{name}: unknown rules in set-threads"
        blocks[name] = _dry_run(tmp_path / name, "--workflow-profile", str(PROFILES / name))
        for rule in RULES:
            assert ("gpu=1" in blocks[name][rule]) == (rule in GPU_RULES), (name, rule, blocks[name][rule])

    slurm = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert slurm["executor"] == "slurm" and slurm["restart-times"] == 2
    for rule in GPU_RULES:  # the job uses as many threads as it reserves CPUs
        assert slurm["set-threads"][rule] == slurm["set-resources"][rule]["cpus_per_task"], rule
    assert "cpus_per_task=8" in blocks["slurm"]["teacher"] and "runtime=720" in blocks["slurm"]["teacher"]

    # the test layer shrinks sizes, keeps the GPU requests and the other rules' entries
    merged = _profile_yaml(compose_profile([PROFILES / "slurm", TEST_PROFILE_LAYER], tmp_path / "m"))
    assert merged["set-resources"]["teacher"] == {"gpu": 1, "cpus_per_task": 1, "mem_mb": 1000, "runtime": 15}
    assert set(merged["set-resources"]) == set(slurm["set-resources"])
    for rule in GPU_RULES:
        assert merged["set-threads"][rule] == merged["set-resources"][rule]["cpus_per_task"] == 1, rule
    assert merged["executor"] == "slurm" and merged["restart-times"] == 2


# ---------------------------------------------------------------------------- through SLURM
@dataclass
class PipelineRun:
    slurm: SnakemakeRun
    local: BackgroundSnakemake  # the reference, wait() before use
    cancelled: list[str]  # SLURM jobs scancel'ed by the test


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The tiny DAG (slow teacher) on this machine with profiles/local, in the background."""
    bg = BackgroundSnakemake(
        config_args(SLOW_TEACHER) + local_thread_args(), "local", None, tmp_path_factory.mktemp("ref") / "local"
    )
    yield bg
    bg.kill()


@pytest.fixture(scope="module")
def pipeline_run(slurm_cluster, local_reference, tmp_path_factory) -> PipelineRun:
    """The whole tiny DAG through SLURM. In squeue mode the teacher job is scancel'ed after its
    second epoch (Snakemake resubmits it, it resumes); with accounting it runs uninterrupted
    (plugin 2.8.0 + sacct hangs after a user's scancel, see test_cancelled_...)."""
    bg = BackgroundSnakemake(
        config_args(SLOW_TEACHER), "slurm", slurm_cluster, tmp_path_factory.mktemp("slurm") / "slurm"
    )
    cancelled: list[str] = []
    try:
        if not slurm_cluster.accounting:
            _wait_for_log(bg.workdir / TRAIN_LOG, r"epoch 2/\d+ done", bg, timeout=400)
            jobs = SnakemakeRun(0, bg.log(), 0, bg.workdir).jobs_of(TRAIN_RULE)
            assert len(jobs) == 1, bg.log()
            subprocess.run(["scancel", jobs[0]], env=slurm_cluster.env, check=True, timeout=30)
            cancelled.append(jobs[0])
        run = bg.wait()
    finally:
        bg.kill()
    (bg.workdir.parent / "job_history.json").write_text(json.dumps(slurm_cluster.job_history(), indent=1))
    return PipelineRun(run, local_reference, cancelled)


@pytest.mark.slurm
def test_pipeline_through_slurm_matches_local(slurm_cluster, pipeline_run):
    slurm = pipeline_run.slurm
    assert_ok(slurm)

    # every job went through sbatch, and SLURM knows each job id
    subs = slurm.submissions()
    assert {rule for rule, _ in subs} == RULES, slurm.log[-4000:]
    history = {j["JobId"]: j for j in slurm_cluster.job_history()}
    for rule, job_id in subs:
        assert job_id in history, f"SLURM job {job_id} ({rule}) not in job history: {history}"
        expected = "CANCELLED" if job_id in pipeline_run.cancelled else "COMPLETED"
        assert history[job_id]["State"].startswith(expected), history[job_id]
        if slurm_cluster.accounting:  # the job reached the accounting database
            assert history[job_id]["source"] == "sacct", history[job_id]
        if history[job_id].get("Comment") not in (None, "", "(null)"):
            assert history[job_id]["Comment"].startswith(f"rule_{rule}")
        # GPU rules reached the scheduler with a GPU request, CPU rules without
        job = scontrol_job(slurm_cluster, job_id)
        gpu_request = re.search(r"(TresPerJob|TresPerNode|TRES)=\S*gpu", job)
        if rule in GPU_RULES:
            assert gpu_request, f"{rule} (job {job_id}) has no GPU request:\n{job}"
        else:
            assert not gpu_request, f"CPU rule {rule} (job {job_id}) asked for a GPU"

    if not slurm_cluster.accounting:  # squeue status mode stayed in force (no switch to sacct)
        assert "Falling back to 'sacct'" not in slurm.log, slurm.log[-4000:]

    # every training attempt ran inside a SLURM job of its rule (progress.log names $SLURM_JOB_ID)
    logs = sorted((slurm.workdir / RUN / "checkpoints").glob("*/progress.log"))
    assert len(logs) == 13, logs  # teacher, stage 1 x 2 seeds, 5 experiments x 2 seeds (tiny.yaml)
    for log in logs:
        name = log.parent.name
        rule = "teacher" if name == "teacher" else "student_stage1" if name.startswith("student_stage1") else "student"
        attempts = set(re.findall(r"\[job (\S+)\]", log.read_text()))
        assert attempts and attempts <= set(slurm.jobs_of(rule)), (log, attempts, slurm.jobs_of(rule))
    # the jobs used the threads they reserved (test layer: cpus_per_task 1, set-threads 1)
    assert json.loads((slurm.workdir / RUN / "efficiency.json").read_text())["threads"] == 1

    # the same results as on this machine
    local = pipeline_run.local.wait()
    assert_ok(local)
    a, b = local.workdir, slurm.workdir
    n = assert_same_outputs(a, b, COMPARE_EXACT)
    n += assert_same_tables(a, b, COMPARE_CSV)
    n += assert_same_curves(a, b, CURVES, complete=not pipeline_run.cancelled)
    eff_a, eff_b = (json.loads((d / RUN / "efficiency.json").read_text()) for d in (a, b))
    assert _without_timings(eff_a) == _without_timings(eff_b)
    print(f"[test_slurm] local {local.seconds:.1f} s, SLURM {slurm.seconds:.1f} s, {len(subs)} SLURM jobs, "
          f"{n + 1} files equal")  # fmt: skip


@pytest.mark.slurm
def test_cancelled_training_job_is_resubmitted_and_resumes(slurm_cluster, pipeline_run):
    """scancel of the teacher's job after epoch 2 (in pipeline_run): Snakemake resubmits it, the new
    job resumes from the checkpoint, and the teacher equals the uninterrupted local one."""
    if slurm_cluster.accounting:
        # snakemake-executor-plugin-slurm 2.8.0 compares the sacct state with 'CANCELLED', but
        # sacct reports a user's scancel as 'CANCELLED by <uid>': the plugin takes the job for
        # running and Snakemake waits forever. squeue reports plain 'CANCELLED' (no-accounting
        # mode). The time-limit test below covers resubmission + resume with sacct.
        pytest.xfail("plugin 2.8.0 + sacct: 'CANCELLED by <uid>' is not recognised as failed (hangs)")
    run = pipeline_run.slurm
    assert_ok(run)
    jobs = assert_resumed_training(run, slurm_cluster, "CANCELLED")
    assert jobs[0] == pipeline_run.cancelled[0] and len(jobs) == 2
    local = pipeline_run.local.wait()
    assert_ok(local)
    assert_same_outputs(local.workdir, run.workdir, [TEACHER_TARGET])
    assert_same_curves(local.workdir, run.workdir, f"{RUN}/logs/teacher.csv", complete=False)


@pytest.mark.slurm
def test_training_curve_keeps_the_epochs_of_the_cancelled_attempt(slurm_cluster, pipeline_run):
    if not pipeline_run.cancelled:
        pytest.skip("no training job was cancelled (accounting mode)")
    local = pipeline_run.local.wait()
    assert_ok(local)
    assert_same_curves(local.workdir, pipeline_run.slurm.workdir, f"{RUN}/logs/teacher.csv", complete=True)


@pytest.mark.slurm
def test_training_job_killed_at_time_limit_is_resubmitted_and_resumes(slurm_cluster, pipeline_run, tmp_path):
    """SLURM kills the teacher's job at its time limit (1 min; TIMEOUT), Snakemake resubmits it
    (with a 15-min limit), the new job resumes; the teacher equals an uninterrupted local one.

    Runs the DAG up to models/teacher.pt only, with as many epochs as take ~2 min here (from the
    epoch times of pipeline_run). Slow (~4 min): runs by default with accounting (where it
    replaces the scancel test), else only with KDWSD_SLURM_SLOW=1.
    """
    if not slurm_cluster.accounting and os.environ.get("KDWSD_SLURM_SLOW") != "1":
        pytest.skip("time-limit test (~4 min) runs with KDWSD_SLURM_ACCOUNTING=1 or KDWSD_SLURM_SLOW=1")
    with open(pipeline_run.slurm.workdir / RUN / "logs" / "teacher.csv") as f:
        epoch_s = statistics.median(float(r["seconds"]) for r in csv.DictReader(f))
    epochs = max(40, math.ceil(120 / max(epoch_s, 1e-3)))
    override = tmp_path / "long_teacher.yaml"
    override.write_text(yaml.safe_dump({"teacher": {"optim": {"epochs": epochs}}}))
    print(f"[test_slurm] teacher epoch {epoch_s:.2f} s -> {epochs} epochs")

    args = [TEACHER_TARGET, *config_args(override)]  # target first: --configfile takes several files
    local = BackgroundSnakemake(args + local_thread_args(), "local", None, tmp_path / "local")
    slurm = BackgroundSnakemake(
        args,
        "slurm",
        slurm_cluster,
        tmp_path / "slurm-timeout",
        profile_extra={"set-resources": {TRAIN_RULE: {"runtime": "1 if attempt == 1 else 15"}}},
    )
    try:
        run = slurm.wait()
        assert_ok(run)
        assert {r for r, _ in run.submissions()} == {"synthetic_dataset", "proposals", TRAIN_RULE}
        jobs = assert_resumed_training(run, slurm_cluster, "TIMEOUT")
        assert len(jobs) == 2, jobs
        ref = local.wait()
        assert_ok(ref)
        assert_same_outputs(ref.workdir, run.workdir, [TEACHER_TARGET, f"{RUN}/proposals/train/*.npz"])
    finally:
        local.kill()
        slurm.kill()
