"""Rule plots -> kdwsd.stages.report.plots (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.report import plots

run_rule(globals()["snakemake"], plots)
