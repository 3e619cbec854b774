"""Rule proposals: EdgeBoxes for one shard of one split (images i with i % num_shards == shard)."""

import json

from kdwsd.data.prepared import load_split
from kdwsd.proposals import compute_proposals, shard_indices, write_shard
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
log = setup_step(snakemake, f"proposals {snakemake.wildcards.split} shard {snakemake.wildcards.shard}")
p, w = snakemake.params, snakemake.wildcards
split = load_split(p.data_dir, w.split)
rows = shard_indices(len(split), int(w.shard), int(w.nshards))
run = compute_proposals([split.paths[i] for i in rows], p.cfg["max_boxes"], snakemake.threads, p.cfg["params"])
write_shard(snakemake.output.shard, split.image_ids[rows], [b for b, _ in run.proposals], [s for _, s in run.proposals])
timing = {"images": len(rows), "seconds": run.seconds, "processes": run.processes,
          "images_per_s_per_process": run.images_per_s / run.processes}  # fmt: skip
log.info("proposals: %s", timing)
with open(snakemake.output.timing, "w") as f:
    json.dump(timing, f, indent=2)
