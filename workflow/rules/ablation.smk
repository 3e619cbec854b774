# The paper's Table 5, opt-in (`snakemake ablation`; never built by the default target): this run's proposal
# source next to the sources of proposals.ablation, each a whole run results/<run>-proposals-<method>/ made
# beforehand with config/ablation/<method>.yaml (bash tools/ablation.sh runs them all). kdwsd.stages.report.


rule ablation:
    input:
        teacher=ablation_files("teacher"),
        students=ablation_files("students"),
        qc=ablation_files("qc"),
        baseline=[f"{RUN}/metrics/{model_name('baseline', s, SEEDS[0])}.json" for s in SEEDS],
        code=stage("report") + lib("report", "plots", "experiments", "boxes", "data", "metrics", "stats"),
    output:
        csv=f"{RUN}/ablation/table5.csv",
        tex=f"{RUN}/ablation/table5.tex",
        md=report(f"{RUN}/ablation/table5.md", caption="../report/ablation.rst", category="Ablation"),
    params:
        methods=ABLATION_METHODS,
        runs=[ablation_run(m) for m in ABLATION_METHODS],
        split=EVAL,
        dataset=config["dataset"]["name"],
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/ablation.log",
    script:
        "../../scripts/ablation.py"


# One row of Table 5: what the ablation rule reads from a variant run (bash tools/ablation.sh builds only
# this for each variant, not the variant's other students).
rule ablation_row:
    input:
        **ablation_row_files(RUN),
