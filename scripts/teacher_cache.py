"""Rule teacher_cache: run the frozen teacher once over the training set (both flips) and the eval split."""

from kdwsd.distill.cache import cache_teacher_outputs
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, "teacher_cache")
p = snakemake.params
cache_teacher_outputs(
    snakemake.input.teacher, p.data_dir, list(snakemake.input.train_proposals), p.eval_split,
    list(snakemake.input.eval_proposals), p.cfg, p.num_rois, p.norm, snakemake.output.cache,
    snakemake.output.evaluation, p.device,
)  # fmt: skip
