# Config validation, target lists and paths computed from the config. No ML logic here.
import os
import re
from pathlib import Path

from snakemake.utils import validate

from kdwsd.configcheck import check_known_keys
from kdwsd.experiments import EXPERIMENTS, model_name, parse_model_name
from kdwsd.stages.dataset import SKIPPABLE_SPLITS


# Unknown keys first, named with the allowed ones; then the schema rejects bad values and fills every default
# (the schema owns types, defaults, meanings).
check_known_keys(config, os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"))
validate(config, schema="../schemas/config.schema.yaml", set_default=True)

RUN = f"results/{config['run']}"
DATA = f"{RUN}/data"
EVAL = config["eval_split"]
SEEDS = config["student"]["seeds"]
STUDENTS = config["student"]["experiments"]
MODEL_PATTERN = f"({'|'.join(EXPERIMENTS)})(_seed[0-9]+)?"
STAGE1_LIVE = config["student"]["stage1"]["teacher"] == "live"
FIGURES = ("per_class_improvement", "examples", "training_curves")
PROPOSAL_METHOD = config["proposals"]["method"]
# Relative, so that moving or copying the working tree does not change every rule's input set.
SRC = Path(os.path.relpath(Path(workflow.basedir) / "src" / "kdwsd"))


def lib(*modules):
    """Library source files that a rule depends on; editing one reruns the rule (mtime/checksum trigger)."""
    files = []
    for m in modules:
        p = SRC / m
        files += sorted(str(f) for f in p.rglob("*.py")) if p.is_dir() else [str(p) + ".py"]
    return files


def stage(module):
    """The stage module of a rule (kdwsd/stages/<module>.py), the runner every script goes through, and the
    error type every stage raises."""
    return lib("stages/__init__", "stages/runner", "stages/dataset", f"stages/{module}", "errors")


def dataset_params():
    """The dataset section for the rules that make the dataset: without on_bad_image, which only the rules
    that read images use (toggling it must not regenerate the dataset)."""
    return {k: v for k, v in config["dataset"].items() if k != "on_bad_image"}


def on_bad_image(split):
    """dataset.on_bad_image for a rule reading ``split``; the evaluation split is never thinned."""
    return config["dataset"]["on_bad_image"] if split in SKIPPABLE_SPLITS else "error"


def archive_file(key):
    spec = config["dataset"]["archives"][key]
    root = config["dataset"]["root"] or f"data/{config['dataset']['name']}"
    return f"{root}/archives/{spec['filename'] or spec['url'].rsplit('/', 1)[-1]}"


def dataset_splits():
    if config["dataset"]["name"] == "synthetic":
        return list(config["dataset"]["splits"])
    return ["train", "test"]


def dataset_files():
    return [f"{DATA}/{s}.json" for s in dataset_splits()] + [f"{DATA}/classes.tsv", f"{DATA}/dataset.json"]


def archive_spec(filename):
    """The dataset.archives entry whose file name is ``filename``."""
    for spec in config["dataset"]["archives"].values():
        if (spec["filename"] or spec["url"].rsplit("/", 1)[-1]) == filename:
            return spec
    raise ValueError(f"no dataset.archives entry for file {filename}")


def proposal_splits():
    return sorted({"train", EVAL})


def proposal_shards(split):
    n = config["proposals"]["num_shards"]
    return [f"{RUN}/proposals/{split}/shard-{k}-of-{n}.npz" for k in range(n)]


def student_models():
    return [model_name(e, s, SEEDS[0]) for e in STUDENTS for s in SEEDS]


def experiment_of(wildcards):
    return parse_model_name(wildcards.model, SEEDS[0])[0]


def stage1_input(wildcards):
    exp, seed = parse_model_name(wildcards.model, SEEDS[0])
    return [f"{RUN}/models/student_stage1_seed{seed}.pt"] if exp.stage1 else []


def cache_input(wildcards):
    return [f"{RUN}/cache/train"] if experiment_of(wildcards).prediction_kd else []


def final_targets():
    models = ["teacher", *student_models()]
    # Model files are targets too, the shared stage-1 students included, so that a missing one is rebuilt even
    # when everything made from it is up to date (Snakemake does not rebuild a missing intermediate file then).
    stage1 = [f"student_stage1_seed{s}" for s in SEEDS if any(EXPERIMENTS[e].stage1 for e in STUDENTS)]
    targets = [f"{RUN}/models/{m}.pt" for m in models + stage1]
    targets += [f"{RUN}/metrics/{m}.json" for m in models] + [f"{RUN}/per_class/{m}.csv" for m in models]
    targets += [f"{RUN}/proposals/qc.csv", f"{RUN}/efficiency.json", f"{RUN}/summary.md", f"{RUN}/provenance.json"]
    if "baseline" in STUDENTS and "kd_full" in STUDENTS:
        targets += [f"{RUN}/plots/per_class_improvement.png", f"{RUN}/plots/examples.png"]
    return targets


# Pretrained files fetched by the local rule fetch_pretrained (workflow/rules/pretrained.smk).
DOWNLOADS = config["downloads"]


def fetched_file(key):
    """Path of the downloads.files entry ``key`` (vgg16 | structured_edges), or None when not configured."""
    spec = DOWNLOADS["files"].get(key)
    return None if spec is None else f"{DOWNLOADS['dir']}/{spec['filename'] or spec['url'].rsplit('/', 1)[-1]}"


def fetched_spec(filename):
    """The downloads.files entry whose file name is ``filename``."""
    for key in DOWNLOADS["files"]:
        if fetched_file(key) == f"{DOWNLOADS['dir']}/{filename}":
            return DOWNLOADS["files"][key]
    raise ValueError(f"no downloads.files entry for file {filename}")


def pretrained_weights(section):
    """What builds the teacher / student backbone: `imagenet` means the fetched VGG16 file when there is one."""
    value = config[section]["pretrained"]
    if value == "imagenet" and config[section]["backbone"] == "vgg16" and fetched_file("vgg16"):
        return fetched_file("vgg16")
    return value


def proposal_params():
    """The parameters of the chosen proposal method (its config section: EdgeBoxes' is `params`, ground truth
    has none), with EdgeBoxes' structured_model resolved to the fetched structured-edge model where it applies."""
    if PROPOSAL_METHOD != "edgeboxes":
        return dict(config["proposals"].get(PROPOSAL_METHOD, {}))
    params = dict(config["proposals"]["params"])
    model = fetched_file("structured_edges")
    if params["structured_model"] is None and params["edge_method"] != "gradient" and model:
        params["structured_model"] = model
    return params


def fetched_inputs(*sections):
    """The pretrained files a job reads (fetched before it starts, so that no compute job downloads): the
    weights of the named network sections and, with "proposals", the structured-edge model."""
    files = [pretrained_weights(s) for s in sections if s != "proposals"]
    if "proposals" in sections:
        files.append(proposal_params().get("structured_model"))  # EdgeBoxes only
    return sorted({f for f in files if f not in (None, "none", "imagenet")})


NETWORK_KEYS = ("backbone", "widths", "pretrained", "roi_size", "roi_op", "hidden", "dropout", "box_score")


def network(section):
    """The architecture keys of the teacher / student (what builds the network; no schedule, no DAG keys)."""
    keys = NETWORK_KEYS + (("tau_init",) if section == "student" else ())
    return {k: pretrained_weights(section) if k == "pretrained" else config[section][k] for k in keys}


# The paper's Table 5 (workflow/rules/ablation.smk): this run's proposal source next to proposals.ablation.
ABLATION_BASE = PROPOSAL_METHOD
ABLATION_METHODS = [ABLATION_BASE] + [m for m in config["proposals"]["ablation"] if m != ABLATION_BASE]


def ablation_run(method):
    """The run directory of a Table 5 row: this run for its own source, a variant run for the others."""
    return RUN if method == ABLATION_BASE else f"{RUN}-proposals-{method}"


def ablation_configfiles():
    return " ".join(os.path.relpath(f) for f in workflow.overwrite_configfiles) or "config/config.yaml"


def ablation_command(method):
    """The command that builds the variant run of ``method`` on top of this run's config files."""
    import yaml

    overlay = f"config/ablation/{method}.yaml"
    cmd = f"snakemake ablation_row --cores all --configfile {ablation_configfiles()} {overlay}"
    variant = Path(ablation_run(method)).name
    # The overlays name the default's variants; another base run needs its own name.
    if not Path(overlay).exists() or yaml.safe_load(Path(overlay).read_text()).get("run") != variant:
        cmd += f" --config run={variant}"
    return cmd


def ablation_row_files(run):
    """What one row of Table 5 reads from the run folder ``run``, by kind: the teacher's metrics, the distilled
    (kd_full) students' of every seed, the proposal QC."""
    return {"teacher": [f"{run}/metrics/teacher.json"],
            "students": [f"{run}/metrics/{model_name('kd_full', s, SEEDS[0])}.json" for s in SEEDS],
            "qc": [f"{run}/proposals/qc.csv"]}  # fmt: skip


def ablation_files(kind):
    """Input function: this run's and the variant runs' files of ``kind`` (teacher | students | qc), in
    ABLATION_METHODS order. A missing variant file is an error naming the command that builds it (no rule of
    this run can: each variant is its own run)."""

    def files(wildcards):
        if "kd_full" not in STUDENTS:
            raise ValueError("student.experiments: kd_full is missing; Table 5 compares the distilled students")
        out = []
        for method in ABLATION_METHODS:
            paths = ablation_row_files(ablation_run(method))[kind]
            missing = [p for p in paths if method != ABLATION_BASE and not os.path.exists(p)]
            if missing:
                raise ValueError(f"{missing[0]}: the {method} row of Table 5 has no run yet. Build it with "
                                 f"`{ablation_command(method)}` (or `bash tools/ablation.sh --configfile {ablation_configfiles()}`), then rerun the target")  # fmt: skip
            out += paths
        return out

    return files
