"""Stages of ``workflow/rules/report.smk``: the run's figures and its summary table."""

from __future__ import annotations

from kdwsd.stages.dataset import prepared_dir

__all__ = ["plots", "summary"]


def plots(
    *, baseline_metrics: str, kd_metrics: str, baseline_scores: str, kd_scores: str, teacher_outputs: str,
    data: list[str], curves: list[str], improvement: str, examples: str, training_curves: str, split: str,
    num_examples: int, run: str,
) -> None:  # fmt: skip
    """Per-class AP gain of the distilled student over the baseline (paper Fig. 4), examples with the
    teacher's boxes and both students' labels (Fig. 1), and the training curves."""
    from kdwsd.report import make_run_plots

    make_run_plots(baseline_metrics, kd_metrics, baseline_scores, kd_scores, teacher_outputs, str(prepared_dir(data)),
                   split, curves, improvement, examples, training_curves, num_examples, run)  # fmt: skip


def summary(
    *, metrics: list[str], efficiency: str, qc: str, out: str, run: str, experiments: list[str], seeds: list[int],
    split: str,
) -> None:  # fmt: skip
    """``summary.md``: the paper's Table 3 layout plus the other experiments, proposals and efficiency."""
    from kdwsd.report import write_summary

    write_summary(metrics, efficiency, qc, out, run, list(experiments), list(seeds), split)
