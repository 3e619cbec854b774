"""Rule student: baseline / kd_feature / kd_prediction / kd_full student training."""

from kdwsd.train.student import train_student
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, f"student {snakemake.wildcards.model}")
p = snakemake.params
train_student(
    p.experiment, p.cfg, int(p.seed), p.data_dir, snakemake.input.cache[0] if snakemake.input.cache else None,
    snakemake.input.stage1[0] if snakemake.input.stage1 else None, snakemake.output.model, p.checkpoints,
    snakemake.output.curve, p.norm, p.frame_size, p.device,
)  # fmt: skip
