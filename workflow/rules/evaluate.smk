# Stage 6: metrics per model (mAP, CP/CR/CF1, OP/OR/OF1, top-k), per-class tables, efficiency.


rule evaluate_student:
    input:
        model=f"{RUN}/models/{{model}}.pt",
        data=dataset_files(),
        code=lib("evaluate", "metrics", "train", "models", "data", "distill", "losses", "boxes"),
    output:
        metrics=f"{RUN}/metrics/{{model}}.json",
        per_class=f"{RUN}/per_class/{{model}}.csv",
        scores=f"{RUN}/scores/{{model}}.npy",
    params:
        data_dir=data_dir_of,
        split=EVAL,
        frame_size=config["cache"]["size"],
        size=config["student"]["size"],
        cfg=config["evaluation"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/evaluate_{{model}}.log",
    script:
        "../../scripts/evaluate_student.py"


rule evaluate_teacher:
    input:
        outputs=f"{RUN}/cache/teacher_{EVAL}.npz",
        cache=f"{RUN}/cache/train",
        data=dataset_files(),
        code=lib("evaluate", "metrics", "distill", "train", "models", "data", "losses", "boxes"),
    output:
        metrics=f"{RUN}/metrics/teacher.json",
        per_class=f"{RUN}/per_class/teacher.csv",
        scores=f"{RUN}/scores/teacher.npy",
    params:
        data_dir=data_dir_of,
        split=EVAL,
        cfg=config["evaluation"],
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/evaluate_teacher.log",
    script:
        "../../scripts/evaluate_teacher.py"


rule efficiency:
    input:
        teacher=f"{RUN}/models/teacher.pt",
        student=f"{RUN}/models/{model_name(EXPERIMENTS[-1], SEEDS[0])}.pt",
        qc=f"{RUN}/proposals/qc.csv",
        data=dataset_files(),
        proposals=proposal_shards(EVAL),
        code=lib("efficiency", "models", "data", "train", "distill", "losses", "boxes", "proposals"),
    output:
        f"{RUN}/efficiency.json",
    params:
        data_dir=data_dir_of,
        split=EVAL,
        teacher_size=config["teacher"]["test_size"],
        student_size=config["student"]["size"],
        frame_size=config["cache"]["size"],
        num_rois=config["teacher"]["num_rois"],
        norm=config["input_norm"],
        batches=config["evaluation"]["efficiency_batches"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/efficiency.log",
    script:
        "../../scripts/efficiency.py"
