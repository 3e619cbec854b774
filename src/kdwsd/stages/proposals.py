"""Stages of ``workflow/rules/proposals.smk``: EdgeBoxes per shard, and the proposals' quality table."""

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
    params: dict[str, Any], on_bad_image: str = "error", proposal_processes: int = 1,
) -> None:  # fmt: skip
    """EdgeBoxes (``params``: :func:`kdwsd.proposals.edge_boxes`) for the images ``i`` of ``split`` with
    ``i % nshards == shard``; writes the shard file ``boxes`` (docs/formats.md §2) and its ``timing``."""
    from kdwsd.data.prepared import load_split
    from kdwsd.proposals import compute_proposals, shard_indices, write_shard

    rows = shard_indices(len(load_split(prepared_dir(data), split)), int(shard), int(nshards))
    shard_data = checked_split(data, split, on_bad_image, boxes, rows=list(rows))
    run = compute_proposals(list(shard_data.paths), max_boxes, proposal_processes, params)
    write_shard(boxes, shard_data.image_ids, [b for b, _ in run.proposals], [s for _, s in run.proposals])
    result = {"images": len(shard_data), "seconds": run.seconds, "processes": run.processes,
              "images_per_s_per_process": run.images_per_s / run.processes}  # fmt: skip
    log.info("proposals: %s", result)
    Path(timing).write_text(json.dumps(result, indent=2))


def proposals_qc(
    *, data: list[str], shards: list[str], qc: str, splits: list[str], on_bad_image: str = "error"
) -> None:
    """Boxes per image, images/s and recall at IoU 0.5 / 0.7 per split -> ``qc.csv``."""
    from kdwsd.proposals import ProposalStore, qc_row

    rows = []
    for split_name in splits:
        split_shards = [s for s in shards if Path(s).parent.name == split_name]
        timings = [json.loads(Path(s).with_suffix(".json").read_text()) for s in split_shards]
        images_per_s = sum(t["images"] for t in timings) / sum(t["seconds"] * t["processes"] for t in timings)
        split = checked_split(data, split_name, on_bad_image, qc)
        store = ProposalStore(split_shards)
        boxes = [store.get(int(i))[0] for i in split.image_ids]
        gt = None
        if split.has_boxes:
            gt = [np.array([b for _, b in boxes_i]).reshape(-1, 4) for boxes_i in split.gt_boxes]
        rows.append(qc_row(split_name, boxes, images_per_s, gt))
        log.info("proposals qc: %s", rows[-1])
    pd.DataFrame(rows).to_csv(qc, index=False)
