"""Rule download_archive -> kdwsd.stages.dataset.download_archive (arguments: the rule's named input, output, params and wildcards)."""

from kdwsd.stages import run_rule
from kdwsd.stages.dataset import download_archive

run_rule(globals()["snakemake"], download_archive)
