"""Rule student -> kdwsd.stages.student.student (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.student import student

run_rule(globals()["snakemake"], student)
