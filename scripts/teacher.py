"""Rule teacher: train the WSDDN teacher (T-WDet) on image-level labels."""

from kdwsd.train.teacher import train_teacher
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, "teacher")
p = snakemake.params
train_teacher(p.cfg, p.data_dir, list(snakemake.input.proposals), snakemake.output.model, p.checkpoints,
              snakemake.output.curve, p.norm, p.device)  # fmt: skip
