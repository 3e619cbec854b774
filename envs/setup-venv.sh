#!/usr/bin/env bash
# Create (or update) the virtual environment at .venv/ with everything the workflow and tests need.
# Torch is pinned here (not in pyproject.toml, whose ranges stay wide for real users) to the builds that
# this project's CI machines carry locally; set KDWSD_TORCH_SPEC to override, e.g. a CUDA build on a cluster:
#   KDWSD_TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu124" bash envs/setup-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ -z "${KDWSD_TORCH_SPEC:-}" ]; then
  case "$(uname -m)" in
    aarch64|arm64) KDWSD_TORCH_SPEC="torch==2.9.1 torchvision==0.24.1" ;;
    *) KDWSD_TORCH_SPEC="torch==2.14.1 torchvision==0.29.1" ;;
  esac
fi
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install --quiet $KDWSD_TORCH_SPEC
fi
.venv/bin/python -m pip install --quiet -e ".[workflow,slurm,dvc,export,test]"
.venv/bin/python -c "import torch, torchvision, cv2, snakemake; print('kdwsd environment ready: torch', torch.__version__, 'torchvision', torchvision.__version__, 'opencv', cv2.__version__)"
