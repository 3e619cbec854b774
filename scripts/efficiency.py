"""Rule efficiency: parameters, MACs and measured images/s of the teacher (with proposals) and student."""

import json

from kdwsd.efficiency import measure_efficiency
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
log = setup_step(snakemake, "efficiency")
p = snakemake.params
result = measure_efficiency(
    snakemake.input.teacher, snakemake.input.student, snakemake.input.qc, p.data_dir, p.split,
    list(snakemake.input.proposals), p.teacher_size, p.student_size, p.frame_size, p.num_rois, p.norm,
    p.batches, device=p.device,
)  # fmt: skip
log.info("efficiency: %s", result)
with open(snakemake.output[0], "w") as f:
    json.dump(result, f, indent=2)
