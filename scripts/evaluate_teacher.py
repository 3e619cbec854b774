"""Rule evaluate_teacher -> kdwsd.stages.evaluate.evaluate_teacher (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.evaluate import evaluate_teacher

run_rule(globals()["snakemake"], evaluate_teacher)
