"""Rule synthetic_dataset -> kdwsd.stages.dataset.synthetic_dataset (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.dataset import synthetic_dataset

run_rule(globals()["snakemake"], synthetic_dataset)
