"""Rule proposals_qc: boxes/image, images/s and recall at IoU 0.5 / 0.7 per split -> qc.csv."""

import json
from pathlib import Path

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
    proposals = [store.get(int(i)) for i in split.image_ids]
    gt = [[box for _, box in boxes] for boxes in split.gt_boxes] if split.has_boxes else None
    rows.append(qc_row(split_name, proposals, gt, images_per_s))
    log.info("proposals qc: %s", rows[-1])
pd.DataFrame(rows).to_csv(snakemake.output[0], index=False)
