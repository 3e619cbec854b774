# Stage 2: EdgeBoxes proposals, one Snakemake job per shard (a cluster spreads them), plus a QC table
# (kdwsd.stages.proposals).


rule proposals:
    input:
        data=dataset_files(),
        fetched=fetched_inputs("proposals"),
        code=stage("proposals") + lib("proposals", "data", "boxes"),
    output:
        boxes=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.npz",
        timing=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.json",
    params:
        max_boxes=config["proposals"]["max_boxes"],
        params=proposal_params(),
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
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/proposals_qc.log",
    script:
        "../../scripts/proposals_qc.py"
