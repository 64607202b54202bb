#!/usr/bin/env bash
# Create .venv (if needed) and install nasforge with its test and data extras.
# torch is installed first, pinned to the local CPU wheel, so nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev,export]"
.venv/bin/python -c "import nasforge, torch" 
