# kdwsd: knowledge distillation from weakly-supervised detection (Liu et al., ACM MM 2018).
# `snakemake --cores all` builds everything for config/config.yaml; see README.md. This file only wires.
import os
import sys

from snakemake.utils import min_version

min_version("8.8")

# The workflow's own copy of the library (kdwsd.experiments names the students), installed or not.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))


# Each file in config/ is self-contained: the embedded default is read only when no --configfile is given
# (an overlay lists it first: --configfile config/config.yaml mine.yaml).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    split="[a-z0-9]+",
    shard="[0-9]+",
    nshards="[0-9]+",
    model=MODEL_PATTERN,
    seed="[0-9]+",


include: "workflow/rules/pretrained.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/proposals.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/cache.smk"
include: "workflow/rules/student.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/ablation.smk"  # opt-in: `snakemake ablation` (paper Table 5)


rule all:
    input:
        final_targets(),
    default_target: True


# Fail fast on a GPU that is not there, before any job starts, when the jobs run on this machine only: a
# cluster executor (a SLURM login node has no GPU; each job checks on its node), a dry run (Snakemake runs no
# onstart hook then) or a touch run is never refused.
onstart:
    from kdwsd.device import DeviceUnavailableError, preflight_device

    try:
        preflight_device(config["device"], workflow.executor_plugin.name, where="config key device")
    except DeviceUnavailableError as exc:
        raise WorkflowError(f"kdwsd: {exc}") from None
