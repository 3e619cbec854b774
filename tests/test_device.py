"""Tests of kdwsd.device: fail-fast device resolution and the per-job GPU slot claim (CPU only)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest
import torch

from kdwsd.device import (
    DeviceUnavailableError,
    assign_local_gpu,
    cuda_report,
    job_device,
    preflight_device,
    release_local_gpu,
    resolve_device,
)

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend this process sees ``n`` CUDA devices (no CUDA call reaches the driver)."""

    def install(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

        def init() -> None:
            if n == 0:
                raise RuntimeError("The NVIDIA driver on your system is too old (found version 12040).\nmore")

        monkeypatch.setattr(torch.cuda, "init", init)

    return install


# --------------------------------------------------------------------------------------------------
# resolve_device / preflight_device
# --------------------------------------------------------------------------------------------------
def test_cpu_and_auto_resolve_without_error():
    assert resolve_device("cpu", where="x") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto", where="x").type == expected


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:-1", "cpu:0", "auto:1", "cuda:0:1", ""])
def test_malformed_device_names_the_key(bad):
    with pytest.raises(ValueError, match=r"teacher\.device"):
        resolve_device(bad, where="config key teacher.device")


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
def test_missing_cuda_fails_fast_with_facts():
    env = {"CUDA_VISIBLE_DEVICES": "0,1"}
    with pytest.raises(DeviceUnavailableError) as info:
        resolve_device("cuda", where="config key teacher.device", env=env)
    msg = str(info.value)
    assert "config key teacher.device asks for device 'cuda'" in msg
    assert f"torch {torch.__version__}" in msg
    assert f"CUDA build: {torch.version.cuda or 'none'}" in msg
    assert "torch.cuda.is_available() = False" in msg and "device count = 0" in msg
    assert "CUDA_VISIBLE_DEVICES = '0,1'" in msg
    assert "Traceback" not in msg and "\n" not in msg
    assert info.value.report["is_available"] is False
    if torch.version.cuda:  # a CUDA build without a driver says why in its init error
        assert info.value.report["init_error"].startswith("RuntimeError: ")


def test_driver_error_is_reported_on_one_line(fake_gpus):
    fake_gpus(0)
    with pytest.raises(DeviceUnavailableError) as info:
        resolve_device("cuda:0", where="config key student.device", env={})
    msg = str(info.value)
    assert "driver/init error: RuntimeError: The NVIDIA driver on your system is too old (found version 12040)." in msg
    assert "more" not in msg  # only the first line of the driver's message
    assert "CUDA_VISIBLE_DEVICES = unset" in msg


def test_cuda_index_beyond_the_visible_devices(fake_gpus):
    fake_gpus(2)
    assert resolve_device("cuda", where="k") == torch.device("cuda", 0)
    assert resolve_device("cuda:1", where="k") == torch.device("cuda", 1)
    with pytest.raises(DeviceUnavailableError, match=r"'cuda:2', but only 2 CUDA device\(s\) are visible"):
        resolve_device("cuda:2", where="k", env={})
    report = cuda_report({})
    assert report["device_count"] == 2 and report["init_error"] is None  # init() not called when available


def test_preflight_checks_only_local_runs(fake_gpus):
    fake_gpus(0)
    # a SLURM login node without a GPU submits GPU jobs: no check
    assert preflight_device("cuda", "slurm", env={}) is None
    assert preflight_device("cuda", "cluster-generic", env={}) is None
    # inside a SLURM allocation the job on the compute node checks for itself
    assert preflight_device("cuda", None, env={"SLURM_JOB_ID": "123"}) is None
    # local run, no GPU: refuse before any job starts
    for executor in (None, "local"):
        with pytest.raises(DeviceUnavailableError, match="config key device asks for device 'cuda'"):
            preflight_device("cuda", executor, env={})
    assert preflight_device("auto", None, env={}) == torch.device("cpu")
    assert preflight_device("cpu", "local", env={}) == torch.device("cpu")


# --------------------------------------------------------------------------------------------------
# assign_local_gpu
# --------------------------------------------------------------------------------------------------
def _claim(slot_dir: str, n: int, out: mp.Queue, go: mp.Event) -> None:
    out.put((os.getpid(), assign_local_gpu(slot_dir, n, timeout=10, poll=0.02, env={})))
    go.wait(20)  # hold the slot until the test says so (then exit releases it)


def test_parallel_jobs_get_distinct_gpus(tmp_path):
    ctx = mp.get_context("fork")
    out, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_claim, args=(str(tmp_path), 3, out, go)) for _ in range(3)]
    for p in procs:
        p.start()
    try:
        got = dict(out.get(timeout=20) for _ in procs)
        assert sorted(got.values()) == [0, 1, 2]
        # each slot file names its holder
        for pid, idx in got.items():
            assert (tmp_path / f"gpu{idx}.lock").read_text() == f"{pid}\n"
        # a fourth job while all three are held waits, then gives up with a clear message
        with pytest.raises(TimeoutError, match=r"all 3 slot\(s\) are held.*--resources gpu=3"):
            assign_local_gpu(tmp_path, 3, timeout=0.2, poll=0.05, env={})
    finally:
        go.set()
        for p in procs:
            p.join(20)
    assert all(p.exitcode == 0 for p in procs)
    # the exited jobs released their slots (the OS drops the flock at exit): the next job gets slot 0
    assert assign_local_gpu(tmp_path, 3, env={}) == 0
    release_local_gpu(tmp_path)


