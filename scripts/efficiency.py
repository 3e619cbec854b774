"""Rule efficiency -> kdwsd.stages.evaluate.efficiency (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.evaluate import efficiency

run_rule(globals()["snakemake"], efficiency)
