"""Rule synthetic_dataset: render the embedded default dataset."""

from pathlib import Path

from kdwsd.data.synthetic import SyntheticConfig, generate_dataset
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
log = setup_step(snakemake, "synthetic_dataset")
generate_dataset(SyntheticConfig.from_dict(snakemake.params.dataset), Path(snakemake.output.report).parent,
                 log=log.info)  # fmt: skip
