# Stage 7: the per-class improvement plot (paper Fig. 4), examples (Fig. 1) and the results table (Table 3)
# (kdwsd.stages.report).


rule plots:
    input:
        baseline_metrics=f"{RUN}/per_class/baseline.csv",
        kd_metrics=f"{RUN}/per_class/kd_full.csv",
        baseline_scores=f"{RUN}/scores/baseline.npy",
        kd_scores=f"{RUN}/scores/kd_full.npy",
        teacher_outputs=f"{RUN}/cache/teacher_{EVAL}.npz",
        data=dataset_files(),
        curves=[f"{RUN}/logs/teacher.csv"] + [f"{RUN}/logs/{m}.csv" for m in student_models()],
        code=stage("report") + lib("report", "plots", "experiments", "boxes", "data", "metrics", "stats"),
    output:
        improvement=report(
            f"{RUN}/plots/per_class_improvement.png",
            caption="../report/per_class_improvement.rst",
            category="Results",
        ),
        examples=report(f"{RUN}/plots/examples.png", caption="../report/examples.rst", category="Results"),
        training_curves=report(
            f"{RUN}/plots/training_curves.png", caption="../report/training_curves.rst", category="Training"
        ),
    params:
        split=EVAL,
        num_examples=config["plots"]["examples"],
        run=config["run"],
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/plots.log",
    script:
        "../../scripts/plots.py"


rule summary:
    input:
        metrics=[f"{RUN}/metrics/{m}.json" for m in ["teacher", *student_models()]],
        efficiency=f"{RUN}/efficiency.json",
        qc=f"{RUN}/proposals/qc.csv",
        code=stage("report") + lib("report", "plots", "experiments", "boxes", "data", "metrics", "stats"),
    output:
        out=report(f"{RUN}/summary.md", caption="../report/summary.rst", category="Results"),
    params:
        run=config["run"],
        experiments=STUDENTS,
        seeds=SEEDS,
        split=EVAL,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/summary.log",
    script:
        "../../scripts/summary.py"
