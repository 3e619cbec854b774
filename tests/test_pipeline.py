"""The whole DAG end to end on a tiny configuration (real rules, real scripts, real outputs)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "config" / "config.yaml"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(DEFAULT), str(TINY),
           *args]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("tiny")
    res = snakemake(workdir, "--cores", "2")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-8000:]
    return workdir / "results" / "tiny"


@pytest.mark.slow
def test_every_output_is_produced(tiny_run: Path):
    for model in ["teacher", "baseline", "kd_feature", "kd_prediction", "kd_full"]:
        metrics = json.loads((tiny_run / "metrics" / f"{model}.json").read_text())
        for key in ["mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3"]:
            assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, (model, key)
        assert len(metrics["AP"]) == 10
        with open(tiny_run / "per_class" / f"{model}.csv") as f:
            rows = list(csv.DictReader(f))
        assert [r["name"] for r in rows][:3] == ["circle", "square", "triangle"]
        assert set(rows[0]) >= {"index", "name", "n_train", "n_test", "AP", "P", "R", "F1"}
        assert np.load(tiny_run / "scores" / f"{model}.npy").shape == (16, 10)
    teacher = json.loads((tiny_run / "metrics" / "teacher.json").read_text())
    assert 0.0 <= teacher["CorLoc"] <= 1.0
    for png in ["per_class_improvement.png", "examples.png", "training_curves.png"]:
        data = (tiny_run / "plots" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    summary = (tiny_run / "summary.md").read_text()
    for row in ["S-Cls w/o KD", "T-WDet", "S-Cls w/ KD", "feature KD only", "prediction KD only", "recall@0.7"]:
        assert row in summary
    eff = json.loads((tiny_run / "efficiency.json").read_text())
    assert eff["teacher"]["macs_per_image"] > eff["student"]["macs_per_image"] > 0
    assert eff["student"]["images_per_s"] > 0
    with open(tiny_run / "proposals" / "qc.csv") as f:
        qc = {r["split"]: r for r in csv.DictReader(f)}
    assert set(qc) == {"train", "test"}
    assert 0.0 <= float(qc["test"]["recall_0.7"]) <= 1.0
    index = json.loads((tiny_run / "cache" / "train" / "index.json").read_text())
    assert index["num_images"] == 24 and index["rois"] == 8 and index["t_soft"] == 0.5
    # interrupted-run checkpoints are cleaned once the final models exist
    assert not any((tiny_run / "checkpoints").rglob("last.pt")) if (tiny_run / "checkpoints").exists() else True
    assert (tiny_run / "logs" / "teacher.log").read_text().count("epoch 2/2") == 1


@pytest.mark.slow
def test_second_run_has_nothing_to_do(tiny_run: Path):
    res = snakemake(tiny_run.parents[1], "-n", "--cores", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr
