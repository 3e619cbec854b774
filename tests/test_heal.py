"""A rerun always heals (issue 9): break a finished tiny run, rerun the same `snakemake` command, end
byte-identical to the uninterrupted run. One complete tiny run per module; each case works on a copy of it.
Dry runs where they prove the point, real reruns only where needed. See docs/robustness.md."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from test_pipeline import DEFAULT, TINY, snakemake

from kdwsd.data.prepared import load_split

RUN = Path("results") / "tiny"
COMPARED = ("metrics/*.json", "per_class/*.csv", "scores/*.npy")
NO_CUDA = not torch.cuda.is_available()


def outputs(workdir: Path) -> dict[str, bytes]:
    """The compared results of a run: metrics, per-class tables and raw scores, by relative path."""
    run = workdir / RUN
    return {str(p.relative_to(run)): p.read_bytes() for pattern in COMPARED for p in sorted(run.glob(pattern))}


def jobs_run(res) -> dict[str, int]:
    """rule -> number of jobs, from the 'Job stats' table Snakemake prints before it runs (or plans)."""
    table = res.stdout + res.stderr
    start = table.find("Job stats:")
    assert start >= 0, table[-3000:]
    counts = {}
    for line in table[start:].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


@pytest.fixture(scope="module")
def complete(tiny_workdir: Path) -> Path:
    """The uninterrupted tiny run (tests/conftest.py), never modified: each case works on a copy."""
    assert len(outputs(tiny_workdir)) == 33  # teacher + 5 experiments x 2 seeds, 3 files each
    return tiny_workdir


@pytest.fixture
def damaged(complete: Path, tmp_path: Path) -> Path:
    """A private copy of the complete run (modification times kept: Snakemake sees it as finished)."""
    dest = tmp_path / "w"
    shutil.copytree(complete, dest, symlinks=True)
    return dest


@pytest.mark.slow
def test_truncated_checkpoint_of_a_killed_job_is_moved_aside_and_retrained(complete, damaged):
    """(a) A job killed while saving leaves a truncated last.pt and no model: the rerun sets it aside and
    retrains from scratch, to the same bytes."""
    run = damaged / RUN
    ckpt = run / "checkpoints" / "kd_full" / "last.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    whole = (run / "models" / "kd_full.pt").read_bytes()  # a real torch zip file, cut in the middle
    ckpt.write_bytes(whole[: len(whole) // 2])
    (run / "models" / "kd_full.pt").unlink()
    res = snakemake(damaged, "--cores", "2")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-8000:]
    ran = jobs_run(res)
    assert ran.get("student") == 1 and "teacher" not in ran and "teacher_cache" not in ran, ran
    assert (ckpt.parent / "last.pt.corrupt").read_bytes() == whole[: len(whole) // 2]
    assert "is unreadable" in (run / "logs" / "kd_full.log").read_text()
    assert (run / "models" / "kd_full.pt").read_bytes() == whole
    assert outputs(damaged) == outputs(complete)


@pytest.mark.slow
def test_truncated_cache_shard_is_named_quarantined_and_rebuilt(complete, damaged):
    """(b) The consumer of a truncated cache shard fails naming it and moves the cache aside; the next plain
    rerun rebuilds the cache and everything downstream, to the same bytes. (d) The failure's traceback is in
    the rule's log file, the console has one line."""
    run = damaged / RUN
    shard = run / "cache" / "train" / "shard-00000" / "soft_targets.npy"
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 8)
    (run / "models" / "student_stage1_seed0.pt").unlink()

    first = snakemake(damaged, "--cores", "1")
    assert first.returncode != 0
    summary = [line for line in first.stderr.splitlines() if line.startswith("kdwsd: step student_stage1 failed:")]
    assert len(summary) == 1, first.stderr[-6000:]
    assert re.search(r"PipelineInputError: \S*cache/train/shard-00000/soft_targets\.npy: soft_targets: \d+ bytes, "
                     r"expected \d+ \(truncated or corrupt\)\. The cache folder was moved aside to \S*train\.corrupt-"
                     r"\S+: rerun the same snakemake command to rebuild it "
                     r"\(traceback in \S+student_stage1_seed0\.log\)", summary[0]), summary[0]  # fmt: skip
    log = (run / "logs" / "student_stage1_seed0.log").read_text()
    assert "step student_stage1 failed:\nTraceback (most recent call last):" in log
    assert "kdwsd.errors.PipelineInputError:" in log and "soft_targets.npy" in log
    assert not (run / "cache" / "train").exists()
    assert len(list((run / "cache").glob("train.corrupt-*"))) == 1

    second = snakemake(damaged, "--cores", "2")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-8000:]
    ran = jobs_run(second)
    # the rebuilt cache is new input of both seeds' stage 1 (tests/configs/tiny.yaml: seeds 0 and 1)
    assert ran.get("teacher_cache") == 1 and ran.get("student_stage1") == 2 and "teacher" not in ran, ran
    assert outputs(damaged) == outputs(complete)
    assert "Nothing to be done" in snakemake(damaged, "-n", "--cores", "1").stdout


