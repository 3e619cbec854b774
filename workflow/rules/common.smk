# Target lists and paths computed from the config. No ML logic here.
import os
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

RUN = f"results/{config['run']}"
DATA = f"{RUN}/data"
EVAL = config["eval_split"]
SEEDS = config["student"]["seeds"]
EXPERIMENTS = config["student"]["experiments"]
NEEDS_STAGE1 = ("kd_feature", "kd_full")
# Relative, so that moving or copying the working tree does not change every rule's input set.
SRC = Path(os.path.relpath(Path(workflow.basedir) / "src" / "kdwsd"))


def lib(*modules):
    """Library source files that a rule depends on; editing one reruns the rule (mtime/checksum trigger)."""
    files = []
    for m in modules:
        p = SRC / m
        files += sorted(str(f) for f in p.rglob("*.py")) if p.is_dir() else [str(p) + ".py"]
    return files


def data_dir_of(wildcards, input):
    """The prepared-dataset folder, derived from the inputs (no hard-coded path prefix)."""
    return os.path.dirname(input.data[0])


def archive_file(key):
    spec = config["dataset"]["archives"][key]
    root = config["dataset"].get("root") or f"data/{config['dataset']['name']}"
    return f"{root}/archives/{spec.get('filename') or spec['url'].rsplit('/', 1)[-1]}"


def dataset_splits():
    if config["dataset"]["name"] == "synthetic":
        return list(config["dataset"]["splits"])
    return ["train", "test"]


def dataset_files():
    return [f"{DATA}/{s}.json" for s in dataset_splits()] + [f"{DATA}/classes.tsv", f"{DATA}/dataset.json"]


def archive_spec(filename):
    """The dataset.archives entry whose file name is ``filename``."""
    for spec in config["dataset"].get("archives", {}).values():
        if (spec.get("filename") or spec["url"].rsplit("/", 1)[-1]) == filename:
            return spec
    raise ValueError(f"no dataset.archives entry for file {filename}")


def proposal_splits():
    return sorted({"train", EVAL})


def proposal_shards(split):
    n = config["proposals"]["num_shards"]
    return [f"{RUN}/proposals/{split}/shard-{k}-of-{n}.npz" for k in range(n)]


def model_name(experiment, seed):
    """The first seed keeps the plain experiment name; further seeds get a suffix."""
    return experiment if seed == SEEDS[0] else f"{experiment}_seed{seed}"


def parse_model(name):
    """'kd_full_seed2' -> ('kd_full', 2); 'kd_full' -> ('kd_full', first seed)."""
    experiment, _, seed = name.partition("_seed")
    return experiment, int(seed) if seed else SEEDS[0]


def student_models():
    return [model_name(e, s) for e in EXPERIMENTS for s in SEEDS]


def stage1_input(wildcards):
    experiment, seed = parse_model(wildcards.model)
    return [f"{RUN}/models/student_stage1_seed{seed}.pt"] if experiment in NEEDS_STAGE1 else []


def cache_input(wildcards):
    experiment, _ = parse_model(wildcards.model)
    return [f"{RUN}/cache/train"] if experiment in ("kd_prediction", "kd_full") else []


def final_targets():
    models = ["teacher", *student_models()]
    targets = [f"{RUN}/metrics/{m}.json" for m in models] + [f"{RUN}/per_class/{m}.csv" for m in models]
    targets += [f"{RUN}/proposals/qc.csv", f"{RUN}/efficiency.json", f"{RUN}/summary.md"]
    if "baseline" in EXPERIMENTS and "kd_full" in EXPERIMENTS:
        targets += [f"{RUN}/plots/per_class_improvement.png", f"{RUN}/plots/examples.png"]
    return targets


STUDENT_DAG_KEYS = ("experiments", "seeds")  # shape the DAG, not a model


def stage1_cfg():
    drop = {*STUDENT_DAG_KEYS, "optim", "loss_weights", "tau_lr_mult"}  # stage 2 only
    return {k: v for k, v in config["student"].items() if k not in drop}


def stage2_cfg(wildcards):
    drop = {*STUDENT_DAG_KEYS, "stage1"}  # stage 1 reaches kd_feature / kd_full through its model file
    if parse_model(wildcards.model)[0] not in ("kd_prediction", "kd_full"):
        drop.add("loss_weights")  # without prediction KD the loss is L_p alone
    return {k: v for k, v in config["student"].items() if k not in drop}
