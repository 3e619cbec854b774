"""Rule proposals_qc: boxes/image, images/s and recall at IoU 0.5 / 0.7 per split -> qc.csv."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from kdwsd.data.prepared import load_split
from kdwsd.proposals import ProposalStore, qc_row
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
log = setup_step(snakemake, "proposals_qc")
p = snakemake.params
rows = []
for split_name in p.splits:
    shards = [s for s in snakemake.input.shards if Path(s).parent.name == split_name]
    timings = [json.loads(Path(s).with_suffix(".json").read_text()) for s in shards]
    images_per_s = sum(t["images"] for t in timings) / sum(t["seconds"] * t["processes"] for t in timings)
    split = load_split(p.data_dir, split_name)
    store = ProposalStore(shards)
    boxes = [store.get(int(i))[0] for i in split.image_ids]
    gt = [np.array([b for _, b in boxes_i]).reshape(-1, 4) for boxes_i in split.gt_boxes] if split.has_boxes else None
    rows.append(qc_row(split_name, boxes, images_per_s, gt))
    log.info("proposals qc: %s", rows[-1])
pd.DataFrame(rows).to_csv(snakemake.output[0], index=False)