@pytest.mark.slow
def test_deleted_intermediate_model_is_planned_for_rebuild(damaged):
    """(c) After a killed --forcerun, models/kd_full.pt is missing while its metrics are up to date: a plain
    rerun plans to rebuild it (model files are targets of rule all) and what depends on it, nothing upstream.
    (The real rebuild, byte-identical, is test (a).)"""
    (damaged / RUN / "models" / "kd_full.pt").unlink()
    res = snakemake(damaged, "-n", "--cores", "1")
    assert res.returncode == 0, res.stderr[-4000:]
    assert "Missing output files: results/tiny/models/kd_full.pt" in res.stdout
    ran = jobs_run(res)
    assert ran.get("student") == 1 and ran.get("evaluate_student") == 1, ran
    assert not {"teacher", "teacher_cache", "student_stage1", "proposals", "synthetic_dataset"} & set(ran), ran


@pytest.mark.slow
def test_on_bad_image_reruns_only_the_training_side(damaged):
    """dataset.on_bad_image reaches the rules that read training images, never the dataset itself nor the
    evaluation split's proposals (which it never thins)."""
    overlay = damaged / "skip.yaml"
    overlay.write_text("dataset: {on_bad_image: skip}\n")
    res = snakemake(damaged, "-n", "--cores", "1", "--configfile", str(DEFAULT), str(TINY), str(overlay))
    ran = jobs_run(res)
    assert ran.get("proposals") == 2 and ran.get("teacher") == 1, ran  # the 2 train shards, not the test ones
    assert "synthetic_dataset" not in ran, ran


@pytest.mark.slow
def test_truncated_training_jpeg_stops_the_run_naming_it(damaged):
    """A JPEG cut in half (OpenCV would decode it silently) stops the first job that reads it, naming the file;
    under on_bad_image: skip it is dropped and counted instead (tests/test_robustness.py)."""
    train = load_split(damaged / RUN / "data", "train")
    path, image_id = train.paths[0], int(train.image_ids[0])  # image 0 is in proposal shard 0
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    shard = RUN / "proposals" / "train" / "shard-0-of-2.npz"
    (damaged / shard).unlink()
    res = snakemake(damaged, "--cores", "1", str(shard))  # an intermediate file: asked for by name
    assert res.returncode != 0
    # EdgeBoxes (the first reader) names the file; the training and cache readers also name the image id
    assert f"{path.name}: image: truncated JPEG (no end-of-image marker FF D9)" in res.stderr, res.stderr[-3000:]
    assert str(image_id) in path.name


@pytest.mark.slow
def test_exploded_teacher_is_refused_by_the_cache_naming_it(damaged):
    """A teacher with NaN weights: the cache step writes nothing and names the teacher file."""
    model_file = damaged / RUN / "models" / "teacher.pt"
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    for value in state["model"].values():
        if value.is_floating_point():
            value.fill_(float("nan"))
    torch.save(state, model_file)  # newer than the cache: a plain rerun reruns the cache step
    res = snakemake(damaged, "--cores", "1", "--until", "teacher_cache")
    assert res.returncode != 0
    assert re.search(r"kdwsd: step teacher_cache failed: PipelineInputError: \S*models/teacher\.pt: image id \d+: "
                     r"'\w+' is not finite", res.stderr), res.stderr[-4000:]  # fmt: skip
    assert not (damaged / RUN / "cache" / "train").exists()


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
def test_missing_gpu_fails_before_any_job_but_still_plans(tmp_path):
    """device: cuda on a machine without CUDA: a local run stops before the first job with what was asked for
    and what was found; a dry run (planning, e.g. on a login node) still works."""
    res = snakemake(tmp_path, "--cores", "1", "--config", "device=cuda")
    assert res.returncode != 0
    assert "kdwsd: config key device asks for device 'cuda', but CUDA is not available" in res.stderr
    assert "torch.cuda.is_available() = False" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "results").exists()  # no job started
    plan = snakemake(tmp_path, "-n", "--cores", "1", "--config", "device=cuda")
    assert plan.returncode == 0 and "synthetic_dataset" in plan.stdout, plan.stderr[-3000:]
