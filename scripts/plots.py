"""Rule plots: per-class AP improvement (paper Fig. 4), examples (Fig. 1) and training curves."""

from kdwsd.report import make_run_plots
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, "plots")
i, o, p = snakemake.input, snakemake.output, snakemake.params
make_run_plots(i.baseline_metrics, i.kd_metrics, i.baseline_scores, i.kd_scores, i.teacher_outputs, p.data_dir,
               p.split, list(i.curves), o.improvement, o.examples, o.curves, p.examples, p.run)  # fmt: skip
