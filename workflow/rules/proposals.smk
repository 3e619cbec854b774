# Stage 2: proposals (EdgeBoxes, or proposals.method), one Snakemake job per shard (a cluster spreads them),
# plus a QC table (kdwsd.stages.proposals).


rule proposals:
    input:
        data=dataset_files(),
        fetched=fetched_inputs("proposals"),
        code=stage("proposals") + lib("proposals", "data", "boxes", "metrics", "plots"),
    output:
        boxes=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.npz",
        timing=f"{RUN}/proposals/{{split}}/shard-{{shard}}-of-{{nshards}}.json",
    params:
        max_boxes=config["proposals"]["max_boxes"],
        method=PROPOSAL_METHOD,
        # Only the chosen method's section (EdgeBoxes' is `params`, ground truth has none;
        # kdwsd.proposals.METHOD_SECTIONS), so that editing another method's keys reruns nothing.
        params=proposal_params(),
        on_bad_image=lambda w: on_bad_image(w.split),
    threads: config["compute"]["proposal_processes"]
    priority: 20  # the teacher waits for them
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/proposals/{{split}}-{{shard}}-of-{{nshards}}.log",
    benchmark:
        f"{RUN}/benchmarks/proposals/{{split}}-{{shard}}-of-{{nshards}}.tsv"
    script:
        "../../scripts/proposals.py"


rule proposals_qc:
    input:
        data=dataset_files(),
        shards=[s for split in proposal_splits() for s in proposal_shards(split)],
        code=stage("proposals") + lib("proposals", "data", "boxes", "metrics", "plots"),
    output:
        qc=report(f"{RUN}/proposals/qc.csv", caption="../report/proposals_qc.rst", category="Proposals"),
        recall=f"{RUN}/proposals/recall.csv",
        recall_plot=report(
            f"{RUN}/plots/proposal_recall.png", caption="../report/proposal_recall.rst", category="Proposals"
        ),
        recall_vector=[f"{RUN}/plots/proposal_recall.{e}" for e in ("pdf", "svg")],
    params:
        splits=proposal_splits(),
        max_boxes=config["proposals"]["max_boxes"],
        method=PROPOSAL_METHOD,
        on_bad_image=on_bad_image("train"),
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/proposals_qc.log",
    benchmark:
        f"{RUN}/benchmarks/proposals_qc.tsv"
    script:
        "../../scripts/proposals_qc.py"
