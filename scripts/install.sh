#!/usr/bin/env bash
# Creates ./.venv and installs panelpaint with its test extras.
# Where no NVIDIA GPU is present the CPU build of PyTorch goes in first, so that the project's own
# torch requirement is already met and pip never pulls a multi-GB CUDA build by accident.
# PANELPAINT_TORCH_INDEX may name a wheel index (e.g. PyTorch's CPU index) on machines that need one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if ! python -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    python -m pip install -q "torch==2.13.0"
  else
    python -m pip install -q "torch==2.13.0${PANELPAINT_TORCH_INDEX:++cpu}" ${PANELPAINT_TORCH_INDEX:+--index-url "$PANELPAINT_TORCH_INDEX"}
  fi
fi
python -m pip install -q -e ".[dev]"
echo "panelpaint installed in .venv ($(python -c 'import torch; print("torch", torch.__version__)'))"
