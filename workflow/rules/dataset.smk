# Stage 1: the dataset, in the prepared layout of docs/formats.md §1 (kdwsd.stages.dataset).


if config["dataset"]["name"] == "synthetic":

    rule synthetic_dataset:
        input:
            code=stage("dataset") + lib("data", "boxes"),
        output:
            files=dataset_files(),
            images=directory(f"{DATA}/images"),
            report=f"{DATA}/report.json",
        params:
            dataset=dataset_params(),
        conda:
            "../../envs/kdwsd.yaml"
        log:
            f"{RUN}/logs/synthetic_dataset.log",
        benchmark:
            f"{RUN}/benchmarks/synthetic_dataset.tsv"
        script:
            "../../scripts/synthetic_dataset.py"

else:
    # Real datasets: one download job per archive (skipped with dataset.use_existing), then preparation.
    ARCHIVES = {} if config["dataset"]["use_existing"] else config["dataset"]["archives"]
    DATA_ROOT = config["dataset"]["root"] or f"data/{config['dataset']['name']}"

    rule download_archive:
        output:
            archive=f"{DATA_ROOT}/archives/{{filename}}",
        params:
            url=lambda w: archive_spec(w.filename)["url"],
            sha256=lambda w: archive_spec(w.filename)["sha256"],
            size=lambda w: archive_spec(w.filename)["size"],
            md5=lambda w: archive_spec(w.filename)["md5"],
            mirrors=lambda w: archive_spec(w.filename)["mirrors"],
        retries: 2
        resources:
            downloads=1,
        conda:
            "../../envs/kdwsd.yaml"
        log:
            f"{DATA_ROOT}/logs/download_{{filename}}.log",
        benchmark:
            f"{DATA_ROOT}/benchmarks/download_{{filename}}.tsv"
        script:
            "../../scripts/download_archive.py"

    rule prepare_dataset:
        input:
            archives=[archive_file(k) for k in ARCHIVES],
            code=stage("dataset") + lib("data"),
        output:
            files=dataset_files(),
            report=f"{DATA}/report.json",
        params:
            dataset=dataset_params(),
        conda:
            "../../envs/kdwsd.yaml"
        log:
            f"{RUN}/logs/prepare_dataset.log",
        benchmark:
            f"{RUN}/benchmarks/prepare_dataset.tsv"
        script:
            "../../scripts/prepare_dataset.py"
