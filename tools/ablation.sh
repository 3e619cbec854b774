#!/usr/bin/env bash
# The paper's Table 5 for a configuration: the same chain with each proposal source of config/ablation/,
# then the table (results/<run>/ablation/table5.{csv,tex,md}). Opt-in: the default `snakemake` builds none
# of it. Each variant is a whole run (teacher, cache, students): ~5-10 min each for the default on 2 cores.
#
# Usage: bash tools/ablation.sh [--configfile BASE.yaml ...] [extra snakemake arguments]
#   default:     bash tools/ablation.sh                      (runs synthetic, synthetic-proposals-<method>)
#   other base:  bash tools/ablation.sh --configfile config/config.yaml tests/configs/tiny.yaml
#                (the variant of run R is named R-proposals-<method>)
# Only what is stale is rebuilt, so an interrupted ablation resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SNAKEMAKE=${SNAKEMAKE:-$PYTHON -m snakemake}
base=(config/config.yaml)
if [[ ${1:-} == --configfile ]]; then
    shift
    base=()
    while [[ $# -gt 0 && $1 != -* ]]; do base+=("$1"); shift; done
fi
# The run name of the base configuration: the last file that sets `run`.
run=$($PYTHON -c 'import sys, yaml
run = None
for f in sys.argv[1:]:
    run = (yaml.safe_load(open(f)) or {}).get("run", run)
print(run)' "${base[@]}")
start=$(date +%s)
echo "== base run $run (the EdgeBoxes row)"
$SNAKEMAKE --cores all --configfile "${base[@]}" "$@"
for overlay in config/ablation/*.yaml; do
    method=$(basename "$overlay" .yaml)
    echo "== $run-proposals-$method"
    # --config run=... keeps the variants of a non-default base apart (the overlays name the default's).
    $SNAKEMAKE --cores all --configfile "${base[@]}" "$overlay" --config "run=$run-proposals-$method" "$@"
done
$SNAKEMAKE --cores all --configfile "${base[@]}" "$@" ablation
echo "wall time: $(( $(date +%s) - start )) s"
cat "results/$run/ablation/table5.md"
