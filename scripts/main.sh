#!/usr/bin/env bash
# Set up (idempotent) and run the main job: a real architecture search on an offline dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/main_job.py "$@"
