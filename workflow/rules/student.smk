# Stage 5: student experiments. Stage 1 (feature KD) is shared by kd_feature and kd_full.


rule student_stage1:
    input:
        data=dataset_files(),
        cache=f"{RUN}/cache/train",
        code=lib("train", "models", "data", "distill", "losses", "boxes"),
    output:
        model=f"{RUN}/models/student_stage1_seed{{seed}}.pt",
        curve=f"{RUN}/logs/student_stage1_seed{{seed}}.csv",
    params:
        data_dir=data_dir_of,
        cfg=stage1_cfg(),
        norm=config["input_norm"],
        device=config["device"],
        checkpoints=lambda w: f"{RUN}/checkpoints/student_stage1_seed{w.seed}",
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/student_stage1_seed{{seed}}.log",
    script:
        "../../scripts/student_stage1.py"


rule student:
    input:
        data=dataset_files(),
        stage1=stage1_input,
        cache=cache_input,
        code=lib("train", "models", "data", "distill", "losses", "boxes"),
    output:
        model=f"{RUN}/models/{{model}}.pt",
        curve=f"{RUN}/logs/{{model}}.csv",
    params:
        data_dir=data_dir_of,
        cfg=stage2_cfg,
        frame_size=config["cache"]["size"],
        norm=config["input_norm"],
        device=config["device"],
        experiment=lambda w: parse_model(w.model)[0],
        seed=lambda w: parse_model(w.model)[1],
        checkpoints=lambda w: f"{RUN}/checkpoints/{w.model}",
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/{{model}}.log",
    script:
        "../../scripts/student.py"
