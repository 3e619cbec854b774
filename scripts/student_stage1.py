"""Rule student_stage1 -> kdwsd.stages.student.student_stage1 (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.student import student_stage1

run_rule(globals()["snakemake"], student_stage1)
