"""Rule student_stage1: feature-level distillation of the teacher's RoI fc7 features (paper Eq. 3)."""

from kdwsd.train.student import train_stage1
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, "student_stage1")
p = snakemake.params
train_stage1(p.cfg, int(snakemake.wildcards.seed), p.data_dir, snakemake.input.cache, snakemake.output.model,
             p.checkpoints, snakemake.output.curve, p.norm, p.device)  # fmt: skip
