"""Rule proposals: EdgeBoxes for one shard of one split (images i with i % num_shards == shard)."""

import json
import time

from kdwsd.data.prepared import load_split
from kdwsd.proposals import compute_proposals, shard_indices, write_shard
from kdwsd.workflow import setup_step

snakemake = globals()["snakemake"]
log = setup_step(snakemake, f"proposals {snakemake.wildcards.split} shard {snakemake.wildcards.shard}")
p, w = snakemake.params, snakemake.wildcards
split = load_split(p.data_dir, w.split)
rows = shard_indices(len(split), int(w.shard), p.cfg["num_shards"])
t0 = time.perf_counter()
results = compute_proposals([split.paths[i] for i in rows], p.cfg["max_boxes"], snakemake.threads, p.cfg["params"])
seconds = time.perf_counter() - t0
write_shard(snakemake.output.shard, split.image_ids[rows], [r[0] for r in results], [r[1] for r in results])
timing = {"images": len(rows), "seconds": seconds, "processes": snakemake.threads,
          "images_per_s_per_process": len(rows) / max(seconds, 1e-9) / snakemake.threads}  # fmt: skip
log.info("proposals: %s", timing)
with open(snakemake.output.timing, "w") as f:
    json.dump(timing, f, indent=2)
