"""Rule teacher_cache -> kdwsd.stages.cache.teacher_cache (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.cache import teacher_cache

run_rule(globals()["snakemake"], teacher_cache)
