"""Stages of ``workflow/rules/report.smk``: the run's figures, its summary tables and its provenance; of
``workflow/rules/ablation.smk``: the paper's Table 5 from the proposal-source variant runs."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from kdwsd.stages.dataset import prepared_dir

__all__ = ["ABLATION_LABELS", "ablation", "plots", "summary"]

log = logging.getLogger("kdwsd")

# Row labels of Table 5 per proposals.method. "EdgeBoxes" is also the paper's key (PAPER_TABLE5), so a COCO
# run shows the paper's numbers beside its own; the ground-truth oracle is not the paper's Faster R-CNN.
ABLATION_LABELS = {
    "edgeboxes": "EdgeBoxes",
    "selective_search": "Selective search (OpenCV, fast)",
    "random": "Random boxes (floor)",
    "ground_truth": "Ground-truth boxes (oracle; stands in for Faster R-CNN)",
}


def plots(
    *, baseline_metrics: list[str], kd_metrics: list[str], baseline_scores: str, kd_scores: str,
    teacher_outputs: str, data: list[str], curves: list[str], improvement: str, examples: str,
    training_curves: str, vector_figures: list[str], split: str, num_examples: int, run: str, alpha: float,
) -> None:  # fmt: skip
    """Per-class AP gain of the distilled student over the baseline, paired by seed with intervals (paper
    Fig. 4), examples with ground truth, the teacher's boxes and both students' labels (Fig. 1), and the
    training curves; each figure as PNG plus the PDF and SVG in ``vector_figures``."""
    from kdwsd.report import make_run_plots

    make_run_plots(baseline_metrics, kd_metrics, baseline_scores, kd_scores, teacher_outputs, str(prepared_dir(data)),
                   split, curves, improvement, examples, training_curves, num_examples, run, alpha)  # fmt: skip


def summary(
    *, metrics: list[str], scores: list[str], data: list[str], efficiency: str, qc: str, out: str,
    results_csv: str, results_tex: str, differences_csv: str, differences_tex: str, bootstrap_csv: str,
    provenance: str, run: str, dataset: str, experiments: list[str], seeds: list[int], split: str,
    bootstrap: dict[str, Any], config: dict[str, Any],
) -> None:  # fmt: skip
    """``summary.md`` and its tables (CSV + LaTeX): mean ± sd over seeds, the distilled students' paired
    differences to each baseline with intervals, bootstrap intervals over test images, teacher localisation,
    proposals and efficiency; plus ``provenance.json`` (the config, code version, packages and device that
    made the summary)."""
    from kdwsd.data.prepared import load_split
    from kdwsd.provenance import write_provenance
    from kdwsd.report import write_summary

    labels = load_split(prepared_dir(data), split).labels
    tables = {"results_csv": results_csv, "results_tex": results_tex, "differences_csv": differences_csv,
              "differences_tex": differences_tex, "bootstrap_csv": bootstrap_csv}  # fmt: skip
    write_summary(
        metric_files=metrics, score_files=scores, labels=labels, efficiency_file=efficiency, qc_file=qc, out=out,
        tables=tables, run=run, dataset=dataset, experiments=experiments, seeds=seeds, split=split,
        resamples=bootstrap["resamples"], alpha=bootstrap["alpha"], bootstrap_seed=bootstrap["seed"],
    )  # fmt: skip
    source = Path(__file__).resolve().parent  # the code that made it (the work dir may be elsewhere)
    write_provenance(provenance, config, repo_dir=source, inputs=[*metrics, *scores])


def ablation(
    *, teacher: list[str], students: list[str], qc: list[str], baseline: list[str], csv: str, tex: str, md: str,
    methods: list[str], runs: list[str], split: str, dataset: str,
) -> None:  # fmt: skip
    """The paper's Table 5: one row per proposal source (``methods``, the variant ``runs``), with the proposal
    recall@0.5 / 0.7 on ``split`` (from each run's ``qc.csv``), the teacher's mAP and CorLoc (train) and the
    distilled student's (kd_full) mAP, mean ± sd over the seeds; ``teacher`` and ``qc`` hold one file per
    method, ``students`` the kd_full files of every seed, method after method; ``baseline``: the base run's
    students without KD (one per seed), for the note under the table. Writes ``csv``, ``tex`` and ``md``."""
    import pandas as pd

    from kdwsd.report import ablation_table, format_mean_sd, write_table

    if not len(teacher) == len(qc) == len(methods) == len(runs) or len(students) % len(methods):
        raise ValueError(f"ablation: {len(methods)} methods, {len(teacher)} teacher files, {len(qc)} qc files and "
                         f"{len(students)} student files do not line up")  # fmt: skip
    per_method = len(students) // len(methods)
    rows: dict[str, dict[str, float | list[float] | None]] = {}
    for k, method in enumerate(methods):
        qc_table = pd.read_csv(qc[k])
        # A variant run made with another source than its name says would put a wrong number in the table.
        if "method" in qc_table and set(qc_table["method"]) != {method}:
            raise ValueError(f"{qc[k]}: proposals made with {sorted(set(qc_table['method']))}, not {method}; "
                             f"rebuild run {runs[k]} with proposals.method: {method}")  # fmt: skip
        split_rows = qc_table[qc_table["split"] == split]
        if split_rows.empty:
            raise ValueError(f"{qc[k]}: no row for split {split!r}")
        t = json.loads(Path(teacher[k]).read_text())
        rows[ABLATION_LABELS.get(method, method)] = {
            "recall_0.5": _number(split_rows["recall_0.5"].iloc[0]),
            "recall_0.7": _number(split_rows["recall_0.7"].iloc[0]),
            "teacher_mAP": t["mAP"],
            "teacher_CorLoc": t.get("CorLoc"),
            "student_mAP": [json.loads(Path(f).read_text())["mAP"]
                            for f in students[k * per_method : (k + 1) * per_method]],
        }  # fmt: skip
    table = ablation_table(rows, dataset=dataset)
    table.insert(0, "run", [Path(r).name for r in runs])
    baseline_map = format_mean_sd([json.loads(Path(f).read_text())["mAP"] for f in baseline])
    caption = (f"Proposal sources (paper Table 5) on {dataset}: proposal recall on {split}, T-WDet mAP on {split} "
               f"and CorLoc on train, S-Cls w/ KD (stage 1 + 2) mAP on {split}; S-Cls w/o KD: {baseline_map} mAP")
    write_table(table, csv, tex, caption=caption, label="tab:proposals")
    lines = [f"# Table 5: proposal sources ({dataset})", "", "| proposals | " + " | ".join(table.columns) + " |",
             "|---|" + "---|" * len(table.columns)]  # fmt: skip
    lines += [f"| {src} | " + " | ".join(str(v) for v in row) + " |" for src, row in table.iterrows()]
    lines += ["", f"S-Cls w/o KD (baseline, no proposals involved) in the base run: {baseline_map} mAP.",
              f"Recall: {split} split, proposals as stored (proposals.max_boxes). CorLoc: train split.",
              "Student: kd_full, mean ± sd over the seeds. The ground-truth row is an oracle, not the paper's",
              "Faster R-CNN proposals.", ""]  # fmt: skip
    Path(md).write_text("\n".join(lines))
    log.info("ablation table:\n%s", table.to_string())


def _number(value: object) -> float | None:
    """A CSV cell as a float, None for an empty cell (pandas reads it as NaN: a split without boxes)."""
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
