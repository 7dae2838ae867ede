"""ComfyUI adapters. Every module here (not starting with '_') exposes ``NODES``, a list of node classes."""
from __future__ import annotations

import importlib
import pkgutil


def _node_classes() -> list[type]:
    classes: list[type] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "types":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        classes.extend(module.NODES)
    return classes


async def comfy_entrypoint():
    from ._comfy import ComfyExtension, register_model_folders

    register_model_folders()

    class ATOPExtension(ComfyExtension):
        async def get_node_list(self):
            return _node_classes()

    return ATOPExtension()
