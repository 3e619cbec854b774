"""Rule proposals -> kdwsd.stages.proposals.proposals (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.proposals import proposals

run_rule(globals()["snakemake"], proposals)
