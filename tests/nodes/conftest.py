"""In-process node tests: ComfyUI's modules on sys.path (CPU mode) and the pack imported as a package,
exactly as ComfyUI imports it (``custom_nodes.<pack>``), without starting a server."""
from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from tests.comfy_host import PACK_DIR_NAME, ROOT, comfyui_dir


def _load_comfy(tmp_root):
    path = str(comfyui_dir())
    if path not in sys.path:
        sys.path.insert(0, path)
    from comfy.cli_args import args

    args.cpu = True
    import folder_paths

    for name in ("output", "input", "temp"):
        d = tmp_root / name
        d.mkdir(parents=True, exist_ok=True)
    folder_paths.set_output_directory(str(tmp_root / "output"))
    folder_paths.set_input_directory(str(tmp_root / "input"))
    folder_paths.set_temp_directory(str(tmp_root / "temp"))
    return folder_paths


def _load_pack():
    name = f"custom_nodes.{PACK_DIR_NAME}"
    if name in sys.modules:
        return sys.modules[name]
    if "custom_nodes" not in sys.modules:
        parent = importlib.util.module_from_spec(importlib.machinery.ModuleSpec("custom_nodes", None, is_package=True))
        parent.__path__ = []
        sys.modules["custom_nodes"] = parent
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def comfy_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfy_inprocess")
    _load_comfy(root)
    return root


@pytest.fixture(scope="session")
def pack(comfy_dirs):
    return _load_pack()


@pytest.fixture(scope="session")
def node_classes(pack) -> dict[str, type]:
    extension = asyncio.run(pack.comfy_entrypoint())
    classes = asyncio.run(extension.get_node_list())
    return {cls.GET_SCHEMA().node_id: cls for cls in classes}


@pytest.fixture(scope="session")
def lib(pack):
    """The pack's own copy of the library (``custom_nodes.<pack>.atop_models``), so that dataclasses passed
    to nodes are the very classes the nodes import."""
    return importlib.import_module(f"{pack.__name__}.atop_models")


def run_node(cls, **kwargs):
    """Execute a V3 node the way ComfyUI does: normalised NodeOutput, under torch.inference_mode (as
    ComfyUI's executor runs every node)."""
    import torch

    with torch.inference_mode():
        return cls.EXECUTE_NORMALIZED(**kwargs)
