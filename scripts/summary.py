"""Rule summary: calls the stage function of the same name with the rule's files, params and wildcards."""

from kdwsd.stages import run_rule
from kdwsd.stages.report import summary

run_rule(globals()["snakemake"], summary)
