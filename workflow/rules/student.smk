# Stage 5: the student experiments (kdwsd.experiments); KD stage 1 is shared by those that use it
# (kdwsd.stages.student).

STUDENT_CODE = stage("student") + lib("train", "models", "data", "distill", "losses", "boxes", "device", "modelfile",
                                      "proposals", "experiments", "evaluate", "metrics")  # fmt: skip


rule student_stage1:
    input:
        data=dataset_files(),
        # the cached teacher fc7, or (student.stage1.teacher: live) the teacher and its proposals
        cache=[f"{RUN}/cache/train"] if STAGE1_LIVE is False else [],
        teacher=[f"{RUN}/models/teacher.pt"] if STAGE1_LIVE else [],
        proposals=proposal_shards("train") if STAGE1_LIVE else [],
        fetched=fetched_inputs("student"),
        code=STUDENT_CODE,
    output:
        model=f"{RUN}/models/student_stage1_seed{{seed}}.pt",
        curve=f"{RUN}/logs/student_stage1_seed{{seed}}.csv",
    params:
        network=network("student"),
        size=config["student"]["size"],
        distilled_rois=config["student"]["stage1"]["rois"],
        targets=config["student"]["stage1"]["teacher"],
        frame=config["teacher"]["test_size"],
        teacher_rois=config["teacher"]["rois"] if STAGE1_LIVE else None,
        feature_box_score=config["cache"]["feature_box_score"] if STAGE1_LIVE else None,
        teacher_precision=config["cache"]["precision"] if STAGE1_LIVE else "fp32",
        optim=config["student"]["stage1"]["optim"],
        precision=config["student"]["precision"],
        norm=config["input_norm"],
        device=config["device"],
        checkpoints=lambda w: f"{RUN}/checkpoints/student_stage1_seed{w.seed}",
        on_bad_image=on_bad_image("train"),
    threads: 1  # see the teacher rule
    priority: 20  # on the critical path (teacher -> cache -> stage 1 -> distilled students)
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/student_stage1_seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/student_stage1_seed{{seed}}.tsv"
    script:
        "../../scripts/student_stage1.py"


rule student:
    input:
        data=dataset_files(),
        stage1=stage1_input,
        cache=cache_input,
        fetched=fetched_inputs("student"),
        code=STUDENT_CODE,
    output:
        model=f"{RUN}/models/{{model}}.pt",
        curve=f"{RUN}/logs/{{model}}.csv",
    params:
        experiment=lambda w: experiment_of(w).name,
        seed=lambda w: parse_model_name(w.model, SEEDS[0])[1],
        network=network("student"),
        size=config["student"]["size"],
        frame=config["teacher"]["test_size"],
        tau_lr_mult=config["student"]["tau_lr_mult"],
        # Without prediction KD the loss is L_p alone: the weights do not reach (nor rerun) those students.
        loss_weights=lambda w: config["student"]["loss_weights"] if experiment_of(w).prediction_kd else None,
        optim=config["student"]["optim"],
        stage1_optim=lambda w: config["student"]["stage1"]["optim"] if experiment_of(w).equal_compute else None,
        precision=config["student"]["precision"],
        norm=config["input_norm"],
        device=config["device"],
        checkpoints=lambda w: f"{RUN}/checkpoints/{w.model}",
        val_every=config["evaluation"]["curve_every"],
        on_bad_image=on_bad_image("train"),
    # One thread: a default student job kept less than one core busy with two (25 s CPU in 31 s wall), so
    # one-thread jobs side by side finish the default's 15 students faster; see also the teacher rule.
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../envs/kdwsd.yaml"
    log:
        f"{RUN}/logs/{{model}}.log",
    benchmark:
        f"{RUN}/benchmarks/{{model}}.tsv"
    script:
        "../../scripts/student.py"
