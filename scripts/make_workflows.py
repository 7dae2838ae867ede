"""Writes the shipped workflows: each API prompt below becomes workflows/api/<name>.json (every widget
spelled out, defaults filled from the node definitions) and its UI twin workflows/<name>.json.

Node definitions come from a real ComfyUI started with the pack (tests/comfy_host.py), so the files match
what the server and the page expect. Run: .venv/bin/python scripts/make_workflows.py"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atop_models.workflow_format import api_to_ui, fill_widget_defaults  # noqa: E402
from tests.comfy_host import ComfyHost  # noqa: E402

SAMPLE_MESH = "3d/atop_sample_cabinet.glb"  # written into ComfyUI's input folder (README, tests)
SHELL_MESH = "3d/atop_sample_cabinet_shell.glb"  # the same cabinet as one mesh without parts (its outer shell)
UNPAINTED = "example.png"  # ComfyUI ships it in input/: Part From Masks says to paint it first
MODEL = "imagedream-ipmv-diffusers"


def link(node: int, slot: int = 0) -> list:
    return [str(node), slot]


WORKFLOWS: dict[str, dict] = {
    # Foundation: a procedural object, its rest-state views and part masks, and a reference motion clip.
    "atop_reference_clips": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "PartMaskRender", "inputs": {"mesh": link(1), "cameras": link(2, 1), "part_name": "door"}},
        "4": {"class_type": "RenderReferenceMotion", "inputs": {"mesh": link(1), "part_name": "door",
                                                                "dataset_name": "cabinet_door"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": link(2), "filename_prefix": "atop/views"}},
        "6": {"class_type": "MaskToImage", "inputs": {"mask": link(3)}},
        "7": {"class_type": "SaveImage", "inputs": {"images": link(6), "filename_prefix": "atop/masks"}},
        "8": {"class_type": "SaveImage", "inputs": {"images": link(4), "filename_prefix": "atop/reference_clip"}},
    },
    # Joint estimation and export from the ground-truth motion of a procedural cabinet's door.
    "atop_joint_from_reference": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}},
        "2": {"class_type": "GroundTruthPointSequence", "inputs": {"mesh": link(1), "part_name": "door"}},
        "3": {"class_type": "OBBAxisSearch", "inputs": {"points": link(2), "mesh": link(1)}},
        "4": {"class_type": "ExportURDF", "inputs": {"mesh": link(1), "joint": link(3), "robot_name": "cabinet",
                                                     "filename_prefix": "cabinet"}},
        "5": {"class_type": "Preview3D", "inputs": {"model_file": link(4, 1)}},
        "6": {"class_type": "SaveImage", "inputs": {"images": link(3, 1), "filename_prefix": "atop/axis_overlay"}},
        "7": {"class_type": "EvaluateJoint", "inputs": {"mesh": link(1), "joint": link(3)}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": link(7)}},
    },
    # Few-shot personalisation: reference clips of procedural cabinets, then motion-module fine-tuning.
    "atop_finetune_motion": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 1}},
        "2": {"class_type": "RenderReferenceMotion", "inputs": {"mesh": link(1), "part_name": "door",
                                                                "dataset_name": "cabinet_doors"}},
        "3": {"class_type": "LoadInflatedImageDream", "inputs": {"base_model": MODEL}},
        "4": {"class_type": "MotionModuleFinetune", "inputs": {"model": link(3), "dataset": link(2, 2),
                                                               "save_name": "cabinet_doors"}},
        "5": {"class_type": "LossGraphNode", "inputs": {"loss": link(4, 2), "filename_prefix": "atop/finetune_loss"}},
    },
    # Text-driven motion of a part: rest-state views and masks, then the personalised model samples.
    "atop_sample_motion": {
        "1": {"class_type": "LoadPartMesh", "inputs": {"mesh_path": SAMPLE_MESH}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "PartMaskRender", "inputs": {"mesh": link(1), "cameras": link(2, 1), "part_name": "door"}},
        "4": {"class_type": "LoadInflatedImageDream", "inputs": {"base_model": MODEL}},
        "5": {"class_type": "MultiViewMotionSample", "inputs": {
            "model": link(4), "views": link(2), "cameras": link(2, 1), "part_masks": link(3),
            "prompt": "the door of the cabinet is being opened"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": link(5, 1), "filename_prefix": "atop/motion"}},
    },
    # The whole method: text -> multi-view motion -> Gaussians by SDS -> joint -> URDF + animated preview.
    "atop_articulate": {
        "1": {"class_type": "LoadPartMesh", "inputs": {"mesh_path": SAMPLE_MESH}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "PartMaskRender", "inputs": {"mesh": link(1), "cameras": link(2, 1), "part_name": "door"}},
        "4": {"class_type": "LoadInflatedImageDream", "inputs": {"base_model": MODEL}},
        "5": {"class_type": "MultiViewMotionSample", "inputs": {
            "model": link(4), "views": link(2), "cameras": link(2, 1), "part_masks": link(3),
            "prompt": "the door of the cabinet is being opened"}},
        "6": {"class_type": "GaussianSDSLift", "inputs": {
            "mesh": link(1), "part_name": "door", "cameras": link(2, 1), "guidance": "sds", "video": link(5),
            "model": link(4)}},
        "7": {"class_type": "OBBAxisSearch", "inputs": {"points": link(6), "mesh": link(1)}},
        "8": {"class_type": "ExportURDF", "inputs": {"mesh": link(1), "joint": link(7), "robot_name": "cabinet",
                                                     "filename_prefix": "cabinet"}},
        "9": {"class_type": "Preview3D", "inputs": {"model_file": link(8, 1)}},
        "10": {"class_type": "SaveImage", "inputs": {"images": link(5, 1), "filename_prefix": "atop/motion"}},
        "11": {"class_type": "SaveImage", "inputs": {"images": link(7, 1), "filename_prefix": "atop/axis_overlay"}},
    },
    # Without weights: lift a ground-truth motion video with "video" guidance, then the joint and export.
    "atop_lift_reference_motion": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "MultiViewVideoFromMesh", "inputs": {"mesh": link(1), "cameras": link(2, 1),
                                                                 "part_name": "door"}},
        "4": {"class_type": "GaussianSDSLift", "inputs": {
            "mesh": link(1), "part_name": "door", "cameras": link(2, 1), "guidance": "video", "video": link(3),
            "motion": "joint"}},
        "5": {"class_type": "OBBAxisSearch", "inputs": {"points": link(4), "mesh": link(1)}},
        "6": {"class_type": "ExportURDF", "inputs": {"mesh": link(1), "joint": link(5), "robot_name": "cabinet",
                                                     "filename_prefix": "cabinet_lifted"}},
        "7": {"class_type": "Preview3D", "inputs": {"model_file": link(6, 1)}},
        "8": {"class_type": "SaveImage", "inputs": {"images": link(4, 1), "filename_prefix": "atop/lift_preview"}},
    },
    # A mesh without parts: paint the part on the rendered views, split it out, then the whole method.
    "atop_paint_part": {
        "1": {"class_type": "LoadPartMesh", "inputs": {"mesh_path": SHELL_MESH}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "ViewsSideBySide", "inputs": {"images": link(2)}},
        "4": {"class_type": "SaveImage", "inputs": {"images": link(3), "filename_prefix": "atop/paint_views"}},
        "5": {"class_type": "LoadImage", "inputs": {"image": UNPAINTED}},
        "6": {"class_type": "PartFromMasks", "inputs": {"mesh": link(1), "cameras": link(2, 1), "masks": link(5, 1),
                                                        "part_name": "door"}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": link(6, 2)}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": link(6, 3)}},
        "9": {"class_type": "LoadInflatedImageDream", "inputs": {"base_model": MODEL}},
        "10": {"class_type": "MultiViewMotionSample", "inputs": {
            "model": link(9), "views": link(2), "cameras": link(2, 1), "part_masks": link(6, 1),
            "prompt": "the door of the cabinet is being opened"}},
        "11": {"class_type": "GaussianSDSLift", "inputs": {
            "mesh": link(6), "part_name": link(6, 4), "cameras": link(2, 1), "guidance": "sds", "video": link(10),
            "model": link(9)}},
        "12": {"class_type": "OBBAxisSearch", "inputs": {"points": link(11), "mesh": link(6)}},
        "13": {"class_type": "ExportURDF", "inputs": {"mesh": link(6), "joint": link(12), "robot_name": "cabinet",
                                                      "filename_prefix": "cabinet_painted"}},
        "14": {"class_type": "Preview3D", "inputs": {"model_file": link(13, 1)}},
        "15": {"class_type": "SaveImage", "inputs": {"images": link(10, 1), "filename_prefix": "atop/motion"}},
    },
}

# Markdown notes placed beside a workflow's nodes (frontend-only nodes: not part of the API twin).
NOTES: dict[str, str] = {
    "atop_paint_part": """## Paint the part that moves

