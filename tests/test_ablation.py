"""The Table 5 ablation: the stage that builds the table from the variant runs' metric files, the opt-in
`ablation` target (its missing-run error), and, slow, the target end to end on the tiny config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kdwsd.stages.report import ABLATION_LABELS, ablation

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "config" / "config.yaml"
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def snakemake(workdir: Path, configfiles: list[Path], *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
           *map(str, configfiles), *args]  # fmt: skip
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip


def _write_run(root: Path, method: str, teacher: dict, kd: list[float], recall: tuple[float, float]) -> dict:
    (root / "metrics").mkdir(parents=True)
    (root / "proposals").mkdir()
    (root / "metrics" / "teacher.json").write_text(json.dumps(teacher))
    files = {"teacher": root / "metrics" / "teacher.json", "qc": root / "proposals" / "qc.csv", "students": []}
    for k, m in enumerate(kd):
        files["students"].append(root / "metrics" / (f"kd_full_seed{k}.json" if k else "kd_full.json"))
        files["students"][-1].write_text(json.dumps({"mAP": m}))
    pd.DataFrame([{"method": method, "split": "train", "recall_0.5": 0.1, "recall_0.7": 0.05},
                  {"method": method, "split": "test", "recall_0.5": recall[0], "recall_0.7": recall[1]}]).to_csv(
        files["qc"], index=False)  # fmt: skip
    return files


def _ablation(tmp_path: Path, runs: dict[str, dict], baseline: list[Path]) -> dict[str, Path]:
    out = {k: tmp_path / "ablation" / f"table5.{k}" for k in ("csv", "tex", "md")}
    # The stage function itself: tests/rulestub.py passes a list input as one item.
    ablation(teacher=[str(r["teacher"]) for r in runs.values()],
             students=[str(s) for r in runs.values() for s in r["students"]], qc=[str(r["qc"]) for r in runs.values()],
             baseline=[str(b) for b in baseline], **{k: str(v) for k, v in out.items()}, methods=list(runs),
             runs=[str(tmp_path / m) for m in runs], split="test", dataset="synthetic")  # fmt: skip
    return out


def test_table_numbers_come_from_the_metric_files(tmp_path: Path) -> None:
    runs = {"edgeboxes": _write_run(tmp_path / "edgeboxes", "edgeboxes", {"mAP": 0.6543, "CorLoc": 0.25},
                                    [0.50, 0.52], (0.61, 0.33)),
            "ground_truth": _write_run(tmp_path / "ground_truth", "ground_truth", {"mAP": 0.7012, "CorLoc": 0.875},
                                       [0.55, 0.59], (1.0, 1.0))}  # fmt: skip
    baseline = [tmp_path / "b0.json", tmp_path / "b1.json"]
    for b, m in zip(baseline, [0.44, 0.46], strict=True):
        b.write_text(json.dumps({"mAP": m}))
    out = _ablation(tmp_path, runs, baseline)
    table = pd.read_csv(out["csv"], index_col="proposals", dtype=str)
    assert list(table.index) == [ABLATION_LABELS["edgeboxes"], ABLATION_LABELS["ground_truth"]]
    eb, gt = table.iloc[0], table.iloc[1]
    assert eb["run"] == "edgeboxes" and gt["run"] == "ground_truth"
    assert (eb["proposal recall@0.5 (%)"], eb["proposal recall@0.7 (%)"]) == ("61.0", "33.0")  # the test row
    assert (eb["teacher mAP (%)"], eb["teacher CorLoc (%)"]) == ("65.4", "25.0")
    assert eb["distilled student mAP (%)"] == "51.0 ± 1.4"  # mean ± sd (ddof 1) of 50 and 52
    assert (gt["proposal recall@0.5 (%)"], gt["teacher CorLoc (%)"]) == ("100.0", "87.5")
    assert gt["distilled student mAP (%)"] == "57.0 ± 2.8"
    md = out["md"].read_text()
    assert "| Ground-truth boxes (oracle; stands in for Faster R-CNN) | ground_truth | 100.0 |" in md
    assert "45.0 ± 1.4 mAP" in md  # the baseline note
    assert r"\pm" in out["tex"].read_text() and "tab:proposals" in out["tex"].read_text()


def test_a_run_made_with_another_method_is_refused(tmp_path: Path) -> None:
    runs = {"random": _write_run(tmp_path / "random", "edgeboxes", {"mAP": 0.5}, [0.4], (0.1, 0.0))}
    with pytest.raises(ValueError, match="proposals made with \\['edgeboxes'\\], not random"):
        _ablation(tmp_path, runs, [])


def test_ablation_is_opt_in_and_names_the_missing_run(tmp_path: Path) -> None:
    res = snakemake(tmp_path, [DEFAULT, TINY], "-n", "--cores", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    # The default target builds no part of Table 5 (the dry run lists every job by its rule name).
    assert "rule all" in res.stdout and "rule ablation" not in res.stdout and "table5" not in res.stdout
    res = snakemake(tmp_path, [DEFAULT, TINY], "-n", "--cores", "1", "ablation")
    assert res.returncode != 0
    err = res.stdout + res.stderr
    assert "results/tiny-proposals-selective_search/metrics/teacher.json: the selective_search row" in err
    assert f"--configfile {os.path.relpath(DEFAULT, tmp_path)} {os.path.relpath(TINY, tmp_path)} " in err
    assert "config/ablation/selective_search.yaml --config run=tiny-proposals-selective_search" in err


@pytest.mark.slow
def test_ablation_target_end_to_end(tmp_path: Path) -> None:
    """Tiny base run with random boxes, the ground-truth variant, then the table (2 runs, ~3 min on 2 cores)."""
    base = tmp_path / "ablation-base.yaml"
    base.write_text(yaml.safe_dump({"run": "tinyab", "proposals": {"method": "random", "ablation": ["ground_truth"]},
                                    "student": {"experiments": ["baseline", "kd_full"], "seeds": [0]}}))  # fmt: skip
    configs = [DEFAULT, TINY, base]
    res = snakemake(tmp_path, configs, "--cores", "2", "ablation")
    assert res.returncode != 0 and "tinyab-proposals-ground_truth/metrics/teacher.json" in res.stdout + res.stderr
    res = snakemake(tmp_path, configs, "--cores", "2")  # the base run: its own row
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    overlay = REPO / "config/ablation/ground_truth.yaml"
    res = snakemake(tmp_path, [*configs, overlay], "--cores", "2", "ablation_row", "--config",
                    "run=tinyab-proposals-ground_truth")  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    # The variant builds only its row: no baseline, no summary.
    assert not (tmp_path / "results/tinyab-proposals-ground_truth/metrics/baseline.json").exists()
    assert not (tmp_path / "results/tinyab-proposals-ground_truth/summary.md").exists()
    res = snakemake(tmp_path, configs, "--cores", "2", "ablation")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]

    results = tmp_path / "results"
    table = pd.read_csv(results / "tinyab/ablation/table5.csv", index_col="proposals", dtype=str)
    assert list(table.index) == [ABLATION_LABELS["random"], ABLATION_LABELS["ground_truth"]]
    assert list(table["run"]) == ["tinyab", "tinyab-proposals-ground_truth"]
    qc = pd.read_csv(results / "tinyab-proposals-ground_truth/proposals/qc.csv")
    assert set(qc["method"]) == {"ground_truth"} and (qc["recall_0.5"] == 1.0).all()
    assert table.iloc[1]["proposal recall@0.5 (%)"] == "100.0"
    for row, run in zip(table.itertuples(), ["tinyab", "tinyab-proposals-ground_truth"], strict=True):
        teacher = json.loads((results / run / "metrics/teacher.json").read_text())
        student = json.loads((results / run / "metrics/kd_full.json").read_text())
        assert row[3 + 1] == f"{100 * teacher['mAP']:.1f}" and row[-1] == f"{100 * student['mAP']:.1f}"
    assert (results / "tinyab/ablation/table5.tex").exists() and (results / "tinyab/ablation/table5.md").exists()
    # The variant's proposals are the annotated boxes; the base's are random ones (recall far below 1).
    assert float(pd.read_csv(results / "tinyab/proposals/qc.csv")["recall_0.7"].max()) < 0.5


def test_tools_ablation_sh_runs_each_variant_then_the_table(tmp_path: Path) -> None:
    """The script's snakemake calls, with a stand-in snakemake that records them (and writes the table)."""
    run = f"pytest-ablation-sh-{os.getpid()}"
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"run": run, "proposals": {"ablation": ["random", "ground_truth"]}}))
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "fake-snakemake"
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n'
                    'if [[ $1 == ablation ]]; then\n'
                    f'  mkdir -p results/{run}/ablation\n  echo TABLE > results/{run}/ablation/table5.md\nfi\n')
    fake.chmod(0o755)
    try:
        res = subprocess.run(["bash", str(REPO / "tools" / "ablation.sh"), "--configfile", str(DEFAULT), str(base)],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHON": sys.executable, "SNAKEMAKE": str(fake)})  # fmt: skip
    finally:
        table = REPO / "results" / run / "ablation" / "table5.md"
        if table.exists():
            table.unlink()
            table.parent.rmdir()
            table.parent.parent.rmdir()
    assert res.returncode == 0, res.stderr
    cfg = f"--configfile {DEFAULT} {base}"
    assert calls.read_text().splitlines() == [
        f"--cores all {cfg}",
        f"ablation_row --cores all {cfg} config/ablation/random.yaml --config run={run}-proposals-random",
        f"ablation_row --cores all {cfg} config/ablation/ground_truth.yaml --config run={run}-proposals-ground_truth",
        f"ablation --cores all {cfg}",
    ]
    assert res.stdout.rstrip().endswith("TABLE")
