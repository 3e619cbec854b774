#!/usr/bin/env bash
# Mean ± sd over 3 student seeds for the default configuration (not run by CI: ~10 extra minutes on 2 cores).
# Usage: bash benchmarks/seeds.sh [extra snakemake arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
.venv/bin/snakemake --cores all --configfile benchmarks/three_seeds.yaml "$@"
echo "wall time: $(( $(date +%s) - start )) s"
run=$(.venv/bin/python -c "import yaml; print(yaml.safe_load(open('config/config.yaml'))['run'])")
sed -n '1,/^## Proposals/p' "results/$run/summary.md" | head -n -1
