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
def tiny_run(tiny_workdir: Path) -> Path:
    return tiny_workdir / "results" / "tiny"


@pytest.mark.slow
def test_every_output_is_produced(tiny_run: Path):
    models = ["teacher", "baseline", "baseline_long", "kd_feature", "kd_prediction", "kd_full"]
    for model in models + [f"{m}_seed1" for m in models[1:]]:
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
    for name in ["per_class_improvement", "examples", "training_curves", "proposal_recall"]:
        data = (tiny_run / "plots" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert (tiny_run / "plots" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
        assert b"<svg" in (tiny_run / "plots" / f"{name}.svg").read_bytes()[:2000]
    for table in ["results.csv", "results.tex", "differences.csv", "differences.tex", "bootstrap.csv"]:
        assert (tiny_run / "tables" / table).stat().st_size > 100, table
    prov = json.loads((tiny_run / "provenance.json").read_text())
    assert prov["config"]["run"] == "tiny" and "compute" not in prov["config"] and prov["provenance"]["git_commit"]
    assert {p.stem for p in (tiny_run / "benchmarks").glob("*.tsv")} >= {"teacher", "teacher_cache", "kd_full"}
    curve = (tiny_run / "logs" / "kd_full.csv").read_text().splitlines()
    assert "val_mAP" in curve[0] and curve[-1].split(",")[curve[0].split(",").index("val_mAP")] != ""
    summary = (tiny_run / "summary.md").read_text()
    for row in ["S-Cls w/o KD", "T-WDet", "S-Cls w/ KD", "feature KD only", "prediction KD only", "recall@0.7",
                "equal compute", "paired by seed", "bootstrap interval", "Teacher localisation"]:
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


@pytest.mark.slow
def test_html_report_holds_every_table_and_figure(tiny_run: Path, tmp_path: Path):
    """`snakemake --report` bundles the summary, every table and figure (with captions) and the provenance."""
    report = tmp_path / "report.zip"
    res = snakemake(tiny_run.parents[1], "--report", str(report))
    assert res.returncode == 0, res.stderr[-3000:]
    import zipfile

    names = "\n".join(zipfile.ZipFile(report).namelist())
    for item in ["summary.md", "results.csv", "differences.csv", "bootstrap.csv", "provenance.json", "qc.csv",
                 "per_class_improvement.png", "examples.png", "training_curves.png", "proposal_recall.png"]:
        assert item in names, item


@pytest.mark.slow
def test_readme_results_section_comes_from_the_run(tiny_run: Path, tmp_path: Path):
    sys.path.insert(0, str(REPO / "tools"))
    from readme_results import END, START, update

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold numbers\n{END}\nrest\n")
    _, new = update(readme, tiny_run)
    results = (tiny_run / "tables" / "results.csv").read_text().splitlines()
    kd_full = next(r for r in results if r.startswith("kd_full,"))
    assert kd_full.split(",")[3] in new and "old numbers" not in new and new.endswith("rest\n")
