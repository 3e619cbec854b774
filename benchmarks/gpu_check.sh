#!/usr/bin/env bash
# GPU check in one command: a few steps of every stage (teacher train, teacher cache, stage 1, stage 2,
# evaluation) with the paper's models at real sizes on synthetic data; prints a Markdown table.
# About 1-2 minutes on one H200 (model build + cuDNN autotuning included); stopped after 5 minutes.
# Usage: bash benchmarks/gpu_check.sh [--device cuda:1] [--steps 20] [--json out.json]
#        bash benchmarks/gpu_check.sh --small --device cpu      # CPU smoke test of the script (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader || true
else
  echo "nvidia-smi: not found (no NVIDIA driver on this machine?)"
fi
exec timeout 300 "$PY" benchmarks/gpu_check.py "$@"