def test_a_released_slot_is_reused_and_claims_are_idempotent(tmp_path):
    ctx = mp.get_context("fork")
    out, go = ctx.Queue(), ctx.Event()
    holder = ctx.Process(target=_claim, args=(str(tmp_path), 2, out, go))
    holder.start()
    try:
        assert out.get(timeout=20)[1] == 0
        assert assign_local_gpu(tmp_path, 2, env={}) == 1
        assert assign_local_gpu(tmp_path, 2, env={}) == 1  # same process: the slot it holds
        release_local_gpu(tmp_path)
        release_local_gpu(tmp_path)  # no-op
        assert assign_local_gpu(tmp_path, 2, env={}) == 1  # slot 0 is still held by the other process
        release_local_gpu(tmp_path)
    finally:
        go.set()
        holder.join(20)
    assert assign_local_gpu(tmp_path, 2, env={}) == 0
    release_local_gpu(tmp_path)


def test_slurm_isolated_gpu_needs_no_slot(tmp_path):
    slots = tmp_path / "slots"
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "3"}
    assert assign_local_gpu(slots, 4, env=env) == 0
    assert not slots.exists()
    with pytest.raises(ValueError, match="n_gpus must be >= 1"):
        assign_local_gpu(slots, 0, env={})


def test_slot_dir_is_created(tmp_path: Path):
    slots = tmp_path / ".snakemake" / "gpu-slots"
    assert assign_local_gpu(slots, 1, env={}) == 0
    assert (slots / "gpu0.lock").is_file()
    release_local_gpu(slots)


def test_job_device_claims_a_free_gpu_among_the_visible_ones(tmp_path, fake_gpus):
    fake_gpus(3)
    ctx = mp.get_context("fork")
    out, go = ctx.Queue(), ctx.Event()
    holder = ctx.Process(target=_claim, args=(str(tmp_path), 3, out, go))
    holder.start()
    try:
        assert out.get(timeout=20)[1] == 0
        assert job_device("cuda", where="k", slot_dir=tmp_path, env={}) == torch.device("cuda", 1)
        assert job_device("auto", where="k", slot_dir=tmp_path, env={}) == torch.device("cuda", 1)  # held
        assert job_device("cuda:2", where="k", slot_dir=tmp_path, env={}) == torch.device("cuda", 2)  # as given
        assert job_device("cuda", where="k", slot_dir=None, env={}) == torch.device("cuda", 0)
        assert job_device("cpu", where="k", slot_dir=tmp_path, env={}) == torch.device("cpu")
        release_local_gpu(tmp_path)
    finally:
        go.set()
        holder.join(20)
    fake_gpus(1)  # one GPU: nothing to share out, no slot file
    assert job_device("cuda", where="k", slot_dir=tmp_path / "one", env={}) == torch.device("cuda", 0)
    assert not (tmp_path / "one").exists()


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("stage", ["teacher.teacher", "cache.teacher_cache", "student.student_stage1",
                                   "student.student", "evaluate.evaluate_student", "evaluate.efficiency"])
def test_every_gpu_stage_checks_the_device_first(stage):
    """Each GPU job stops at its start, naming the config key, before it reads any input (all None here)."""
    import importlib
    import inspect

    module, name = stage.split(".")
    fn = getattr(importlib.import_module(f"kdwsd.stages.{module}"), name)
    kwargs = {p: None for p, v in inspect.signature(fn).parameters.items() if v.default is inspect.Parameter.empty}
    kwargs.update(device="cuda", **({"experiment": "baseline", "stage1": [], "cache": []} if name == "student" else {}))
    with pytest.raises(DeviceUnavailableError, match=r"^config key device asks for device 'cuda', but CUDA is not"):
        fn(**kwargs)
