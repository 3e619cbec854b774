#!/usr/bin/env bash
# Stop the cluster started by scripts/slurm/start-local-cluster.sh (same --dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3
dir="${TMPDIR:-/tmp}/kdwsd-slurm"
[ "${1:-}" = "--dir" ] && dir="$2"
exec "$py" "$repo/tests/slurm_cluster.py" stop --dir "$dir"
