"""constraints.txt: the exact versions the test suite passed with.

    python scripts/constraints.py check constraints.txt    # installed versions differ? list them, exit 1
    python scripts/constraints.py diff constraints.txt     # list what differs (newer releases), exit 0
    python scripts/constraints.py freeze constraints.txt   # write the installed versions (after a passing run)

Run with the environment's own Python. torch and its CUDA runtime are left out: the host (ComfyUI) owns
torch, and scripts/setup_env.sh names the tested torch itself.
"""
from __future__ import annotations

import os
import re
import sys
from importlib import metadata

HOST_OWNED = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")
TOOLS = {"pip", "setuptools", "wheel"}
HEADER = ("# Exact versions the test suite passed with (Linux x86_64, Python 3.11); scripts/setup_env.sh installs\n"
          "# them. Written by `bash scripts/test_latest.sh --freeze` after a passing run; requirements*.txt keep\n"
          "# the ranges. torch comes from setup_env.sh (the host owns it).\n")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and canonical(name) not in TOOLS and not HOST_OWNED.match(canonical(name)):
            found[canonical(name)] = dist.version
    return found


def read(path: str) -> dict[str, str]:
    pins = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, version = line.partition("==")
                if not version:
                    raise SystemExit(f"{path}: '{line}' is not an exact pin (name==version)")
                pins[canonical(name)] = version.strip()
    return pins


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("check", "diff", "freeze"):
        print(__doc__)
        return 2
    command, path = argv
    have = installed()
    if command == "freeze":
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(have.items())))
        os.replace(tmp, path)
        print(f"wrote {len(have)} pins to {path}")
        return 0
    differ = [f"{n} {have[n]} (constraints.txt: {v})" for n, v in sorted(read(path).items())
              if n in have and have[n] != v]
    if command == "diff":
        print(f"versions that differ from {path}: " + (", ".join(differ) or "none"))
        return 0
    if differ:
        print(f"[setup] installed versions differ from {path}: " + ", ".join(differ) +
              "; remove .venv and run the setup again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
