#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on 127.0.0.1 to try the SLURM profile by hand
# (the same harness the tests use: tools/slurm/cluster.py). Needs root and the Debian packages
# (.ci/install-slurm.sh; ACCOUNTING=1 for slurmdbd + MariaDB).
#
#   tools/slurm/start-local-cluster.sh [--accounting] [--gpus N] [--dir DIR]
#   source /tmp/kdwsd-slurm/env.sh          # SLURM_CONF + PATH for sinfo/squeue/sbatch
#   snakemake --profile profiles/slurm-noaccounting --workflow-profile profiles/slurm ...
#   tools/slurm/stop-local-cluster.sh [--dir DIR]
#
# A keeper process owns the daemons (munged, slurmctld, slurmd[, mariadbd, slurmdbd]); stop
# signals it, and it stops exactly those daemons and removes the cluster's state.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3

dir="${TMPDIR:-/tmp}/kdwsd-slurm"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = "--dir" ] && dir="${args[$((i + 1))]}"
done
mkdir -p "$dir"
log="$dir/keeper.log"
t0=$(date +%s%N)
setsid "$py" "$repo/tools/slurm/cluster.py" start "$@" --dir "$dir" >"$log" 2>&1 </dev/null &
keeper=$!
for _ in $(seq 1 240); do
    if grep -q '^READY ' "$log" 2>/dev/null; then
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        echo "SLURM test cluster up in ${ms} ms (keeper pid $keeper, log $log)"
        echo "Use it with:   source $dir/env.sh"
        echo "Stop it with:  $here/stop-local-cluster.sh --dir $dir"
        exit 0
    fi
    if ! kill -0 "$keeper" 2>/dev/null; then
        echo "cluster failed to start:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.25
done
echo "cluster did not come up within 60 s, stopping it; log: $log" >&2
kill -TERM "$keeper" 2>/dev/null || true
exit 1
