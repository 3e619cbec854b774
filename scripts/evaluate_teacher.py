"""Rule evaluate_teacher: calls the stage function of the same name with the rule's files, params and wildcards."""

import _kdwsd_path  # noqa: F401  (first: this workflow's src/ on sys.path)

# isort: split
from kdwsd.stages import run_rule
from kdwsd.stages.evaluate import evaluate_teacher

run_rule(globals()["snakemake"], evaluate_teacher)
