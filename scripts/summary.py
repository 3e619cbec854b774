"""Rule summary -> kdwsd.stages.report.summary (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.report import summary

run_rule(globals()["snakemake"], summary)
