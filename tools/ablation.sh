#!/usr/bin/env bash
# The paper's Table 5 for a configuration: the same chain with each proposal source of config/ablation/,
# then the table (results/<run>/ablation/table5.{csv,tex,md}). Opt-in: the default `snakemake` builds none
# of it. Each variant builds its row (proposals, teacher, cache, the distilled students): a few minutes each for
# the default on 2 cores.
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
# The base run's name, proposal method and proposals.ablation (the last file that sets each; the schema's
# defaults otherwise): one line "run method method...".
read -r run methods <<<"$($PYTHON -c 'import sys, yaml
schema = yaml.safe_load(open("workflow/schemas/config.schema.yaml"))["properties"]["proposals"]["properties"]
cfg = {"run": None, "method": schema["method"]["default"], "ablation": schema["ablation"]["default"]}
for f in sys.argv[1:]:
    c = yaml.safe_load(open(f)) or {}
    cfg["run"] = c.get("run", cfg["run"])
    cfg.update({k: v for k, v in (c.get("proposals") or {}).items() if k in ("method", "ablation")})
print(cfg["run"], *[m for m in cfg["ablation"] if m != cfg["method"]])' "${base[@]}")"
start=$(date +%s)
echo "== base run $run (its own proposal source's row)"
$SNAKEMAKE --cores all --configfile "${base[@]}" "$@"
for method in $methods; do
    overlay=config/ablation/$method.yaml
    echo "== $run-proposals-$method"
    # --config run=... keeps the variants of a non-default base apart (the overlays name the default's).
    # Only the row's files (teacher metrics, the distilled students, proposal QC), not the other students.
    $SNAKEMAKE ablation_row --cores all --configfile "${base[@]}" "$overlay" --config "run=$run-proposals-$method" \
        "$@"
done
# The target goes first: --configfile takes every following word up to the next option.
$SNAKEMAKE ablation --cores all --configfile "${base[@]}" "$@"
echo "wall time: $(( $(date +%s) - start )) s"
cat "results/$run/ablation/table5.md"
