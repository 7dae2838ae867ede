#!/usr/bin/env bash
# The tests against the newest releases: upgrades .venv-latest/ to the newest versions requirements*.txt
# allow (no constraints) and runs scripts/test.sh in it, with the same arguments; a breaking release shows
# up as a failing run. It then lists the versions that differ from constraints.txt; with --freeze first, a
# passing run writes them to constraints.txt (commit it: fresh set-ups then get what passed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
freeze=0
if [ "${1:-}" = "--freeze" ]; then freeze=1; shift; fi
ATOP_LATEST=1 bash scripts/test.sh "$@"
.venv-latest/bin/python scripts/constraints.py diff constraints.txt
if [ "$freeze" = 1 ]; then
  .venv-latest/bin/python scripts/constraints.py freeze constraints.txt
fi
