"""Rule evaluate_student -> kdwsd.stages.evaluate.evaluate_student (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.evaluate import evaluate_student

run_rule(globals()["snakemake"], evaluate_student)
