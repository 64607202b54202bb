#!/usr/bin/env bash
# Create .venv (if needed) and install nasforge with its test, data, dashboard and ray extras.
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
# The ray extra lets the suite run the Ray executor against a local Ray instance; where Ray has no
# wheel for this platform, install without it (the Ray tests then skip and say why).
if ! .venv/bin/pip install -q --disable-pip-version-check -e ".[dev,dashboard,export,ray]"; then
  echo "WARNING: could not install the 'ray' extra here; the Ray executor tests will be skipped" >&2
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev,dashboard,export]"
fi
# The dashboard's browser test drives Debian's chromium with chromium-driver (offline; no browser download).
# Installed when missing and possible (root or passwordless sudo); otherwise that test skips with the reason.
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
    || echo "setup: could not install chromium and chromium-driver; the dashboard's browser test will be skipped" >&2
fi
.venv/bin/python -c "import nasforge, torch" 
