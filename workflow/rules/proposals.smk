# Stage 2: proposals (EdgeBoxes, or proposals.method), one Snakemake job per shard (a cluster spreads them),
# plus a QC table (kdwsd.stages.proposals).


rule proposals:
    input:
        data=dataset_files(),
        code=stage("proposals") + lib("proposals", "data", "boxes"),
    output:
        boxes=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.npz",
        timing=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.json",
    params:
        max_boxes=config["proposals"]["max_boxes"],
        method=PROPOSAL_METHOD,
        # Only the chosen method's section (named after it; EdgeBoxes' is `params`, ground truth has none,
        # kdwsd.proposals.METHOD_SECTIONS), so that editing another method's keys reruns nothing.
        params=config["proposals"].get(PROPOSAL_METHOD if PROPOSAL_METHOD != "edgeboxes" else "params", {}),
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
        method=PROPOSAL_METHOD,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/proposals_qc.log",
    script:
        "../../scripts/proposals_qc.py"
