"""Rule evaluate_student: score a student on the evaluation split; metrics, per-class table, scores."""

from kdwsd.data.prepared import load_split
from kdwsd.evaluate import evaluate_scores, predict_student, write_evaluation
from kdwsd.train.loop import load_model_file
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
setup_step(snakemake, f"evaluate {snakemake.wildcards.model}")
p = snakemake.params
split = load_split(p.data_dir, p.split)
norm = load_model_file(snakemake.input.model)["norm"]
scores = predict_student(snakemake.input.model, split, norm, p.frame_size, p.size, p.device)
metrics, table = evaluate_scores(scores, split, load_split(p.data_dir, "train").labels, p.cfg)
write_evaluation(metrics, table, scores, snakemake.output.metrics, snakemake.output.per_class,
                 snakemake.output.scores)  # fmt: skip
