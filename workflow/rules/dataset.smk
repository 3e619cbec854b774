# Stage 1: the dataset, in the prepared layout of docs/formats.md §1.


if config["dataset"]["name"] == "synthetic":

    rule synthetic_dataset:
        input:
            code=lib("data"),
        output:
            files=dataset_files(),
            images=directory(f"{DATA}/images"),
            report=f"{DATA}/report.json",
        params:
            dataset=config["dataset"],
        conda:
            "../../envs/kdwsd.yaml"
        log:
            f"{RUN}/logs/synthetic_dataset.log",
        script:
            "../../scripts/synthetic_dataset.py"
