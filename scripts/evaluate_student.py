"""Rule evaluate_student: calls the stage function of the same name with the rule's files, params and wildcards."""

from kdwsd.stages import run_rule
from kdwsd.stages.evaluate import evaluate_student

run_rule(globals()["snakemake"], evaluate_student)
