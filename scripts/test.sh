#!/usr/bin/env bash
# The README's test command: sets up .venv (first run only), then runs every test tier:
# unit, in-process node tests, a real headless ComfyUI server, the browser check, and GPU tests (skipped without CUDA).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
bash scripts/setup_browser.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests
