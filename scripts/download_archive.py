"""Rule download_archive: calls the stage function of the same name with the rule's files, params and wildcards."""

from kdwsd.stages import run_rule
from kdwsd.stages.dataset import download_archive

run_rule(globals()["snakemake"], download_archive)
