"""Rule summary: results/<run>/summary.md in the paper's Table 3 layout plus ablations."""

from kdwsd.report import write_summary
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, "summary")
p = snakemake.params
write_summary(list(snakemake.input.metrics), snakemake.input.efficiency, snakemake.input.qc, snakemake.output[0],
              p.run, list(p.experiments), list(p.seeds), p.split)  # fmt: skip
