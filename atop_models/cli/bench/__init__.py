"""``python -m atop_models bench <name>``: benchmarks. Each benchmark module here exposes
``register(subparsers)``; the others (shared data such as the frozen splits) have no ``register``."""
from __future__ import annotations

import importlib
import pkgutil


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark (joints, lift, ...)")
    sub = parser.add_subparsers(dest="bench", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if not info.name.startswith("_") and hasattr(module, "register"):
            module.register(sub)
