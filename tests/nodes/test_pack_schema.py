"""The pack's node schemas: ids, naming, categories, tooltips, and the layering rules."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.comfy_host import ROOT

# Node ids are stored in saved workflows: never rename one.
REQUIRED_NODE_IDS = {
    "LoadPartMesh", "MeshMultiViewRender", "PartMaskRender", "LoadInflatedImageDream", "MotionModuleFinetune",
    "MultiViewMotionSample", "GaussianSDSLift", "OBBAxisSearch", "ExportURDF",
}


def test_required_nodes_are_registered(node_classes):
    missing = REQUIRED_NODE_IDS - set(node_classes)
    assert not missing, f"nodes not registered: {sorted(missing)}"


def test_naming_categories_and_tooltips(node_classes):
    for node_id, cls in node_classes.items():
        schema = cls.GET_SCHEMA()
        assert schema.display_name.startswith("ATOP "), node_id
        assert schema.category.startswith("ATOP/"), node_id
        assert schema.description, f"{node_id} has no description"
        for item in list(schema.inputs or []) + list(schema.outputs or []):
            assert item.tooltip, f"{node_id}.{item.id} has no tooltip"
        for out in schema.outputs or []:
            io_type = out.get_io_type()
            assert io_type.isupper(), (node_id, out.id, io_type)
            if io_type not in {"IMAGE", "MASK", "STRING", "FLOAT", "INT", "BOOLEAN", "LOSS_MAP"}:
                assert io_type.startswith("ATOP_"), (node_id, out.id, io_type)


def test_only_comfy_entrypoint_is_exported(pack):
    assert pack.__all__ == ["comfy_entrypoint"]
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_comfy_imports_stay_in_the_adapter_module():
    comfy_modules = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "server", "execution"}
    offenders = []
    for path in (ROOT / "nodes").glob("*.py"):
        adapter = path.name.startswith("_") or path.name == "types.py"
        if not adapter and _imports(path) & comfy_modules:
            offenders.append(path.name)
    for path in (ROOT / "atop_models").rglob("*.py"):
        if _imports(path) & comfy_modules:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"modules importing ComfyUI directly: {offenders}"


def test_custom_types_keep_their_own_names(node_classes):
    """Each input/output reports the io type it was declared with (a shared Input class would not)."""
    expected = {"mesh": "ATOP_PART_MESH", "cameras": "ATOP_CAMERAS", "model": "ATOP_MV_MODEL",
                "video": "ATOP_MV_VIDEO", "points": "ATOP_POINT_SEQUENCE", "joint": "ATOP_JOINT"}
    seen = 0
    for node_id, cls in node_classes.items():
        info = cls.GET_NODE_INFO_V1()
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                if name in expected:
                    assert spec[0] == expected[name], (node_id, name, spec[0])
                    seen += 1
    assert seen >= 10
