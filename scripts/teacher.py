"""Rule teacher -> kdwsd.stages.teacher.teacher (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.teacher import teacher

run_rule(globals()["snakemake"], teacher)
