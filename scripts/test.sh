#!/usr/bin/env bash
# Set up (idempotent), run the test suite, then the type checker. `.ci/run` calls exactly this.
# Arguments go to pytest. mypy ([tool.mypy] in pyproject.toml: src/nasforge) runs even when tests
# fail, so one run reports both; any test failure or type error fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
.venv/bin/python -m pytest "$@" || status=$?
.venv/bin/python -m mypy || status=$?
exit "$status"
