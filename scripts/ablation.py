"""Rule ablation: calls the stage function of the same name with the rule's files, params and wildcards."""

from kdwsd.stages import run_rule
from kdwsd.stages.report import ablation

run_rule(globals()["snakemake"], ablation)
