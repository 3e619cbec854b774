# Stage 7: the per-class improvement plot (paper Fig. 4), examples (Fig. 1), training curves, the results
# tables (Table 3 with intervals) and the run's provenance (kdwsd.stages.report).


rule plots:
    input:
        baseline_metrics=[f"{RUN}/per_class/{model_name('baseline', s, SEEDS[0])}.csv" for s in SEEDS],
        kd_metrics=[f"{RUN}/per_class/{model_name('kd_full', s, SEEDS[0])}.csv" for s in SEEDS],
        baseline_scores=f"{RUN}/scores/baseline.npy",
        kd_scores=f"{RUN}/scores/kd_full.npy",
        teacher_outputs=f"{RUN}/cache/teacher_{EVAL}.npz",
        data=dataset_files(),
        curves=[f"{RUN}/logs/teacher.csv"]
        + [f"{RUN}/logs/student_stage1_seed{s}.csv" for s in SEEDS if any(EXPERIMENTS[e].stage1 for e in STUDENTS)]
        + [f"{RUN}/logs/{m}.csv" for m in student_models()],
        code=stage("report") + lib("report", "plots", "experiments", "boxes", "data", "metrics", "stats",
                                   "provenance"),
    output:
        improvement=report(
            f"{RUN}/plots/per_class_improvement.png",
            caption="../report/per_class_improvement.rst",
            category="Figures",
        ),
        examples=report(f"{RUN}/plots/examples.png", caption="../report/examples.rst", category="Figures"),
        training_curves=report(
            f"{RUN}/plots/training_curves.png", caption="../report/training_curves.rst", category="Training"
        ),
        vector_figures=[f"{RUN}/plots/{n}.{e}" for n in FIGURES for e in ("pdf", "svg")],
    params:
        split=EVAL,
        num_examples=config["plots"]["examples"],
        run=config["run"],
        alpha=config["evaluation"]["bootstrap"]["alpha"],
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/plots.log",
    benchmark:
        f"{RUN}/benchmarks/plots.tsv"
    script:
        "../../scripts/plots.py"


rule summary:
    input:
        metrics=[f"{RUN}/metrics/{m}.json" for m in ["teacher", *student_models()]],
        scores=[f"{RUN}/scores/{m}.npy" for m in ["teacher", *student_models()]],
        data=dataset_files(),
        efficiency=f"{RUN}/efficiency.json",
        qc=f"{RUN}/proposals/qc.csv",
        code=stage("report") + lib("report", "plots", "experiments", "boxes", "data", "metrics", "stats",
                                   "provenance"),
    output:
        out=report(f"{RUN}/summary.md", caption="../report/summary.rst", category="Results"),
        results_csv=report(f"{RUN}/tables/results.csv", caption="../report/results_table.rst", category="Results"),
        results_tex=f"{RUN}/tables/results.tex",
        differences_csv=report(
            f"{RUN}/tables/differences.csv", caption="../report/differences_table.rst", category="Results"
        ),
        differences_tex=f"{RUN}/tables/differences.tex",
        bootstrap_csv=report(
            f"{RUN}/tables/bootstrap.csv", caption="../report/bootstrap_table.rst", category="Results"
        ),
        provenance=report(f"{RUN}/provenance.json", caption="../report/provenance.rst", category="Provenance"),
    params:
        run=config["run"],
        dataset=config["dataset"]["name"],
        experiments=STUDENTS,
        seeds=SEEDS,
        split=EVAL,
        bootstrap=config["evaluation"]["bootstrap"],
        # the merged config of the run, for provenance.json (speed knobs left out: they change no result)
        config={k: v for k, v in config.items() if k != "compute"},
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/summary.log",
    benchmark:
        f"{RUN}/benchmarks/summary.tsv"
    script:
        "../../scripts/summary.py"
