"""Toy "training" loop with per-epoch checkpoints and resume (stand-in for kdwsd training).

Every epoch updates a small weight vector deterministically, saves a checkpoint atomically
(epoch_XXXX.json via a temporary file + os.replace) and reports `epoch E/N done`. On start it looks
for the newest checkpoint and reports `resumed from checkpoint epoch K` (or `starting from scratch`),
then continues with epoch K+1. The result depends only on the data and N, not on interruptions.

Reports go to stdout (the rule's log) AND are appended to <ckpt-dir>/progress.log: Snakemake
deletes the rule's declared log of a failed attempt before it retries the job, so the history of
all attempts is only kept next to the (undeclared) checkpoints.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path


def latest_checkpoint(ckpt_dir: Path):
    ckpts = sorted(ckpt_dir.glob("epoch_*.json"))
    if not ckpts:
        return None
    return json.loads(ckpts[-1].read_text())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ckpt-dir", required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--epoch-seconds", type=float, default=0.0)
    a = ap.parse_args()

    data = json.loads(Path(a.data).read_text())
    ckpt_dir = Path(a.ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    job = os.environ.get("SLURM_JOB_ID", "local")

    def report(msg: str) -> None:
        line = f"[job {job}] {msg}"
        print(line, flush=True)
        with open(ckpt_dir / "progress.log", "a") as progress:
            progress.write(line + "\n")

    state = latest_checkpoint(ckpt_dir)
    if state is not None and state["epochs_total"] == a.epochs:
        report(f"resumed from checkpoint epoch {state['epoch']}")
    else:
        state = {"epoch": 0, "epochs_total": a.epochs, "weights": [0.0] * len(data[0])}
        report("starting from scratch")

    w = state["weights"]
    for epoch in range(state["epoch"] + 1, a.epochs + 1):
        report(f"epoch {epoch}/{a.epochs} started")
        time.sleep(a.epoch_seconds)
        lr = 0.5 / epoch
        for x in data:  # one pass of a deterministic "gradient" step
            err = 1.0 - sum(wi * xi for wi, xi in zip(w, x, strict=True))
            w = [round(wi + lr * err * xi / len(data), 9) for wi, xi in zip(w, x, strict=True)]
        state = {"epoch": epoch, "epochs_total": a.epochs, "weights": w}
        tmp = ckpt_dir / f".epoch_{epoch:04d}.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, ckpt_dir / f"epoch_{epoch:04d}.json")
        report(f"epoch {epoch}/{a.epochs} done")

    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"epochs": a.epochs, "weights": w}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
