"""Wall time of a no-op dry run (`snakemake -n` when everything is up to date): median of N (default 3).

Goal: <= 5 s on the default configuration. Measured on the completed default run in the repository
(results/synthetic/) when it exists and is up to date; otherwise on a completed tiny run (built in a
temporary directory, ~1-2 min on 2 cores, or reused with --tiny-dir). The output says which. The tiny and
the default DAGs have the same jobs (same experiments, seeds and shard counts), so the times are close.

    .venv/bin/python benchmarks/dryrun_noop.py [--repeats 3] [--tiny-dir DIR] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
# --configfile replaces the Snakefile's `configfile:`, so the default goes first
TINY = ["--configfile", str(REPO / "config" / "config.yaml"), str(REPO / "tests" / "configs" / "tiny.yaml")]


def dry_run(workdir: Path, config_args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run([*SNAKEMAKE, "-d", str(workdir), *config_args, "-n"], cwd=workdir, capture_output=True,
                         text=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{res.stderr[-3000:]}")
    return seconds, res.stdout + res.stderr


def up_to_date(output: str) -> bool:
    return "Nothing to be done" in output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="measure on a tiny run even if the default is done")
    parser.add_argument("--tiny-dir", type=Path, help="working directory of a tiny run (built there if needed)")
    args = parser.parse_args()

    workdir, config_args, label = REPO, [], "default config, results/synthetic"
    if not args.tiny:
        _, out = dry_run(REPO, [])
        if not up_to_date(out):
            print("the default run is missing or not up to date (run `snakemake --cores all`); using a tiny run")
            args.tiny = True
    if args.tiny:
        workdir = args.tiny_dir or Path(tempfile.mkdtemp(prefix="kdwsd-dryrun-"))
        workdir.mkdir(parents=True, exist_ok=True)
        config_args, label = TINY, f"tiny config (tests/configs/tiny.yaml), {workdir}/results/tiny"
        if not up_to_date(dry_run(workdir, config_args)[1]):
            print(f"building the tiny run in {workdir} ...", flush=True)
            subprocess.run([*SNAKEMAKE, "-d", str(workdir), *config_args, "--cores", "all"],
                           check=True, capture_output=True)  # fmt: skip
    times = []
    for _ in range(args.repeats):
        seconds, out = dry_run(workdir, config_args)
        if not up_to_date(out):
            raise SystemExit(f"not a no-op dry run:\n{out[-3000:]}")
        times.append(seconds)
    print(f"no-op dry run ({label}): median {statistics.median(times):.2f} s over {args.repeats} "
          f"({', '.join(f'{t:.2f}' for t in times)} s); goal <= 5 s on the default")  # fmt: skip


if __name__ == "__main__":
    main()
