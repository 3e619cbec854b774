"""Rule student_stage1: calls the stage function of the same name with the rule's files, params and wildcards."""

from kdwsd.stages import run_rule
from kdwsd.stages.student import student_stage1

run_rule(globals()["snakemake"], student_stage1)
