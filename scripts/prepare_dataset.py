"""Rule prepare_dataset -> kdwsd.stages.dataset.prepare_dataset (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.dataset import prepare_dataset

run_rule(globals()["snakemake"], prepare_dataset)
