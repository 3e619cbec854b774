#!/usr/bin/env bash
# Stop the cluster started by tools/slurm/start-local-cluster.sh (same --dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3
dir="${TMPDIR:-/tmp}/kdwsd-slurm"
[ "${1:-}" = "--dir" ] && dir="$2"
exec "$py" "$repo/tools/slurm/cluster.py" stop --dir "$dir"
