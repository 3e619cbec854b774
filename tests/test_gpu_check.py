"""The GPU check script (benchmarks/gpu_check.sh): a CPU run at tiny sizes has every stage with finite losses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("teacher train", "teacher cache", "stage 1 (live teacher)", "stage 1 (cached)", "stage 2", "evaluation")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}  # fmt: skip


def _table(stdout: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in stdout.splitlines() if line.startswith("| ")]
    header, *body = rows
    assert [c.strip() for c in header] == ["stage", "batch", "img/s", "peak memory (GiB)", "loss finite"]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in body}


@pytest.mark.slow
def test_small_cpu_run_has_every_stage_and_finite_losses(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--small", "--device", "cpu",
                           "--json", str(out)], capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = _table(proc.stdout)
    assert tuple(table) == STAGES
    for stage, (_batch, rate, peak, finite) in table.items():
        assert finite == "yes", stage
        assert float(rate) > 0 and peak == "n/a (cpu)"
    assert table["teacher train"][0] == "2 x 2" and table["stage 2"][0] == "4"
    assert out.is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_a_clear_error():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--small"],
                          capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert "gpu_check --device asks for device 'cuda', but CUDA is not available" in proc.stderr
    assert "Traceback" not in proc.stderr
