"""Tests of the paper-ready tables of kdwsd.report: every number comes from the input metric dictionaries."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdwsd.report import (
    PAPER,
    PAPER_TABLE5,
    ablation_table,
    format_mean_sd,
    metric_summary,
    paired_differences_table,
    paper_dataset_key,
    results_table,
    write_table,
)
from kdwsd.stats import paired_difference_ci

COLS = ("mAP", "CF1", "OF1_top3")


def _metrics(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for exp, seeds in (("baseline", [0, 1, 2]), ("kd_full", [0, 1, 2]), ("teacher", [0]), ("kd_feature", [1, 2])):
        out[exp] = {s: {k: float(rng.uniform(0.3, 0.9)) for k in COLS} | {"AP": [0.1, 0.2]} for s in seeds}
    return out


LABELS = {"baseline": "S-Cls w/o KD", "kd_full": "S-Cls w/ KD", "teacher": "T-WDet"}


def _numbers(text: str) -> list[str]:
    return re.findall(r"[-+]?\d+\.\d+", text)


def test_results_table_numbers_come_from_metrics(tmp_path: Path) -> None:
    metrics = _metrics()
    df = results_table(metrics, LABELS, columns=COLS, dataset="MS-COCO")
    assert list(df.columns) == ["model", "seeds", "mAP (%)", "paper mAP (%)", "CF1 (%)", "OF1 top-3 (%)"]
    assert df.loc["kd_feature", "model"] == "kd_feature"  # no label given: the name
    expected = set()
    for exp, by_seed in metrics.items():
        for key, col in zip(COLS, ["mAP (%)", "CF1 (%)", "OF1 top-3 (%)"], strict=True):
            vals = 100 * np.array([by_seed[s][key] for s in sorted(by_seed)])
            text = f"{vals.mean():.1f} ± {vals.std(ddof=1):.1f}" if len(vals) > 1 else f"{vals[0]:.1f}"
            assert df.loc[exp, col] == text
            expected |= set(_numbers(text))
    assert df.loc["baseline", "paper mAP (%)"] == "70.9" and df.loc["kd_feature", "paper mAP (%)"] == "–"
    paper = {f"{v:.1f}" for v in PAPER["COCO"].values()}
    write_table(df, tmp_path / "t.csv", tmp_path / "t.tex", caption="Results", label="tab:results")
    csv_numbers = set(_numbers((tmp_path / "t.csv").read_text()))
    assert csv_numbers <= expected | paper  # nothing typed: every number is a formatted input or the paper's
    assert expected <= csv_numbers
    tex = (tmp_path / "t.tex").read_text()
    assert r"$\pm$" in tex and "mAP (\\%)" in tex and "\\label{tab:results}" in tex and "±" not in tex
    assert set(_numbers(tex)) <= expected | paper
    # no paper column for a dataset the paper does not report
    assert "paper mAP (%)" not in results_table(metrics, LABELS, columns=COLS, dataset="synthetic").columns
    assert pd.read_csv(tmp_path / "t.csv", index_col=0).loc["teacher", "seeds"] == 1


def test_paired_differences_table() -> None:
    metrics = _metrics(1)
    df = paired_differences_table(metrics, LABELS, columns=("mAP",))
    assert list(df["model"]) == ["S-Cls w/ KD", "T-WDet", "kd_feature"]
    kd = df.iloc[0]
    r = paired_difference_ci([metrics["kd_full"][s]["mAP"] for s in range(3)],
                             [metrics["baseline"][s]["mAP"] for s in range(3)])  # fmt: skip
    assert kd["seeds"] == 3 and kd["vs"] == "S-Cls w/o KD"
    assert kd["Δ mean (pp)"] == f"{100 * r['mean']:+.2f}"
    assert kd["95 % CI (pp)"] == f"[{100 * r['low']:+.2f}, {100 * r['high']:+.2f}]"
    assert df.iloc[1]["seeds"] == 1 and df.iloc[1]["95 % CI (pp)"] == "–"  # teacher: seed 0 only
    assert df.iloc[2]["seeds"] == 2  # kd_feature pairs on its seeds 1 and 2
    with pytest.raises(ValueError, match="baseline experiment 'nope'"):
        paired_differences_table(metrics, LABELS, baseline="nope")


def test_ablation_table_and_paper_rows(tmp_path: Path) -> None:
    rows = {
        "EdgeBoxes": {"recall_0.5": 0.8731, "recall_0.7": 0.5123, "teacher_mAP": 0.7345, "teacher_CorLoc": 0.4567,
                      "student_mAP": [0.7011, 0.7033, 0.6989]},
        "selective_search": {"recall_0.5": 0.9012, "teacher_mAP": 0.7111},
    }  # fmt: skip
    df = ablation_table(rows, {"selective_search": "Selective Search"}, dataset="coco")
    assert list(df.index) == ["EdgeBoxes", "Selective Search"]
    assert df.loc["EdgeBoxes", "proposal recall@0.5 (%)"] == "87.3"
    assert df.loc["EdgeBoxes", "distilled student mAP (%)"] == format_mean_sd([0.7011, 0.7033, 0.6989])
    assert df.loc["Selective Search", "teacher CorLoc (%)"] == "–"
    ref = PAPER_TABLE5["COCO"]["EdgeBoxes"]
    assert df.loc["EdgeBoxes", "paper teacher mAP (%)"] == f"{ref['teacher_mAP']:.1f}"
    assert df.loc["Selective Search", "paper distilled student mAP (%)"] == "–"
    write_table(df, tmp_path / "a.csv", tmp_path / "a.tex")
    assert "recall@0.5" in (tmp_path / "a.tex").read_text()
    with pytest.raises(ValueError, match="unknown keys"):
        ablation_table({"x": {"recall": 0.5}})


def test_metric_summary_and_helpers() -> None:
    metrics = _metrics(2)
    df = metric_summary(metrics, ("mAP",))
    row = df[df["experiment"] == "kd_feature"].iloc[0]
    vals = [metrics["kd_feature"][s]["mAP"] for s in (1, 2)]
    assert row["n"] == 2 and row["seeds"] == "1 2"
    assert row["mean"] == pytest.approx(np.mean(vals)) and row["sd"] == pytest.approx(np.std(vals, ddof=1))
    assert format_mean_sd([]) == "–" and format_mean_sd([0.1234]) == "12.3"
    assert format_mean_sd([0.5, None, 0.7]) == "60.0 ± 14.1"
    assert [paper_dataset_key(d) for d in ("coco", "MS-COCO", "nuswide", "NUS-WIDE", "voc07", None)] == [
        "COCO", "COCO", "NUS-WIDE", "NUS-WIDE", None, None,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a number"):
        results_table({"a": {0: {"mAP": "0.5"}}}, {}, columns=("mAP",))
