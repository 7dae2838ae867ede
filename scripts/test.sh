#!/usr/bin/env bash
# The README's test command: sets up .venv (first run only), then runs every test tier:
# unit, in-process node tests, a real headless ComfyUI server, the browser check, and GPU tests (skipped without CUDA).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
bash scripts/setup_browser.sh
venv="$([ "${ATOP_LATEST:-0}" = 1 ] && echo .venv-latest || echo .venv)"  # see scripts/test_latest.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# Tests marked slow (the motion-learning proof of both variants with tiny models, about 13 CPU-minutes) run only when
# asked for: ATOP_TEST_MARKERS=slow bash scripts/test.sh tests/unit/test_motion_learning.py
markers="${ATOP_TEST_MARKERS:-not slow}"
if [ "$#" -eq 0 ]; then set -- tests; fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "$markers" "$@"
