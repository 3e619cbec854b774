"""Stages of ``workflow/rules/report.smk``: the run's figures, its summary tables and its provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdwsd.stages.dataset import prepared_dir

__all__ = ["plots", "summary"]


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
