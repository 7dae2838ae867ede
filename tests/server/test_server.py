"""The pack on a real headless ComfyUI, through the HTTP API only."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from atop_models.workflow_format import fill_widget_defaults
from tests.comfy_host import ROOT, execution_error

pytestmark = pytest.mark.server

API_DIR = ROOT / "workflows" / "api"


def atop_nodes(info: dict) -> dict:
    return {k: v for k, v in info.items() if v.get("python_module", "").startswith("custom_nodes.atop_part_articulation")}


def test_pack_imports_and_lists_every_node_with_tooltips(comfy):
    log = comfy.log()
    failed = [line for line in log.splitlines() if "IMPORT FAILED" in line and "atop_part_articulation" in line]
    assert not failed, failed
    nodes = atop_nodes(comfy.object_info())
    for node_id in ("LoadPartMesh", "MeshMultiViewRender", "PartMaskRender", "LoadInflatedImageDream",
                    "MotionModuleFinetune", "MultiViewMotionSample", "GaussianSDSLift", "OBBAxisSearch", "ExportURDF"):
        assert node_id in nodes, f"{node_id} missing from /object_info"
    for node_id, info in nodes.items():
        assert info["display_name"].startswith("ATOP "), node_id
        assert info["category"].startswith("ATOP/"), node_id
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        tooltips = info.get("output_tooltips") or []
        assert len(tooltips) == len(info["output"]) and all(tooltips), f"{node_id} outputs lack tooltips"


def test_model_folders_are_listed(comfy):
    import requests

    folders = requests.get(f"{comfy.url}/models", timeout=30).json()
    assert "atop_imagedream" in folders and "atop_motion_modules" in folders
    info = comfy.object_info()["LoadInflatedImageDream"]["input"]["required"]["base_model"]
    options = info[0] if isinstance(info[0], list) else info[1].get("options", [])
    assert "tiny-imagedream" in options


# The shipped workflows carry real settings (50 DDIM steps, 256 px, ...); the server test runs the very same
# graphs with the tiny random model and small sizes so that they finish on a CPU in seconds.
TINY_SETTINGS = {
    "LoadInflatedImageDream": {"base_model": "tiny-imagedream", "dtype": "fp32"},
    "MeshMultiViewRender": {"resolution": 64},
    "RenderReferenceMotion": {"resolution": 64, "num_frames": 3},
    "MultiViewVideoFromMesh": {"num_frames": 3},
    "MultiViewMotionSample": {"steps": 2, "num_frames": 3},
    "MotionModuleFinetune": {"steps": 3, "checkpoint_every": 2},
    "GaussianSDSLift": {"iterations": 8, "num_gaussians": 300, "resolution": 32},
    "GroundTruthPointSequence": {"num_frames": 4},
    "LoadImage": {"image": "atop_paint_example.png"},  # the door painted on the 64 px views (conftest)
}


def with_tiny_settings(prompt: dict) -> dict:
    for node in prompt.values():
        for name, value in TINY_SETTINGS.get(node["class_type"], {}).items():
            if name in node["inputs"]:
                node["inputs"][name] = value
    return prompt


@pytest.mark.parametrize("workflow", sorted(p.name for p in API_DIR.glob("*.json")))
def test_api_workflow_completes(comfy, workflow):
    prompt = with_tiny_settings(json.loads((API_DIR / workflow).read_text()))
    entry = comfy.wait(comfy.queue(prompt), timeout=900)
    error = execution_error(entry) or {}
    assert entry["status"]["status_str"] == "success", (
        f"{error.get('node_type')}: {error.get('exception_message')}\n{''.join(error.get('traceback', [])[-3:])}")
    files = comfy.output_files(entry)
    assert files, f"{workflow} produced no output files"
    for path in files:
        assert path.exists() and path.stat().st_size > 0, path
    if any(node["class_type"] == "ExportURDF" for node in prompt.values()):
        check_exported_articulation(comfy, entry)


def check_exported_articulation(comfy, entry) -> None:
    """The URDF loads in a real URDF consumer with one movable joint, and the animated GLB plays."""
    import trimesh
    import yourdfpy

    from atop_models.export.animated_glb import read_glb

    # Preview 3D results name the model file relative to the output folder: {"result": [file, camera]}.
    shown = [out["result"][0] for out in entry["outputs"].values() if out.get("result")]
    glbs = [comfy.output_dir / name for name in shown if str(name).endswith(".glb")]
    assert glbs, f"no animated GLB was shown in Preview 3D: {entry['outputs']}"
    for glb in glbs:
        gltf, _ = read_glb(glb.read_bytes())
        assert gltf["animations"] and gltf["animations"][0]["channels"]
        assert len(trimesh.load(glb).geometry) >= 2
        urdfs = list(glb.parent.rglob("*.urdf"))
        assert len(urdfs) == 1, urdfs
        robot = yourdfpy.URDF.load(str(urdfs[0]))
        movable = [j for j in robot.robot.joints if j.type in ("revolute", "prismatic", "continuous")]
        assert len(movable) == 1 and robot.scene is not None and len(robot.scene.geometry) >= 2


def test_bad_input_comes_back_with_our_message(comfy):
    prompt = {
        "1": {"class_type": "LoadPartMesh", "inputs": {"mesh_path": "3d/atop_sample_cabinet.glb", "up_axis": "auto"}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": ["1", 0]}},
        "3": {"class_type": "PartMaskRender", "inputs": {"mesh": ["1", 0], "cameras": ["2", 1],
                                                          "part_name": "no_such_part", "mode": "visible"}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
        "5": {"class_type": "MaskPreview", "inputs": {"mask": ["3", 0]}},
    }
    entry = comfy.wait(comfy.queue(fill_widget_defaults(prompt, comfy.object_info())), timeout=300)
    error = execution_error(entry)
    assert error is not None and error["node_type"] == "PartMaskRender"
    message = error["exception_message"]
    assert message.startswith("ATOP Part Mask Render: part 'no_such_part' not found; parts are: "), message
    assert "door" in message


def test_missing_file_names_the_node_and_the_path(comfy):
    prompt = {
        "1": {"class_type": "LoadPartMesh", "inputs": {"mesh_path": "3d/does_not_exist.glb", "up_axis": "auto"}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    entry = comfy.wait(comfy.queue(fill_widget_defaults(prompt, comfy.object_info())), timeout=300)
    error = execution_error(entry)
    assert error is not None and error["node_type"] == "LoadPartMesh"
    assert error["exception_message"].startswith("ATOP Load Part Mesh:") and "does_not_exist.glb" in error["exception_message"]


def test_interrupt_stops_a_long_running_node(comfy):
    from atop_models.remote import WebSocket

    prompt = {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 3}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": ["1", 0], "resolution": 64}},
        "3": {"class_type": "MultiViewVideoFromMesh", "inputs": {"mesh": ["1", 0], "cameras": ["2", 1],
                                                               "part_name": "door", "num_frames": 3}},
        "4": {"class_type": "GaussianSDSLift", "inputs": {
            "mesh": ["1", 0], "part_name": "door", "cameras": ["2", 1], "guidance": "video",
            "video": ["3", 0], "iterations": 100000}},
        "5": {"class_type": "OBBAxisSearch", "inputs": {"points": ["4", 0], "mesh": ["1", 0]}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 1]}},
    }
    prompt = fill_widget_defaults(prompt, comfy.object_info())
    ws = WebSocket(comfy.url, f"/ws?clientId={comfy.client_id}")
    try:
        prompt_id = comfy.queue(prompt)
        deadline = time.monotonic() + 300
        lift_progress = 0
        while time.monotonic() < deadline and lift_progress < 3:  # the lift is running and reporting
            message = ws.receive(timeout=1.0)
            if message:
                event = json.loads(message)
                if event.get("type") == "progress" and event["data"].get("node") == "4":
                    lift_progress += 1
        assert lift_progress >= 3, "the lift node never reported progress"
    finally:
        ws.close()
    started = time.monotonic()
    comfy.interrupt()
    entry = comfy.wait(prompt_id, timeout=120)
    assert time.monotonic() - started < 30, "interrupt took too long"
    messages = dict((kind, data) for kind, data in entry["status"]["messages"])
    assert "execution_interrupted" in messages, list(messages)
    assert messages["execution_interrupted"]["node_type"] == "GaussianSDSLift"
    assert entry["status"]["status_str"] == "error" and not entry.get("outputs")
