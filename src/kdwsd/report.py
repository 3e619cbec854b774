"""Stage: ``summary.md`` — the paper's Table 3 layout (S-Cls w/o KD, T-WDet, S-Cls w/ KD) plus ablations."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

__all__ = ["ROW_LABELS", "make_run_plots", "summarise_runs", "write_summary"]

ROW_LABELS = {
    "baseline": "S-Cls w/o KD (baseline)",
    "teacher": "T-WDet (WSDDN teacher)",
    "kd_full": "S-Cls w/ KD (stage 1 + 2, the paper)",
    "kd_feature": "S-Cls, feature KD only (stage 1)",
    "kd_prediction": "S-Cls, prediction KD only (stage 2)",
}
COLUMNS = ["mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CP_top3", "CR_top3", "CF1_top3", "OP_top3",
           "OR_top3", "OF1_top3"]  # fmt: skip
PAPER = {"COCO": {"baseline": 70.9, "teacher": 78.6, "kd_full": 74.6},
         "NUS-WIDE": {"baseline": 55.6, "teacher": 58.2, "kd_full": 60.1}}  # fmt: skip


def _fmt(values: list[float]) -> str:
    vals = [100 * v for v in values if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


def summarise_runs(metrics: dict[str, dict[str, Any]], experiments: list[str], seeds: list[int]) -> dict:
    """Group per-model metrics by experiment (over seeds): ``{row: {column: [values…]}}``."""
    rows: dict[str, dict[str, list[float]]] = {}
    for name in ["baseline", "teacher", "kd_full", "kd_feature", "kd_prediction"]:
        if name == "teacher":
            models = ["teacher"]
        elif name in experiments:
            models = [name if s == seeds[0] else f"{name}_seed{s}" for s in seeds]
        else:
            continue
        found = [metrics[m] for m in models if m in metrics]
        if found:
            rows[name] = {c: [m.get(c) for m in found] for c in [*COLUMNS, "CorLoc"]}
    return rows


def write_summary(
    metric_files: list[str], efficiency_file: str, qc_file: str, out_path: str, run: str,
    experiments: list[str], seeds: list[int], split: str,
) -> None:  # fmt: skip
    """Write the Markdown summary of one run."""
    metrics = {Path(f).stem: json.loads(Path(f).read_text()) for f in metric_files}
    rows = summarise_runs(metrics, experiments, seeds)
    eff = json.loads(Path(efficiency_file).read_text())
    with open(qc_file) as f:
        qc = list(csv.DictReader(f))
    k = next(iter(metrics.values())).get("top_k", 3)
    cols = [c.replace("top3", f"top{k}") for c in COLUMNS]
    lines = [f"# Results: `{run}` (evaluated on the `{split}` split)", ""]
    seeds_note = f"mean ± sd over seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}"
    lines += [f"All numbers in %. Students: {seeds_note}. Top-{k}: the {k} highest-scoring labels per image "
              "(see `evaluation.top_k_mode`).", ""]  # fmt: skip
    lines.append("| Model | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for name, vals in rows.items():
        lines.append(f"| {ROW_LABELS[name]} | " + " | ".join(_fmt(vals[c]) for c in COLUMNS) + " |")
    lines.append("")
    if "baseline" in rows:
        base = statistics.mean(rows["baseline"]["mAP"])
        deltas = [f"{ROW_LABELS[n]}: {100 * (statistics.mean(v['mAP']) - base):+.1f}"
                  for n, v in rows.items() if n != "baseline"]  # fmt: skip
        lines += ["**mAP difference to the baseline student** (points): " + "; ".join(deltas) + ".", ""]
    if "teacher" in rows and rows["teacher"]["CorLoc"][0] is not None:
        lines += [f"**Teacher CorLoc** (training set, IoU ≥ 0.5): {100 * rows['teacher']['CorLoc'][0]:.1f}.",
                  ""]  # fmt: skip
    lines += ["## Proposals", "", "| split | images | boxes/image | images/s | recall@0.5 | recall@0.7 |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for r in qc:
        rec = [f"{100 * float(r[c]):.1f}" if r.get(c) else "–" for c in ("recall_0.5", "recall_0.7")]
        lines.append(f"| {r['split']} | {r['images']} | {float(r['boxes_per_image']):.0f} | "
                     f"{float(r['images_per_s']):.1f} | {rec[0]} | {rec[1]} |")  # fmt: skip
    t, s = eff["teacher"], eff["student"]
    fmt_rate = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
    lines += ["", f"## Efficiency ({eff['device']}, {eff['threads']} threads)", "",
              "| model | input | parameters (M) | GMACs / image | images/s |", "|---|---|---|---|---|",
              f"| T-WDet | {t['input_size']}² + {t['rois_per_image']} RoIs | {t['parameters'] / 1e6:.2f} | "
              f"{t['macs_per_image'] / 1e9:.3f} | {fmt_rate(t['images_per_s_network'])} (network), "
              f"{fmt_rate(t['images_per_s_with_proposals'])} (with proposals) |",
              f"| S-Cls | {s['input_size']}² | {s['parameters'] / 1e6:.2f} | {s['macs_per_image'] / 1e9:.3f} | "
              f"{fmt_rate(s['images_per_s'])} |", ""]  # fmt: skip
    lines += ["## The paper's Table 3 (mAP, VGG16, 672 / 224)", "", "| Dataset | S-Cls w/o KD | T-WDet | S-Cls w/ KD |",
              "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {d} | {v['baseline']} | {v['teacher']} | {v['kd_full']} |" for d, v in PAPER.items()]
    Path(out_path).write_text("\n".join(lines) + "\n")


def make_run_plots(
    baseline_table: str, kd_table: str, baseline_scores: str, kd_scores: str, teacher_outputs: str,
    data_dir: str, split_name: str, curve_csvs: list[str], out_improvement: str, out_examples: str,
    out_curves: str, num_examples: int, run: str,
) -> None:  # fmt: skip
    """The run's figures: ΔAP per class (kd_full − baseline, classes by training frequency), examples
    (the first ``num_examples`` images of the split — not selected by outcome) and training curves."""
    from kdwsd.data.dataset import load_image
    from kdwsd.data.prepared import load_split
    from kdwsd.plots import plot_examples, plot_per_class_improvement, plot_training_curves

    base, kd = pd.read_csv(baseline_table), pd.read_csv(kd_table)
    plot_per_class_improvement(
        list(base["name"]), (kd["AP"] - base["AP"]).to_numpy(), base["n_train"].to_numpy(), out_improvement,
        title=f"{run}: AP gain of S-Cls w/ KD over w/o KD",
    )  # fmt: skip
    split = load_split(data_dir, split_name)
    n = min(num_examples, len(split))
    with np.load(teacher_outputs, allow_pickle=False) as f:
        t_scores, class_boxes = f["scores"][:n], f["class_boxes"][:n]
    sb, sk = np.load(baseline_scores), np.load(kd_scores)

    def top3(scores: np.ndarray) -> list[tuple[int, float]]:
        order = np.argsort(-scores, kind="stable")[:3]
        return [(int(c), float(scores[c])) for c in order]

    images = [cv2.cvtColor(load_image(p), cv2.COLOR_BGR2RGB) for p in split.paths[:n]]
    # the teacher's boxes: the best box of each of its 3 top-scoring classes, tagged with class and score
    tags = [top3(s) for s in t_scores]
    boxes = [class_boxes[i, [k for k, _ in tags[i]]] for i in range(n)]
    truth = [set(np.flatnonzero(row).tolist()) for row in split.labels[:n]]
    preds = {"w/o KD": [top3(s) for s in sb[:n]], "w/ KD": [top3(s) for s in sk[:n]]}
    plot_examples(images, boxes, truth, preds, split.classes, out_examples, max_images=n,
                  gt_boxes=split.gt_boxes[:n] if split.has_boxes else None, teacher_box_labels=tags,
                  title=f"{run}: teacher's top-3 class boxes; top-3 labels (blue right, red wrong)")  # fmt: skip
    plot_training_curves({Path(c).stem: c for c in curve_csvs}, out_curves)
