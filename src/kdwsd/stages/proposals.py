"""Stages of ``workflow/rules/proposals.smk``: proposals per shard (EdgeBoxes by default, ``proposals.method``),
and the proposals' quality table."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdwsd.stages.dataset import prepared_dir

__all__ = ["proposals", "proposals_qc"]

log = logging.getLogger("kdwsd")


def proposals(
    *, data: list[str], boxes: str, timing: str, split: str, shard: str, nshards: str, max_boxes: int,
    params: dict[str, Any], method: str = "edgeboxes", proposal_processes: int = 1,
) -> None:  # fmt: skip
    """Proposals of ``method`` (:func:`kdwsd.proposals.propose`; ``params``: that method's config section) for
    the images ``i`` of ``split`` with ``i % nshards == shard``; writes the shard file ``boxes``
    (docs/formats.md §2) and its ``timing``."""
    from kdwsd.data.prepared import load_split
    from kdwsd.proposals import propose, shard_indices, write_shard

    split_data = load_split(prepared_dir(data), split)
    rows = shard_indices(len(split_data), int(shard), int(nshards))
    run = propose(method, split_data, rows, max_boxes, proposal_processes, params)
    write_shard(boxes, split_data.image_ids[rows], [b for b, _ in run.proposals], [s for _, s in run.proposals])
    result = {"method": method, "images": len(rows), "seconds": run.seconds, "processes": run.processes,
              "images_per_s_per_process": run.images_per_s / run.processes}  # fmt: skip
    log.info("proposals: %s", result)
    Path(timing).write_text(json.dumps(result, indent=2))


def proposals_qc(
    *, data: list[str], shards: list[str], qc: str, splits: list[str], method: str = "edgeboxes"
) -> None:
    """Boxes per image, images/s and recall at IoU 0.5 / 0.7 per split -> ``qc.csv`` (with a ``method``
    column: the proposal source, read by the Table 5 ablation)."""
    from kdwsd.data.prepared import load_split
    from kdwsd.proposals import ProposalStore, qc_row

    rows = []
    for split_name in splits:
        split_shards = [s for s in shards if Path(s).parent.name == split_name]
        timings = [json.loads(Path(s).with_suffix(".json").read_text()) for s in split_shards]
        busy = sum(t["seconds"] * t["processes"] for t in timings)
        # Random / ground-truth boxes take ~no time: no rate rather than a division by zero.
        images_per_s = sum(t["images"] for t in timings) / busy if busy > 0 else float("nan")
        split = load_split(prepared_dir(data), split_name)
        store = ProposalStore(split_shards)
        boxes = [store.get(int(i))[0] for i in split.image_ids]
        gt = None
        if split.has_boxes:
            gt = [np.array([b for _, b in boxes_i]).reshape(-1, 4) for boxes_i in split.gt_boxes]
        rows.append({"method": method, **qc_row(split_name, boxes, images_per_s, gt)})
        log.info("proposals qc: %s", rows[-1])
    pd.DataFrame(rows).to_csv(qc, index=False)
