"""``python -m atop_models bench <name>``: benchmarks. Each module here exposes ``register(subparsers)``."""
from __future__ import annotations

import importlib
import pkgutil


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark (joints, lift, ...)")
    sub = parser.add_subparsers(dest="bench", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