For a mesh without parts (generated, scanned, one-piece download): paint the part, it is split out, then
articulated.

1. **Render the views to paint.** Set `mesh_path` in *ATOP Load Part Mesh*, or connect a `MESH` (ComfyUI's
   3D nodes) to its `comfy_mesh` input. Click the *Save Image* node of the views (`atop/paint_views`) and
   press **Execute** (the play button) in the toolbox above it: only the views are rendered, side by side.
2. **Bring them to Load Image.** Right-click that *Save Image* node: **Copy (Clipspace)**. Right-click the
   *Load Image* node: **Paste (Clipspace)**.
3. **Paint.** Right-click *Load Image*: **Open in MaskEditor | Image Canvas**. Paint the moving part on any
   of the views (one is enough; leave the others blank; a few pixels over its edge are fine) and **Save**.
   Or paint elsewhere: erase the part to transparency in the saved PNG and upload it to *Load Image*.
4. **Run** the workflow. *ATOP Part From Masks* splits the part out (`part_name`, here "door"): its preview
   tints the part orange and outlines your paint in blue; its info says how well they agree. The rest
   samples the part's motion, lifts it, finds the joint and exports the URDF and an animated preview.
""",
}


def add_note(ui: dict, text: str) -> None:
    """A Markdown note node left of the graph (the page shows it; prompts leave it out)."""
    note_id = ui["last_node_id"] + 1
    ui["nodes"].insert(0, {"id": note_id, "type": "MarkdownNote", "pos": [-560, 60], "size": [520, 560],
                           "flags": {}, "order": len(ui["nodes"]), "mode": 0, "inputs": [], "outputs": [],
                           "properties": {}, "widgets_values": [text], "title": "Read me"})
    ui["last_node_id"] = note_id


def main() -> int:
    host = ComfyHost(Path(tempfile.mkdtemp(prefix="atop_workflows_"))).start()
    try:
        info = host.object_info()
    finally:
        host.stop()
    missing_any = False
    for name, prompt in WORKFLOWS.items():
        missing = sorted({n["class_type"] for n in prompt.values()} - set(info))
        if missing:
            missing_any = True
            sys.stderr.write(f"skipped {name}: unknown node types {missing}\n")
            continue
        api = fill_widget_defaults(prompt, info)
        # Combos listing model files depend on the machine: keep the intended names.
        for node_id, node in prompt.items():
            for key in ("base_model",):
                if key in node["inputs"]:
                    api[node_id]["inputs"][key] = node["inputs"][key]
        ui = api_to_ui(api, info, title=name)
        if name in NOTES:
            add_note(ui, NOTES[name])
        (ROOT / "workflows" / "api").mkdir(parents=True, exist_ok=True)
        (ROOT / "workflows" / "api" / f"{name}.json").write_text(json.dumps(api, indent=2) + "\n")
        (ROOT / "workflows" / f"{name}.json").write_text(json.dumps(ui, indent=2) + "\n")
        sys.stdout.write(f"wrote {name}\n")
    return 1 if missing_any else 0


if __name__ == "__main__":
    raise SystemExit(main())
