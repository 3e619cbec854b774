"""Rule evaluate_teacher: teacher metrics from its cached evaluation outputs, plus CorLoc."""

from kdwsd.evaluate import evaluate_teacher, write_evaluation
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, "evaluate teacher")
p = snakemake.params
metrics, table, scores = evaluate_teacher(snakemake.input.outputs, snakemake.input.cache, p.data_dir, p.split,
                                          p.cfg)  # fmt: skip
write_evaluation(metrics, table, scores, snakemake.output.metrics, snakemake.output.per_class,
                 snakemake.output.scores)  # fmt: skip
