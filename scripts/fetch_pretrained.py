"""Rule fetch_pretrained: calls the stage function fetch_pretrained_file with the rule's files and params."""

from kdwsd.stages import run_rule
from kdwsd.stages.pretrained import fetch_pretrained_file

run_rule(globals()["snakemake"], fetch_pretrained_file)
