#!/usr/bin/env bash
# `kdwsd predict` on a lent device machine (16 CPU cores + a GPU): one single-thread process per core, and the
# GPU path, each against the student network's throughput (benchmarks/predict_speed.py). This 2-core machine
# cannot show how the CPU processes scale with cores; a device machine can.
# Needs a finished default run: carry results/synthetic/models, results/synthetic/data and
# results/synthetic/efficiency.json (~35 MB). About 3 minutes; the CPU part alone with --cpu-only.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nproc
timeout 240 "$PY" benchmarks/predict_speed.py --images 8000 --repeat 3
[ "${1:-}" = "--cpu-only" ] && exit 0
if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  timeout 120 "$PY" benchmarks/predict_speed.py --images 8000 --repeat 3 --device cuda
  timeout 240 "$PY" benchmarks/predict_speed.py --paper config/coco2014.yaml --images 512 --repeat 2 --device cuda
else
  echo "no CUDA device: GPU part skipped"
fi
