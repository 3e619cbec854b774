# Stage 3: the WSDDN teacher (T-WDet), image-level labels only.


rule teacher:
    input:
        data=dataset_files(),
        proposals=proposal_shards("train"),
        code=lib("train", "models", "data", "losses", "boxes", "proposals"),
    output:
        model=f"{RUN}/models/teacher.pt",
        curve=f"{RUN}/logs/teacher.csv",
    params:
        data_dir=data_dir_of,
        cfg=config["teacher"],
        norm=config["input_norm"],
        device=config["device"],
        checkpoints=f"{RUN}/checkpoints/teacher",
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/teacher.log",
    script:
        "../../scripts/teacher.py"
