"""The library must import and work with every ComfyUI module blocked."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

BLOCKER = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top.startswith("comfy") or top in ("folder_paths", "server", "execution", "nodes"):
                raise ImportError(f"blocked ComfyUI module {name}")
            return None

    sys.meta_path.insert(0, Block())
    import atop_models
    imported = []
    for info in pkgutil.walk_packages(atop_models.__path__, "atop_models."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
    print(len(imported))
    """
)


def test_library_imports_without_comfyui():
    result = subprocess.run([sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip().splitlines()[-1]) >= 5
