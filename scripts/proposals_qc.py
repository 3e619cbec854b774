"""Rule proposals_qc -> kdwsd.stages.proposals.proposals_qc (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.proposals import proposals_qc

run_rule(globals()["snakemake"], proposals_qc)
