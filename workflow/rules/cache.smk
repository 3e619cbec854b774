# Stage 4: run the frozen teacher once; the students read only this cache.


rule teacher_cache:
    input:
        teacher=f"{RUN}/models/teacher.pt",
        data=dataset_files(),
        train_proposals=proposal_shards("train"),
        eval_proposals=proposal_shards(EVAL),
        code=lib("distill", "models", "data", "train", "boxes"),
    output:
        cache=directory(f"{RUN}/cache/train"),
        evaluation=f"{RUN}/cache/teacher_{EVAL}.npz",
    params:
        data_dir=data_dir_of,
        eval_split=EVAL,
        cfg=config["cache"],
        num_rois=config["teacher"]["num_rois"],
        norm=config["input_norm"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/teacher_cache.log",
    script:
        "../../scripts/teacher_cache.py"
