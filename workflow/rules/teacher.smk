# Stage 3: the WSDDN teacher (T-WDet), image-level labels only (kdwsd.stages.teacher).


rule teacher:
    input:
        data=dataset_files(),
        proposals=proposal_shards("train"),
        fetched=fetched_inputs("teacher"),
        code=stage("teacher") + lib("train", "models", "data", "losses", "boxes", "proposals", "device", "modelfile"),
    output:
        model=f"{RUN}/models/teacher.pt",
        curve=f"{RUN}/logs/teacher.csv",
    params:
        network=network("teacher"),
        rois=config["teacher"]["rois"],
        train_sizes=config["teacher"]["train_sizes"],
        flip=config["teacher"]["flip"],
        seed=config["teacher"]["seed"],
        optim=config["teacher"]["optim"],
        precision=config["teacher"]["precision"],
        norm=config["input_norm"],
        device=config["device"],
        checkpoints=f"{RUN}/checkpoints/teacher",
        frame=config["teacher"]["test_size"],
        proposal_config={"method": PROPOSAL_METHOD, "max_boxes": config["proposals"]["max_boxes"],
                         "params": proposal_params()},
        on_bad_image=on_bad_image("train"),
    # One thread, as every default job: a two-thread job waits until both cores of a laptop are free, which
    # one-thread students keep from happening (the critical path then starves). profiles/slurm sets more.
    threads: 1
    priority: 20  # on the critical path: start it before the students that do not need it
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/teacher.log",
    benchmark:
        f"{RUN}/benchmarks/teacher.tsv"
    script:
        "../../scripts/teacher.py"
