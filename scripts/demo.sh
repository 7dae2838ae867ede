#!/usr/bin/env bash
# The README's main command: sets up .venv (first run only) and runs the articulation pipeline on the
# bundled sample, writing everything under out/demo (or the folder given as the first argument).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
exec .venv/bin/python -m atop_models demo --out "${1:-out/demo}"
