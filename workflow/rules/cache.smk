# Stage 4: run the frozen teacher once; the students read only this cache (kdwsd.stages.cache).


rule teacher_cache:
    input:
        teacher=f"{RUN}/models/teacher.pt",
        data=dataset_files(),
        train_proposals=proposal_shards("train"),
        eval_proposals=proposal_shards(EVAL),
        code=stage("cache") + lib("distill", "models", "data", "boxes", "proposals", "device", "modelfile",
                                  "metrics"),
    output:
        cache=directory(f"{RUN}/cache/train"),
        evaluation=f"{RUN}/cache/teacher_{EVAL}.npz",
    params:
        eval_split=EVAL,
        frame=config["teacher"]["test_size"],
        rois=config["teacher"]["rois"],
        cached_rois=config["cache"]["rois"],
        temperature=config["cache"]["temperature"],
        objectness=config["cache"]["objectness"],
        feature_box_score=config["cache"]["feature_box_score"],
        precision=config["cache"]["precision"],
        norm=config["input_norm"],
        device=config["device"],
        on_bad_image=on_bad_image("train"),
    threads: 1  # see the teacher rule
    priority: 20  # on the critical path (teacher -> cache -> stage 1 -> distilled students)
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/teacher_cache.log",
    benchmark:
        f"{RUN}/benchmarks/teacher_cache.tsv"
    script:
        "../../scripts/teacher_cache.py"
