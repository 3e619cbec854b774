"""Stages of ``workflow/rules/proposals.smk``: proposals per shard (EdgeBoxes by default, ``proposals.method``),
and the proposals' quality table."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdwsd.stages.dataset import checked_split, prepared_dir

__all__ = ["proposals", "proposals_qc"]

log = logging.getLogger("kdwsd")


def proposals(
    *, data: list[str], boxes: str, timing: str, split: str, shard: str, nshards: str, max_boxes: int,
    params: dict[str, Any], method: str = "edgeboxes", on_bad_image: str = "error", proposal_processes: int = 1,
) -> None:  # fmt: skip
    """Proposals of ``method`` (:func:`kdwsd.proposals.propose`; ``params``: that method's config section) for
    the images ``i`` of ``split`` with ``i % nshards == shard``; writes the shard file ``boxes``
    (docs/formats.md §2) and its ``timing``."""
    from kdwsd.data.prepared import load_split
    from kdwsd.proposals import propose, shard_indices, write_shard

    rows = shard_indices(len(load_split(prepared_dir(data), split)), int(shard), int(nshards))
    shard_data = checked_split(data, split, on_bad_image, boxes, rows=list(rows))
    run = propose(method, shard_data, range(len(shard_data)), max_boxes, proposal_processes, params)
    write_shard(boxes, shard_data.image_ids, [b for b, _ in run.proposals], [s for _, s in run.proposals])
    result = {"method": method, "images": len(shard_data), "seconds": run.seconds, "processes": run.processes,
              "images_per_s_per_process": run.images_per_s / run.processes}  # fmt: skip
    log.info("proposals: %s", result)
    Path(timing).write_text(json.dumps(result, indent=2))


def proposals_qc(
    *, data: list[str], shards: list[str], qc: str, recall: str, recall_plot: str, recall_vector: list[str],
    splits: list[str], max_boxes: int, method: str = "edgeboxes", on_bad_image: str = "error",
) -> None:  # fmt: skip
    """Boxes per image, images/s and recall at IoU 0.5 / 0.7 per split -> ``qc.csv`` (with a ``method``
    column: the proposal source, read by the Table 5 ablation); recall as a function of the number of boxes
    kept per image (IoU 0.5 and 0.7, splits with boxes) -> ``recall`` (CSV) and its plot (``recall_plot`` PNG
    plus the PDF / SVG of ``recall_vector``)."""
    from kdwsd.metrics import recall_at_n
    from kdwsd.plots import plot_recall_vs_boxes
    from kdwsd.proposals import ProposalStore, qc_row

    ns = sorted({n for n in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000) if n < max_boxes} | {max_boxes})
    curves = []
    rows = []
    for split_name in splits:
        split_shards = [s for s in shards if Path(s).parent.name == split_name]
        timings = [json.loads(Path(s).with_suffix(".json").read_text()) for s in split_shards]
        busy = sum(t["seconds"] * t["processes"] for t in timings)
        # Random / ground-truth boxes take ~no time: no rate rather than a division by zero.
        images_per_s = sum(t["images"] for t in timings) / busy if busy > 0 else float("nan")
        split = checked_split(data, split_name, on_bad_image, qc)
        store = ProposalStore(split_shards)
        boxes = [store.get(int(i))[0] for i in split.image_ids]
        gt = None
        if split.has_boxes:
            gt = [np.array([b for _, b in boxes_i]).reshape(-1, 4) for boxes_i in split.gt_boxes]
        rows.append({"method": method, **qc_row(split_name, boxes, images_per_s, gt)})
        log.info("proposals qc: %s", rows[-1])
        if gt is not None:
            curves.append(recall_at_n(boxes, gt, ns=ns).assign(split=split_name))
    pd.DataFrame(rows).to_csv(qc, index=False)
    table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=["iou", "n", "recall", "split"])
    table.to_csv(recall, index=False)
    plot_recall_vs_boxes(table.rename(columns={"split": "source"}), recall_plot,
                         title="Proposal recall vs boxes per image" + ("" if curves else " (no boxes in this dataset)"))
