"""Results tables: ``summary.md`` (the paper's Table 3 layout), and paper-ready tables built from per-model
metric dictionaries -- CSV + LaTeX, "mean ± sd" over seeds, the paper's numbers beside the run's, paired
KD-vs-baseline differences with 95 % intervals, and the Table-5 style proposal ablation.

Every number in these tables is computed from the metric dictionaries passed in (the paper's numbers come
from :data:`PAPER` / :data:`PAPER_TABLE5`, transcribed once from ``reference/METHOD.md`` section 8).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from kdwsd.experiments import EXPERIMENTS, TEACHER_LABEL, model_name
from kdwsd.stats import bootstrap_map_ci, mean_sd, paired_difference_ci

__all__ = [
    "PAPER",
    "PAPER_TABLE5",
    "ROW_LABELS",
    "ablation_table",
    "bootstrap_table",
    "format_mean_sd",
    "group_by_experiment",
    "make_run_plots",
    "metric_summary",
    "paired_differences_table",
    "paper_dataset_key",
    "results_table",
    "write_summary",
    "write_table",
]

# Table rows in the paper's Table 3 order (baseline, teacher, distilled), then the other experiments.
ROW_LABELS = {"baseline": EXPERIMENTS["baseline"].label, "teacher": TEACHER_LABEL,
              **{name: e.label for name, e in EXPERIMENTS.items() if name != "baseline"}}  # fmt: skip
# Paper Table 3 (mAP %, VGG16, 672 / 224), keyed by experiment name.
PAPER = {"COCO": {"baseline": 70.9, "teacher": 78.6, "kd_full": 74.6},
         "NUS-WIDE": {"baseline": 55.6, "teacher": 58.2, "kd_full": 60.1}}  # fmt: skip
# Paper Table 5 (mAP %; the COCO numbers, see METHOD.md section 8), keyed by proposal source.
PAPER_TABLE5 = {"COCO": {"EdgeBoxes": {"teacher_mAP": 78.6, "student_mAP": 74.6},
                         "Faster RCNN": {"teacher_mAP": 81.1, "student_mAP": 76.3}}}  # fmt: skip


def format_mean_sd(values: Sequence[float | None], scale: float = 100.0, decimals: int = 1) -> str:
    """``"mean ± sd"`` of per-seed values times ``scale`` (sd with ``ddof=1``); one value alone, ``"–"`` for
    none (None entries are skipped)."""
    vals = [scale * float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return "–"
    mean, sd = mean_sd(vals)
    if len(vals) == 1:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def group_by_experiment(
    metric_files: Sequence[str | Path], experiments: Sequence[str], seeds: Sequence[int]
) -> dict[str, dict[int, dict[str, Any]]]:
    """``{experiment: {seed: metrics.json}}`` from ``metrics/<model>.json`` files, in the order of the paper's
    Table 3 (baseline, teacher, distilled) then the other experiments; the teacher is one "seed" 0."""
    by_stem = {Path(f).stem: json.loads(Path(f).read_text()) for f in metric_files}
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for name in ROW_LABELS:
        if name == "teacher":
            found = {0: by_stem["teacher"]} if "teacher" in by_stem else {}
        elif name in experiments:
            stems = {s: model_name(name, s, seeds[0]) for s in seeds}
            found = {s: by_stem[stem] for s, stem in stems.items() if stem in by_stem}
        else:
            continue
        if found:
            out[name] = found
    return out


def bootstrap_table(
    score_files: Sequence[str | Path], labels: np.ndarray, *, resamples: int, alpha: float, seed: int
) -> pd.DataFrame:
    """Per model (``scores/<model>.npy``): mAP and its percentile-bootstrap interval over the test images
    (:func:`kdwsd.stats.bootstrap_map_ci`), in %."""
    rows = []
    ci = f"{100 * (1 - alpha):.0f} % bootstrap CI (%)"
    for f in score_files:
        m, lo, hi = bootstrap_map_ci(np.load(f), labels, n_boot=resamples, alpha=alpha, seed=seed)
        rows.append({"model": Path(f).stem, "mAP (%)": f"{100 * m:.1f}", ci: f"[{100 * lo:.1f}, {100 * hi:.1f}]"})
    return pd.DataFrame(rows, columns=["model", "mAP (%)", ci]).set_index("model")


def _md(df: pd.DataFrame) -> list[str]:
    """A DataFrame as Markdown table lines (index as the first column)."""
    df = df.reset_index()
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return lines


def write_summary(
    *, metric_files: Sequence[str], score_files: Sequence[str], labels: np.ndarray, efficiency_file: str,
    qc_file: str, out: str, tables: Mapping[str, str], run: str, dataset: str, experiments: Sequence[str],
    seeds: Sequence[int], split: str, resamples: int, alpha: float, bootstrap_seed: int,
) -> None:  # fmt: skip
    """The run's summary: ``out`` (Markdown) and the tables as CSV + LaTeX (``tables``: ``results_csv``,
    ``results_tex``, ``differences_csv``, ``differences_tex``, ``bootstrap_csv``).

    Every number comes from the metric and score files: mean ± sd over seeds per model and metric; each
    distilled student minus each baseline, paired by seed, with a Student-t interval; each model's mAP with a
    bootstrap interval over test images; the teacher's localisation; proposals and efficiency.
    """
    metrics = group_by_experiment(metric_files, experiments, seeds)
    labels_by_exp = {**{n: e.label for n, e in EXPERIMENTS.items()}, "teacher": TEACHER_LABEL}
    k = next(iter(next(iter(metrics.values())).values())).get("top_k", 3)
    columns = ["mAP", "CF1", "OF1", f"CF1_top{k}", f"OF1_top{k}", "CP", "CR", "OP", "OR"]
    results = results_table(metrics, labels_by_exp, columns=columns, dataset=dataset)
    write_table(results, tables["results_csv"], tables["results_tex"], label=f"tab:{run}-results",
                caption=f"{run}: results on the {split} split (mean ± sd over seeds)")  # fmt: skip
    baselines = [b for b in ("baseline", "baseline_long") if b in metrics]
    distilled = [e for e in metrics if e in EXPERIMENTS and (EXPERIMENTS[e].stage1 or EXPERIMENTS[e].prediction_kd)]
    diffs = [paired_differences_table(metrics, labels_by_exp, baseline=b, compare=distilled, alpha=alpha)
             for b in baselines]  # fmt: skip
    diffs_df = pd.concat(diffs, ignore_index=True) if diffs else pd.DataFrame(columns=["model"])
    write_table(diffs_df, tables["differences_csv"], tables["differences_tex"], label=f"tab:{run}-differences",
                caption=f"{run}: mAP of the distilled students minus each baseline, paired by seed")  # fmt: skip
    boot = bootstrap_table(score_files, labels, resamples=resamples, alpha=alpha, seed=bootstrap_seed)
    boot.to_csv(tables["bootstrap_csv"])

    eff = json.loads(Path(efficiency_file).read_text())
    with open(qc_file) as f:
        qc = list(csv.DictReader(f))
    one_seed = len(seeds) == 1
    lines = [f"# Results: `{run}` (`{dataset}`, evaluated on the `{split}` split)", "",
             f"All numbers in %. Students: mean ± sd over seeds {list(seeds)}" + (" (one seed: no spread)" if one_seed
             else "") + f". Top-{k}: the {k} highest-scoring labels per image (`evaluation.top_k_mode`). Exact "
             "figures differ across machines (floating-point order): compare spreads, not digits.", ""]  # fmt: skip
    lines += [*_md(results), ""]
    if not diffs_df.empty:
        lines += ["## Distillation gain, paired by seed", "",
                  f"Each distilled student minus each baseline, seed by seed; Student-t {100 * (1 - alpha):.0f} % "
                  "interval over seeds (an interval that contains 0 is not a demonstrated gain). "
                  "`baseline_long` trains as many optimiser steps as the students that run stage 1.", ""]  # fmt: skip
        lines += [*_md(diffs_df.set_index("model")), ""]
    lines += ["## mAP with a bootstrap interval over test images", "",
              f"{resamples} resamples of the {len(labels)} test images, per model (and seed).", "", *_md(boot), ""]
    teacher = metrics.get("teacher", {}).get(0, {})
    loc = [("CorLoc, training set (IoU ≥ 0.5)", teacher.get("CorLoc")),
           (f"CorLoc, {split} set", teacher.get(f"CorLoc_{split}")),
           (f"detection mAP@0.5, {split} set (VOC07 11-point)", teacher.get("detection_mAP"))]  # fmt: skip
    loc = [(n, v) for n, v in loc if v is not None]
    if loc:
        lines += ["## Teacher localisation", "", "| measure | % |", "|---|---|"]
        lines += [*(f"| {n} | {100 * v:.1f} |" for n, v in loc), ""]
    lines += ["## Proposals", "", "| split | images | boxes/image | images/s | recall@0.5 | recall@0.7 |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for r in qc:
        rec = [f"{100 * float(r[c]):.1f}" if r.get(c) else "–" for c in ("recall_0.5", "recall_0.7")]
        lines.append(f"| {r['split']} | {r['images']} | {float(r['boxes_per_image']):.0f} | "
                     f"{float(r['images_per_s']):.1f} | {rec[0]} | {rec[1]} |")  # fmt: skip
    t, st = eff["teacher"], eff["student"]
    fmt_rate = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
    lines += ["", f"## Efficiency ({eff['device']}, {eff['threads']} threads)", "",
              "| model | input | parameters (M) | GMACs / image | images/s |", "|---|---|---|---|---|",
              f"| T-WDet | {t['input_size']}² + {t['rois_per_image']} RoIs | {t['parameters'] / 1e6:.2f} | "
              f"{t['macs_per_image'] / 1e9:.3f} | {fmt_rate(t['images_per_s_network'])} (network), "
              f"{fmt_rate(t['images_per_s_with_proposals'])} (with proposals) |",
              f"| S-Cls | {st['input_size']}² | {st['parameters'] / 1e6:.2f} | {st['macs_per_image'] / 1e9:.3f} | "
              f"{fmt_rate(st['images_per_s'])} |", ""]  # fmt: skip
    lines += ["## The paper's Table 3 (mAP, VGG16, 672 / 224)", "",
              "| Dataset | S-Cls w/o KD | T-WDet | S-Cls w/ KD |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {d} | {v['baseline']} | {v['teacher']} | {v['kd_full']} |" for d, v in PAPER.items()]
    Path(out).write_text("\n".join(lines) + "\n")


def make_run_plots(
    baseline_tables: Sequence[str], kd_tables: Sequence[str], baseline_scores: str, kd_scores: str,
    teacher_outputs: str, data_dir: str, split_name: str, curve_csvs: list[str], out_improvement: str,
    out_examples: str, out_curves: str, num_examples: int, run: str, alpha: float = 0.05,
) -> None:  # fmt: skip
    """The run's figures: ΔAP per class (kd_full − baseline, paired by seed: mean and Student-t interval over
    the seeds, classes by training frequency), examples (the first ``num_examples`` images of the split — not
    selected by outcome; the first seed's students) and training curves."""
    from kdwsd.data.dataset import load_image
    from kdwsd.data.prepared import load_split
    from kdwsd.plots import plot_examples, plot_per_class_improvement, plot_training_curves

    if len(baseline_tables) != len(kd_tables):
        raise ValueError(f"{len(baseline_tables)} baseline and {len(kd_tables)} kd_full tables: pair them by seed")
    bases = [pd.read_csv(t) for t in baseline_tables]
    deltas = np.stack([(pd.read_csv(k)["AP"] - b["AP"]).to_numpy() for b, k in zip(bases, kd_tables, strict=True)])
    n = len(deltas)
    err, err_label = None, ""
    if n > 1:
        # a class without test positives in some seed has no AP there (NaN): no interval for it
        half = np.array([paired_difference_ci(d, np.zeros(n), alpha=alpha)["high"] - d.mean()
                         if np.isfinite(d).all() else np.nan for d in deltas.T])  # fmt: skip
        err, err_label = half, f"{100 * (1 - alpha):.0f} % interval over {n} seeds (Student t)"
    plot_per_class_improvement(
        list(bases[0]["name"]), np.nanmean(deltas, axis=0), bases[0]["n_train"].to_numpy(), out_improvement,
        title=f"{run}: AP gain of S-Cls w/ KD over w/o KD" + (f" (mean of {n} seeds)" if n > 1 else ""),
        delta_err=err, err_label=err_label,
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


# ----------------------------------------------------------------------------------------------------------
# paper-ready tables from per-model metric dictionaries
# ----------------------------------------------------------------------------------------------------------
MetricsBySeed = Mapping[str, Mapping[int, Mapping[str, Any]]]  # experiment -> seed -> metrics.json dict

# readable column names of the metric keys of kdwsd.metrics (top-k keys are derived in _column_name)
METRIC_NAMES = {"mAP": "mAP", "CP": "CP", "CR": "CR", "CF1": "CF1", "OP": "OP", "OR": "OR", "OF1": "OF1",
                "CorLoc": "CorLoc", "detection_mAP": "detection mAP"}  # fmt: skip
DEFAULT_COLUMNS = ("mAP", "CF1", "OF1", "CF1_top3", "OF1_top3")


def _column_name(key: str) -> str:
    m = re.fullmatch(r"(\w+?)_top(\d+)", key)
    base, suffix = (m.group(1), f" top-{m.group(2)}") if m else (key, "")
    return f"{METRIC_NAMES.get(base, base)}{suffix} (%)"


def paper_dataset_key(dataset: str | None) -> str | None:
    """The key of :data:`PAPER` for a dataset name (``"coco"``, ``"MS-COCO"``, ``"nuswide"``, ``"NUS-WIDE"``
    ...), or None for a dataset the paper does not report (VOC, synthetic)."""
    if not dataset:
        return None
    norm = re.sub(r"[^a-z]", "", dataset.lower())
    return {"coco": "COCO", "mscoco": "COCO", "nuswide": "NUS-WIDE", "nus": "NUS-WIDE"}.get(norm)


def _values(metrics: MetricsBySeed, exp: str, key: str) -> list[float]:
    out = []
    for seed, m in sorted(metrics[exp].items()):
        v = m.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            if not isinstance(v, int | float):
                raise ValueError(f"metrics[{exp!r}][{seed}][{key!r}] is {type(v).__name__}, not a number")
            out.append(float(v))
    return out


def metric_summary(metrics: MetricsBySeed, columns: Sequence[str] = DEFAULT_COLUMNS) -> pd.DataFrame:
    """Numeric long table: one row per (experiment, metric) with ``n`` seeds, ``mean`` and ``sd`` (fractions,
    sd NaN for one seed) and the ``seeds`` it comes from -- the machine-readable twin of :func:`results_table`."""
    rows = []
    for exp in metrics:
        for key in columns:
            vals = _values(metrics, exp, key)
            mean, sd = mean_sd(vals) if vals else (math.nan, math.nan)
            seeds = [int(s) for s, m in sorted(metrics[exp].items()) if m.get(key) is not None]
            rows.append({"experiment": exp, "metric": key, "n": len(vals), "mean": mean, "sd": sd,
                         "seeds": " ".join(map(str, seeds))})  # fmt: skip
    return pd.DataFrame(rows, columns=["experiment", "metric", "n", "mean", "sd", "seeds"])


def results_table(
    metrics: MetricsBySeed,
    labels: Mapping[str, str],
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    dataset: str | None = None,
    paper_keys: Mapping[str, str] | None = None,
    decimals: int = 1,
) -> pd.DataFrame:
    """The main results table: one row per experiment, each metric as ``"mean ± sd"`` (%) over its seeds.

    Args:
        metrics: experiment name -> seed -> the ``metrics.json`` dictionary of that model (a model without
            seeds, such as the teacher, is one seed, e.g. ``{0: {...}}``).
        labels: experiment name -> row label (e.g. ``{e.name: e.label for e in registry}``); an experiment
            without a label keeps its name.
        columns: metric keys, in order.
        dataset: the run's dataset; when the paper reports it (:func:`paper_dataset_key`) a column
            ``paper mAP (%)`` holds the paper's Table 3 number of each matching row.
        paper_keys: experiment name -> key of the paper's row (``"baseline"``, ``"teacher"``, ``"kd_full"``);
            default: the experiment name itself.
        decimals: decimals of the percentages.

    Returns:
        DataFrame indexed by experiment (``experiment``) with columns ``model``, ``seeds`` (how many),
        one ``"<metric> (%)"`` column per key and, for a paper dataset, ``paper mAP (%)`` ("–" where the
        paper has no such row).
    """
    paper = PAPER.get(paper_dataset_key(dataset) or "")
    rows = []
    for exp in metrics:
        row: dict[str, Any] = {"experiment": exp, "model": labels.get(exp, exp), "seeds": len(metrics[exp])}
        for key in columns:
            row[_column_name(key)] = format_mean_sd(_values(metrics, exp, key), decimals=decimals)
            if key == "mAP" and paper is not None:
                ref = paper.get((paper_keys or {}).get(exp, exp))
                row["paper mAP (%)"] = "–" if ref is None else f"{ref:.1f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("experiment")


def paired_differences_table(
    metrics: MetricsBySeed,
    labels: Mapping[str, str],
    *,
    baseline: str = "baseline",
    compare: Sequence[str] | None = None,
    columns: Sequence[str] = ("mAP",),
    alpha: float = 0.05,
    decimals: int = 2,
) -> pd.DataFrame:
    """Differences to the baseline, paired by seed, with Student-t intervals (:func:`kdwsd.stats.
    paired_difference_ci`), in percentage points.

    Only the seeds both experiments have are paired (their count is the ``seeds`` column); an experiment
    sharing no seed with the baseline is left out. With one shared seed the interval is "–".

    Args:
        metrics: as :func:`results_table`.
        labels: experiment -> row label.
        baseline: the reference experiment.
        compare: experiments to compare (default: all others, in ``metrics`` order).
        columns: metric keys.
        alpha: 1 - confidence level.
        decimals: decimals of the point values.

    Returns:
        DataFrame with columns ``model``, ``vs``, ``metric``, ``seeds``, ``Δ mean (pp)``, ``sd (pp)`` and
        ``{1 - alpha:.0%} CI (pp)`` (``"[low, high]"``), one row per (experiment, metric).
    """
    if baseline not in metrics:
        raise ValueError(f"baseline experiment {baseline!r} not in the metrics (have {sorted(metrics)})")
    ci_col = f"{100 * (1 - alpha):.0f} % CI (pp)"
    rows = []
    for exp in compare if compare is not None else [e for e in metrics if e != baseline]:
        if exp not in metrics:
            raise ValueError(f"experiment {exp!r} not in the metrics (have {sorted(metrics)})")
        for key in columns:
            common = sorted(
                s for s in set(metrics[exp]) & set(metrics[baseline])
                if metrics[exp][s].get(key) is not None and metrics[baseline][s].get(key) is not None
            )  # fmt: skip
            if not common:
                continue
            r = paired_difference_ci([metrics[exp][s][key] for s in common],
                                     [metrics[baseline][s][key] for s in common], alpha=alpha)  # fmt: skip
            f = lambda v: "–" if math.isnan(v) else f"{100 * v:+.{decimals}f}"  # noqa: E731
            rows.append({
                "model": labels.get(exp, exp), "vs": labels.get(baseline, baseline),
                "metric": METRIC_NAMES.get(key, key), "seeds": r["n"], "Δ mean (pp)": f(r["mean"]),
                "sd (pp)": "–" if math.isnan(r["sd"]) else f"{100 * r['sd']:.{decimals}f}",
                ci_col: "–" if math.isnan(r["low"]) else f"[{f(r['low'])}, {f(r['high'])}]",
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "vs", "metric", "seeds", "Δ mean (pp)", "sd (pp)", ci_col])


ABLATION_COLUMNS = {
    "recall_0.5": "proposal recall@0.5 (%)",
    "recall_0.7": "proposal recall@0.7 (%)",
    "teacher_mAP": "teacher mAP (%)",
    "teacher_CorLoc": "teacher CorLoc (%)",
    "student_mAP": "distilled student mAP (%)",
}


def ablation_table(
    rows: Mapping[str, Mapping[str, float | Sequence[float] | None]],
    labels: Mapping[str, str] | None = None,
    *,
    dataset: str | None = None,
    decimals: int = 1,
) -> pd.DataFrame:
    """The paper's Table 5 layout: one row per proposal source, proposal recall, teacher and student numbers.

    Args:
        rows: proposal source (e.g. ``"EdgeBoxes"``) -> ``{"recall_0.5", "recall_0.7", "teacher_mAP",
            "teacher_CorLoc", "student_mAP"}``, each a fraction or a list of per-seed fractions (formatted
            "mean ± sd"); missing keys show "–".
        labels: source -> row label (default: the source name).
        dataset: the run's dataset; for COCO the paper's Table 5 teacher / student mAP are added as
            ``paper teacher mAP (%)`` / ``paper distilled student mAP (%)`` where the source matches (case-insensitive).
        decimals: decimals of the percentages.

    Returns:
        DataFrame indexed by ``proposals`` with the columns of :data:`ABLATION_COLUMNS` (+ the paper's).
    """
    paper = {k.lower(): v for k, v in PAPER_TABLE5.get(paper_dataset_key(dataset) or "", {}).items()}
    out = []
    for src, vals in rows.items():
        unknown = set(vals) - set(ABLATION_COLUMNS)
        if unknown:
            raise ValueError(f"ablation row {src!r}: unknown keys {sorted(unknown)}; use {list(ABLATION_COLUMNS)}")
        row: dict[str, Any] = {"proposals": (labels or {}).get(src, src)}
        for key, name in ABLATION_COLUMNS.items():
            v = vals.get(key)
            seq = [] if v is None else ([v] if isinstance(v, int | float) else list(v))
            row[name] = format_mean_sd(seq, decimals=decimals)
        if paper:
            ref = paper.get(src.lower(), {})
            for key in ("teacher_mAP", "student_mAP"):
                row[f"paper {ABLATION_COLUMNS[key]}"] = f"{ref[key]:.1f}" if key in ref else "–"
        out.append(row)
    return pd.DataFrame(out).set_index("proposals")


_LATEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "–": "--", "≥": r"$\geq$", "τ": r"$\tau$"}


def write_table(
    df: pd.DataFrame, csv_path: str | Path, tex_path: str | Path, *, caption: str = "", label: str = ""
) -> None:
    """Write a table as CSV (UTF-8, index included) and as a LaTeX ``table`` (booktabs rules; ``±``,
    ``Δ``, ``–`` written as LaTeX; ``%``, ``_``, ``&`` escaped) for ``\\input`` in the paper."""
    for p in (csv_path, tex_path):
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv_path)
    tex = df.to_latex(escape=True, caption=caption or None, label=label or None, position="t",
                      column_format="l" * df.index.nlevels + "".join("l" if c in ("model", "vs", "metric") else "r"
                                                                     for c in df.columns))  # fmt: skip
    for sym, rep in _LATEX_SYMBOLS.items():
        tex = tex.replace(sym, rep)
    Path(tex_path).write_text(tex)
