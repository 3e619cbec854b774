# kdwsd: knowledge distillation from weakly-supervised detection (Liu et al., ACM MM 2018).
# `snakemake --cores all` builds everything for config/config.yaml; see README.md. This file only wires.
import os

from snakemake.utils import min_version

min_version("8.8")


# The embedded default, found next to this file even when run with --directory elsewhere; a --configfile
# given on the command line is merged over it.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


wildcard_constraints:
    split="[a-z0-9]+",
    shard="[0-9]+",
    nshards="[0-9]+",
    model="(baseline|kd_feature|kd_prediction|kd_full)(_seed[0-9]+)?",
    seed="[0-9]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/proposals.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/cache.smk"
include: "workflow/rules/student.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_targets(),
    default_target: True
