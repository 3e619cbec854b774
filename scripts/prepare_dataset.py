"""Rule prepare_dataset: calls the stage function of the same name with the rule's files, params and wildcards."""

from kdwsd.stages import run_rule
from kdwsd.stages.dataset import prepare_dataset

run_rule(globals()["snakemake"], prepare_dataset)
