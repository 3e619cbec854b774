# Stage 6: metrics per model (mAP, CP/CR/CF1, OP/OR/OF1, top-k), per-class tables, efficiency
# (kdwsd.stages.evaluate).

EVALUATION_CODE = lib("evaluate", "efficiency", "metrics", "models", "data", "distill", "boxes", "proposals", "device",
                      "modelfile")  # fmt: skip


rule evaluate_student:
    input:
        model=f"{RUN}/models/{{model}}.pt",
        data=dataset_files(),
        code=stage("evaluate") + EVALUATION_CODE,
    output:
        metrics=f"{RUN}/metrics/{{model}}.json",
        per_class=f"{RUN}/per_class/{{model}}.csv",
        scores=f"{RUN}/scores/{{model}}.npy",
    params:
        split=EVAL,
        frame=config["teacher"]["test_size"],
        size=config["student"]["size"],
        evaluation=config["evaluation"],
        device=config["device"],
    threads: 1  # mostly start-up and image decoding: two evaluations side by side use the cores better
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/evaluate_{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate_{{model}}.tsv"
    script:
        "../../scripts/evaluate_student.py"


rule evaluate_teacher:
    input:
        outputs=f"{RUN}/cache/teacher_{EVAL}.npz",
        cache=f"{RUN}/cache/train",
        data=dataset_files(),
        code=stage("evaluate") + EVALUATION_CODE,
    output:
        metrics=f"{RUN}/metrics/teacher.json",
        per_class=f"{RUN}/per_class/teacher.csv",
        scores=f"{RUN}/scores/teacher.npy",
    params:
        split=EVAL,
        evaluation=config["evaluation"],
        on_bad_image=on_bad_image("train"),
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/evaluate_teacher.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate_teacher.tsv"
    script:
        "../../scripts/evaluate_teacher.py"


rule efficiency:
    input:
        teacher=f"{RUN}/models/teacher.pt",
        student=f"{RUN}/models/{model_name(STUDENTS[-1], SEEDS[0], SEEDS[0])}.pt",
        qc=f"{RUN}/proposals/qc.csv",
        data=dataset_files(),
        proposals=proposal_shards(EVAL),
        code=stage("evaluate") + EVALUATION_CODE,
    output:
        out=f"{RUN}/efficiency.json",
    params:
        split=EVAL,
        frame=config["teacher"]["test_size"],
        size=config["student"]["size"],
        rois=config["teacher"]["rois"],
        norm=config["input_norm"],
        batches=config["evaluation"]["efficiency_batches"],
        precision=config["evaluation"]["efficiency_precision"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/efficiency.log",
    benchmark:
        f"{RUN}/benchmarks/efficiency.tsv"
    script:
        "../../scripts/efficiency.py"
