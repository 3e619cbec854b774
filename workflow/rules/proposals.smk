# Stage 2: proposals (EdgeBoxes, or proposals.method), one Snakemake job per shard (a cluster spreads them),
# plus a QC table (kdwsd.stages.proposals).


def proposal_method_params():
    """The chosen method's parameter section only, so that editing another method's keys reruns nothing. The
    section is named after the method, EdgeBoxes' is `params` (kdwsd.proposals.METHOD_SECTIONS; not imported
    here: that costs a second of OpenCV import on every DAG build); ground_truth has none."""
    method = config["proposals"]["method"]
    return config["proposals"].get("params" if method == "edgeboxes" else method, {})


rule proposals:
    input:
        data=dataset_files(),
        code=stage("proposals") + lib("proposals", "data", "boxes"),
    output:
        boxes=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.npz",
        timing=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.json",
    params:
        max_boxes=config["proposals"]["max_boxes"],
        method=config["proposals"]["method"],
        params=proposal_method_params(),
    threads: config["compute"]["proposal_processes"]
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/proposals/{{split}}-{{shard}}-of-{{nshards}}.log",
    script:
        "../../scripts/proposals.py"


rule proposals_qc:
    input:
        data=dataset_files(),
        shards=[s for split in proposal_splits() for s in proposal_shards(split)],
        code=stage("proposals") + lib("proposals", "data", "boxes"),
    output:
        qc=report(f"{RUN}/proposals/qc.csv", caption="../report/proposals_qc.rst", category="Proposals"),
    params:
        splits=proposal_splits(),
        method=config["proposals"]["method"],
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/proposals_qc.log",
    script:
        "../../scripts/proposals_qc.py"
