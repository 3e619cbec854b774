"""The run summary: every number comes from the metric / score files; intervals match hand computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdwsd.experiments import model_name
from kdwsd.report import group_by_experiment, write_summary

SEEDS = [0, 1, 2]
EXPERIMENTS = ["baseline", "baseline_long", "kd_feature", "kd_prediction", "kd_full"]


def _metrics(rng: np.random.Generator) -> dict:
    keys = ["mAP", "CF1", "OF1", "CF1_top3", "OF1_top3", "CP", "CR", "OP", "OR"]
    return {**{k: float(rng.uniform(0.2, 0.9)) for k in keys}, "top_k": 3}


@pytest.fixture()
def run_files(tmp_path: Path) -> dict:
    rng = np.random.default_rng(7)
    metrics_dir, scores_dir = tmp_path / "metrics", tmp_path / "scores"
    metrics_dir.mkdir()
    scores_dir.mkdir()
    labels = (rng.random((40, 4)) < 0.4).astype(np.int64)
    labels[0] = 1  # every class has a positive
    files, scores, values = [], [], {}
    for name in ["teacher", *(model_name(e, s, SEEDS[0]) for e in EXPERIMENTS for s in SEEDS)]:
        m = _metrics(rng)
        if name == "teacher":
            m.update({"CorLoc": 0.3123, "CorLoc_test": 0.2876, "detection_mAP": 0.1934})
        values[name] = m
        (metrics_dir / f"{name}.json").write_text(json.dumps(m))
        np.save(scores_dir / f"{name}.npy", rng.random(labels.shape).astype(np.float32))
        files.append(str(metrics_dir / f"{name}.json"))
        scores.append(str(scores_dir / f"{name}.npy"))
    (tmp_path / "efficiency.json").write_text(json.dumps({
        "device": "cpu", "threads": 2,
        "teacher": {"input_size": 160, "rois_per_image": 100, "parameters": 1e6, "macs_per_image": 1e8,
                    "images_per_s_network": 50.0, "images_per_s_with_proposals": 20.0},
        "student": {"input_size": 56, "parameters": 1e6, "macs_per_image": 1e7, "images_per_s": 300.0}}))
    pd.DataFrame([{"split": "test", "images": 40, "boxes_per_image": 100, "images_per_s": 30.0,
                   "recall_0.5": 0.6, "recall_0.7": 0.4}]).to_csv(tmp_path / "qc.csv", index=False)
    tables = {k: str(tmp_path / "tables" / f"{k.rsplit('_', 1)[0]}.{k.rsplit('_', 1)[1]}")
              for k in ("results_csv", "results_tex", "differences_csv", "differences_tex", "bootstrap_csv")}
    eff = str(tmp_path / "efficiency.json")
    write_summary(metric_files=files, score_files=scores, labels=labels, efficiency_file=eff,
                  qc_file=str(tmp_path / "qc.csv"), out=str(tmp_path / "summary.md"), tables=tables, run="t",
                  dataset="synthetic", experiments=EXPERIMENTS, seeds=SEEDS, split="test", resamples=50, alpha=0.05,
                  bootstrap_seed=0)  # fmt: skip
    return {"values": values, "tables": tables, "summary": (tmp_path / "summary.md").read_text(), "files": files}


def test_every_result_cell_is_the_mean_and_sd_of_the_metric_files(run_files: dict) -> None:
    values, table = run_files["values"], pd.read_csv(run_files["tables"]["results_csv"]).set_index("experiment")
    for exp in EXPERIMENTS:
        for key, column in (("mAP", "mAP (%)"), ("OF1", "OF1 (%)"), ("CF1_top3", "CF1 top-3 (%)")):
            v = [100 * values[model_name(exp, s, 0)][key] for s in SEEDS]
            expected = f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}"
            assert table.loc[exp, column] == expected, (exp, key)
            assert expected in run_files["summary"]
    assert table.loc["teacher", "mAP (%)"] == f"{100 * values['teacher']['mAP']:.1f}"


def test_paired_difference_interval_matches_a_hand_computation(run_files: dict) -> None:
    values = run_files["values"]
    d = np.array([values[model_name("kd_full", s, 0)]["mAP"] - values[model_name("baseline_long", s, 0)]["mAP"]
                  for s in SEEDS])  # fmt: skip
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2) = 4.3027
    diffs = pd.read_csv(run_files["tables"]["differences_csv"])
    row = diffs[(diffs["model"].str.contains("stage 1 \\+ 2")) & (diffs["vs"].str.contains("equal compute"))].iloc[0]
    assert float(row["Δ mean (pp)"]) == pytest.approx(100 * d.mean(), abs=0.006)
    low, high = (float(x) for x in row["95 % CI (pp)"].strip("[]").split(","))
    assert (low, high) == pytest.approx((100 * (d.mean() - half), 100 * (d.mean() + half)), abs=0.006)
    # both baselines are compared with every distilled student, never with each other
    assert set(diffs["vs"]) == {"S-Cls w/o KD (baseline)", "S-Cls w/o KD, equal compute (baseline + stage-1 steps)"}
    assert len(diffs) == 2 * 3


def test_bootstrap_table_and_teacher_localisation_come_from_the_files(run_files: dict) -> None:
    boot = pd.read_csv(run_files["tables"]["bootstrap_csv"]).set_index("model")
    assert set(boot.index) == {Path(f).stem for f in run_files["files"]}
    for row in boot.itertuples():
        low, high = (float(x) for x in row[2].strip("[]").split(","))
        assert low <= float(row[1]) <= high
    summary = run_files["summary"]
    for value in ("31.2", "28.8", "19.3"):  # CorLoc train / test, detection mAP of the teacher metrics file
        assert f"| {value} |" in summary
    tex = Path(run_files["tables"]["results_tex"]).read_text()
    assert "\\begin{table}" in tex and "$\\pm$" in tex


def test_grouping_uses_the_registry_order_and_seed_names(run_files: dict) -> None:
    grouped = group_by_experiment(run_files["files"], EXPERIMENTS, SEEDS)
    assert list(grouped)[:3] == ["baseline", "teacher", "baseline_long"]
    assert sorted(grouped["kd_full"]) == SEEDS


def test_readme_dag_wall_time_from_benchmark_records(tmp_path: Path) -> None:
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from readme_results import dag_times

    # Two jobs in parallel (0-100 s and 20-80 s), then one after them (100-130 s): the DAG took 130 s.
    for name, end, seconds in [("a", 1100.0, 100.0), ("b", 1080.0, 60.0), ("c", 1130.0, 30.0)]:
        f = tmp_path / f"{name}.tsv"
        f.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t1\n")
        os.utime(f, (end, end))
    assert dag_times(tmp_path) == (190.0, 130.0)
    os.utime(tmp_path / "c.tsv", (5000.0, 5000.0))  # rebuilt later: the span says nothing about one DAG
    assert dag_times(tmp_path) == (190.0, None)
