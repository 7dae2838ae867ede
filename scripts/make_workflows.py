"""Writes the shipped workflows: each API prompt below becomes workflows/api/<name>.json (every widget
spelled out, defaults filled from the node definitions) and its UI twin workflows/<template name>.json,
laid out in titled groups per stage with a note first (atop_models.workflow_layout).

ComfyUI's template browser (frontend 1.32.9) shows a custom node's template by its file name only: the name
is the card's title and, with '-' and '_' read as spaces, its description. So each UI template is named by a
one-line description (TEMPLATES below); its thumbnail is the .jpg of the same name (scripts/make_thumbnails.py).
A workflow without a TEMPLATES entry keeps its key as the file name and gets a note written from its nodes.

Node definitions come from a real ComfyUI started with the pack (tests/comfy_host.py), so the files match
what the server and the page expect. Run: .venv/bin/python scripts/make_workflows.py"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atop_models.workflow_format import api_to_ui, fill_widget_defaults  # noqa: E402
from tests.comfy_host import ComfyHost  # noqa: E402

SAMPLE_MESH = "3d/atop_sample_cabinet.glb"  # written into ComfyUI's input folder (README, tests)
SHELL_MESH = "3d/atop_sample_cabinet_shell.glb"  # the same cabinet as one mesh without parts (its outer shell)
UNPAINTED = "example.png"  # ComfyUI ships it in input/: Part From Masks says to paint it first
MODEL = "imagedream-ipmv-diffusers"
PART = "door"


def link(node: int | str, slot: int = 0) -> list:
    return [str(node), slot]


WORKFLOWS: dict[str, dict] = {
    # Foundation: a procedural object, its rest-state views and part masks, and a reference motion clip.
    "atop_reference_clips": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "PartMaskRender", "inputs": {"mesh": link(1), "cameras": link(2, 1), "part_name": link(9)}},
        "4": {"class_type": "RenderReferenceMotion", "inputs": {"mesh": link(1), "part_name": link(9),
                                                                "dataset_name": "cabinet_door"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": link(2), "filename_prefix": "atop/views"}},
        "6": {"class_type": "MaskToImage", "inputs": {"mask": link(3)}},
        "7": {"class_type": "SaveImage", "inputs": {"images": link(6), "filename_prefix": "atop/masks"}},
        "8": {"class_type": "SaveImage", "inputs": {"images": link(4), "filename_prefix": "atop/reference_clip"}},
        "9": {"class_type": "PrimitiveString", "inputs": {"value": PART}},
        "10": {"class_type": "PreviewAny", "inputs": {"source": link(1, 1)}},
        "11": {"class_type": "PreviewAny", "inputs": {"source": link(4, 2)}},
    },
    # Joint estimation and export from the ground-truth motion of a procedural cabinet's door.
    "atop_joint_from_reference": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}},
        "2": {"class_type": "GroundTruthPointSequence", "inputs": {"mesh": link(1), "part_name": PART}},
        "3": {"class_type": "OBBAxisSearch", "inputs": {"points": link(2), "mesh": link(1)}},
        "4": {"class_type": "ExportURDF", "inputs": {"mesh": link(1), "joint": link(3), "robot_name": "cabinet",
                                                     "filename_prefix": "cabinet"}},
        "5": {"class_type": "Preview3D", "inputs": {"model_file": link(4, 1)}},
        "6": {"class_type": "SaveImage", "inputs": {"images": link(3, 1), "filename_prefix": "atop/axis_overlay"}},
        "7": {"class_type": "EvaluateJoint", "inputs": {"mesh": link(1), "joint": link(3)}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": link(7)}},
        "9": {"class_type": "PreviewAny", "inputs": {"source": link(4)}},
        "10": {"class_type": "PreviewAny", "inputs": {"source": link(1, 1)}},
    },
    # (The model workflows show nothing that runs without the model: queued without weights, ComfyUI then refuses
# the whole prompt and the page shows why, instead of running part of it and outlining the loader in red.)
# Few-shot personalisation: reference clips of procedural cabinets, then motion-module fine-tuning.
    "atop_finetune_motion": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 1}},
        "2": {"class_type": "RenderReferenceMotion", "inputs": {"mesh": link(1), "part_name": PART,
                                                                "dataset_name": "cabinet_doors"}},
        "3": {"class_type": "LoadInflatedImageDream", "inputs": {"base_model": MODEL}},
        "4": {"class_type": "MotionModuleFinetune", "inputs": {"model": link(3), "dataset": link(2, 2),
                                                               "save_name": "cabinet_doors"}},
        "5": {"class_type": "LossGraphNode", "inputs": {"loss": link(4, 2), "filename_prefix": "atop/finetune_loss"}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": link(3, 1)}},
        "7": {"class_type": "PreviewAny", "inputs": {"source": link(4, 1)}},
    },
    # Text-driven motion of a part: rest-state views and masks, then the personalised model samples.
    "atop_sample_motion": {
        "1": {"class_type": "LoadPartMesh", "inputs": {"mesh_path": SAMPLE_MESH}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "PartMaskRender", "inputs": {"mesh": link(1), "cameras": link(2, 1), "part_name": PART}},
        "4": {"class_type": "LoadInflatedImageDream", "inputs": {"base_model": MODEL}},
        "5": {"class_type": "MultiViewMotionSample", "inputs": {
            "model": link(4), "views": link(2), "cameras": link(2, 1), "part_masks": link(3),
            "prompt": "the door of the cabinet is being opened"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": link(5, 1), "filename_prefix": "atop/motion"}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": link(4, 1)}},
    },
    # The whole method: text -> multi-view motion -> Gaussians by SDS -> joint -> URDF + animated preview.
    "atop_articulate": {
        "1": {"class_type": "LoadPartMesh", "inputs": {"mesh_path": SAMPLE_MESH}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "PartMaskRender", "inputs": {"mesh": link(1), "cameras": link(2, 1),
                                                         "part_name": link(12)}},
        "4": {"class_type": "LoadInflatedImageDream", "inputs": {"base_model": MODEL}},
        "5": {"class_type": "MultiViewMotionSample", "inputs": {
            "model": link(4), "views": link(2), "cameras": link(2, 1), "part_masks": link(3),
            "prompt": "the door of the cabinet is being opened"}},
        "6": {"class_type": "GaussianSDSLift", "inputs": {
            "mesh": link(1), "part_name": link(12), "cameras": link(2, 1), "guidance": "sds", "video": link(5),
            "model": link(4), "iterations": 300}},
        "7": {"class_type": "OBBAxisSearch", "inputs": {"points": link(6), "mesh": link(1)}},
        "8": {"class_type": "ExportURDF", "inputs": {"mesh": link(1), "joint": link(7), "robot_name": "cabinet",
                                                     "filename_prefix": "cabinet"}},
        "9": {"class_type": "Preview3D", "inputs": {"model_file": link(8, 1)}},
        "10": {"class_type": "SaveImage", "inputs": {"images": link(5, 1), "filename_prefix": "atop/motion"}},
        "11": {"class_type": "SaveImage", "inputs": {"images": link(7, 1), "filename_prefix": "atop/axis_overlay"}},
        "12": {"class_type": "PrimitiveString", "inputs": {"value": PART}},
        "13": {"class_type": "PreviewAny", "inputs": {"source": link(6, 3)}},
        "14": {"class_type": "PreviewAny", "inputs": {"source": link(8)}},
    },
    # Without weights: lift a ground-truth motion video with "video" guidance, then the joint and export.
    "atop_lift_reference_motion": {
        "1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}},
        "2": {"class_type": "MeshMultiViewRender", "inputs": {"mesh": link(1)}},
        "3": {"class_type": "MultiViewVideoFromMesh", "inputs": {"mesh": link(1), "cameras": link(2, 1),
                                                                 "part_name": link(9)}},
        "4": {"class_type": "GaussianSDSLift", "inputs": {
            "mesh": link(1), "part_name": link(9), "cameras": link(2, 1), "guidance": "video", "video": link(3),
            "motion": "joint", "iterations": 150}},
        "5": {"class_type": "OBBAxisSearch", "inputs": {"points": link(4), "mesh": link(1)}},
        "6": {"class_type": "ExportURDF", "inputs": {"mesh": link(1), "joint": link(5), "robot_name": "cabinet",
                                                     "filename_prefix": "cabinet_lifted"}},
        "7": {"class_type": "Preview3D", "inputs": {"model_file": link(6, 1)}},
        "8": {"class_type": "SaveImage", "inputs": {"images": link(4, 1), "filename_prefix": "atop/lift_preview"}},
        "9": {"class_type": "PrimitiveString", "inputs": {"value": PART}},
        "10": {"class_type": "PreviewAny", "inputs": {"source": link(4, 3)}},
        "11": {"class_type": "PreviewAny", "inputs": {"source": link(6)}},
        "12": {"class_type": "PreviewAny", "inputs": {"source": link(1, 1)}},
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
        # No Save Image of the generated motion here: with the painting steps the graph would not fit the
        # page at a zoom where it draws text (the sampling workflow shows the motion).
    },
}

# Wall time of each workflow as shipped on a 2-core CPU, queued on a running server, measured on a shared,
# busy machine (so an upper figure; see README, "Workflows"). Workflows that need weights are not timed here:
# with tiny random models a time says nothing, so their notes say GPU.
CPU_SECONDS: dict[str, int] = {"atop_lift_reference_motion": 141, "atop_joint_from_reference": 3,
                               "atop_reference_clips": 7}

PREVIEW_3D_TITLE = "Preview 3D: press play, the part moves while the pointer is over the view"
# titles of display nodes by the output they show: (source class, output index) -> title
OUTPUT_TITLES = {
    ("ProceduralObject", 1): "Parts and joints of the object",
    ("LoadPartMesh", 1): "Parts of the mesh (names for part_name)",
    ("LoadInflatedImageDream", 1): "What was loaded",
    ("GaussianSDSLift", 3): "Lift info (rasteriser, UNCERTAIN flags)",
    ("ExportURDF", 0): "URDF path",
    ("EvaluateJoint", 0): "Joint error against the ground truth",
    ("RenderReferenceMotion", 2): "Saved clip folder",
    ("MotionModuleFinetune", 1): "Saved motion module",
    ("PartFromMasks", 3): "How the part agrees with the paint",
}
# text displays whose text runs long (a paragraph) get a taller node: (source class, output index) -> height
LONG_TEXTS = {("ProceduralObject", 1): 170, ("EvaluateJoint", 0): 150, ("GaussianSDSLift", 3): 150,
              ("LoadInflatedImageDream", 1): 130}
SOURCE_TITLES = {"PrimitiveString": "Part name"}  # feeds every node that needs the part


@dataclass
class Template:
    file: str  # the UI template's file name without .json: what the template browser shows
    needs: str  # what it needs to run, one line
    change: list[str]  # what to change, one item a line
    about: str  # what it does, one or two sentences
    titles: dict[str, str] = field(default_factory=dict)  # node id -> title, beyond the automatic ones
    steps: list[str] = field(default_factory=list)  # how to use it, in order, where it takes more than a run


NO_WEIGHTS = "no model weights; runs on a CPU"
WEIGHTS = ("ImageDream weights in models/atop/imagedream (the README's model table) and a CUDA GPU "
           "(a CPU runs it only with tiny test models)")

WEIGHTS_AND_MODULE = WEIGHTS + "; a fine-tuned motion module in the loader's `motion_module`"
CHANGE_MESH = "the mesh: `mesh_path` of ATOP Load Part Mesh (a GLB in ComfyUI's input/3d/)"
CHANGE_PROMPT = "the prompt of ATOP Multi-View Motion Sample; the motion module in the loader"

TEMPLATES: dict[str, Template] = {
    "atop_lift_reference_motion": Template(
        file="ATOP Lift a reference motion into a joint (no weights, CPU)",
        needs=NO_WEIGHTS,
        about="A multi-view video of the part moving (rendered here from the object's true joint) is lifted to "
              "per-frame 3D Gaussians; the joint is found from them and exported as a URDF and an animated GLB.",
        change=["the object: `category` and `seed` of ATOP Procedural Object, or ATOP Load Part Mesh with your "
                "own segmented GLB/OBJ/URDF in its place",
                "the part: the **Part name** node, which feeds every node that needs it (the parts are listed "
                "in *Parts and joints*)",
                "time against accuracy: `iterations` and `resolution` of ATOP Gaussian SDS Lift"]),
    "atop_joint_from_reference": Template(
        file="ATOP Joint from ground-truth points (no weights, CPU)",
        needs=NO_WEIGHTS,
        about="Points sampled on the part along its true joint go straight to the joint search: the fastest "
              "way to see the joint stage, the URDF export and the animated preview, with the error measured.",
        change=["the object: `category` and `seed` of ATOP Procedural Object",
                "the part: `part_name` of ATOP Ground-Truth Point Sequence (see *Parts and joints*)",
                "harder input: `noise`, `outliers`, `subsample` of the point sequence"]),
    "atop_reference_clips": Template(
        file="ATOP Reference clips for fine-tuning (no weights, CPU)",
        needs=NO_WEIGHTS,
        about="Renders an object's rest views, the moving part's masks and a clip of the part opening, saved as "
              "a fine-tuning clip under output/atop_clips/<dataset_name>/.",
        change=["the object: `category` and `seed` of ATOP Procedural Object",
                "the part: the **Part name** node (see *Parts and joints*)",
                "the dataset: `dataset_name` and `prompt` of ATOP Render Reference Motion"]),
    "atop_finetune_motion": Template(
        file="ATOP Fine-tune the motion module (needs ImageDream weights, GPU)",
        needs=WEIGHTS,
        about="Few-shot training of the motion module on reference clips; the module is saved under "
              "models/atop/motion_modules/ for the loader to list.",
        change=["the clips: `dataset_name` (or point `dataset` at your own clip folder)",
                "training: `steps`, `learning_rate`, `batch_size` of ATOP Motion Module Finetune",
                "the module's name: `save_name`"]),
    "atop_sample_motion": Template(
        file="ATOP Sample the motion of a part from text (needs ImageDream weights, GPU)",
        needs=WEIGHTS_AND_MODULE,
        about="The personalised multi-view model generates the part's motion from the rest views, the part's "
              "masks and the prompt.",
        change=[CHANGE_MESH,
                "the part: `part_name` of ATOP Part Mask Render (a name the mesh lacks is refused with its parts)",
                CHANGE_PROMPT]),
    "atop_articulate": Template(
        file="ATOP Articulate a part from a text prompt (needs ImageDream weights, GPU)",
        needs=WEIGHTS_AND_MODULE,
        about="The whole method: the model generates the part's motion from the prompt, per-frame Gaussians are "
              "fitted to it by score distillation, and the joint is found and exported with an animated preview.",
        change=[CHANGE_MESH, "the part: the **Part name** node (a name the mesh lacks is refused with its parts)",
                CHANGE_PROMPT]),
    "atop_paint_part": Template(
        file="ATOP Paint the part of a mesh without parts (needs ImageDream weights, GPU)",
        needs=WEIGHTS_AND_MODULE + " (painting and ATOP Part From Masks alone need nothing)",
        about="For a mesh without parts (generated, scanned, one-piece download): paint the part that moves on "
              "the rendered views; ATOP Part From Masks splits it out, then the whole method articulates it.",
        change=["the mesh: `mesh_path` of ATOP Load Part Mesh, or a `MESH` from ComfyUI's 3D nodes into its "
                "`comfy_mesh` input", "the part's name: `part_name` of ATOP Part From Masks", CHANGE_PROMPT],
        steps=["**Render the views to paint.** Click the *Save Image* node of the views (`atop/paint_views`) and "
               "press **Execute** (the play button) in the toolbox above it: only the views are rendered, side "
               "by side.",
               "**Bring them to Load Image.** Right-click that *Save Image* node: **Copy (Clipspace)**. "
               "Right-click the *Load Image* node: **Paste (Clipspace)**.",
               "**Paint.** Right-click *Load Image*: **Open in MaskEditor | Image Canvas**. Paint the moving part "
               "on any of the views (one is enough; leave the others blank; a few pixels over its edge are fine) "
               "and **Save**. Or paint elsewhere: erase the part to transparency in the saved PNG and upload it "
               "to *Load Image*.",
               "**Run** the workflow. *ATOP Part From Masks* splits the part out: its preview tints the part "
               "orange and outlines your paint in blue; its info says how well they agree. The rest samples the "
               "part's motion, lifts it, finds the joint and exports the URDF and an animated preview."]),
}


def duration(name: str) -> str:
    seconds = CPU_SECONDS.get(name)
    if seconds is None:
        return ""
    return f"about {seconds} s" if seconds < 90 else f"about {round(seconds / 60)} min"


def note_for(name: str, prompt: dict, info: dict) -> str:
    """The Markdown note placed first in the workflow: what it does, what it needs, what to change."""
    t = TEMPLATES.get(name)
    if t is None:  # a workflow without a written note: what its nodes say
        needs_weights = any(n["class_type"] == "LoadInflatedImageDream" for n in prompt.values())
        editable = sorted({k for n in prompt.values() for k, v in n["inputs"].items()
                           if k in ("mesh_path", "category", "part_name", "prompt", "value")
                           and not isinstance(v, list)})
        t = Template(file=name, needs=WEIGHTS if needs_weights else NO_WEIGHTS, about="",
                     change=[f"`{k}`" for k in editable])
    lines = [f"## {t.file.split(' (')[0]}", ""]
    if t.about:
        lines += [t.about, ""]
    time_text = duration(name)
    if t.steps:
        lines += ["**Steps:**"] + [f"{i}. {step}" for i, step in enumerate(t.steps, 1)] + [""]
    lines += [f"**Needs:** {t.needs}" + (f"; {time_text} on 2 CPU cores." if time_text else "."), "",
              "**Change:**"] + [f"- {c}" for c in t.change]
    shown = [OUTPUT_TITLES[(prompt[n["inputs"]["source"][0]]["class_type"], n["inputs"]["source"][1])]
             for n in prompt.values() if n["class_type"] == "PreviewAny"]
    if any(n["class_type"] == "Preview3D" for n in prompt.values()):
        lines += ["", "**Preview 3D:** press play in its menu; the part opens and closes while the pointer is "
                      "over the view (ComfyUI redraws the view only then)."]
    if shown:
        lines += ["", "**Shown after a run:** " + "; ".join(s.split(" (")[0] for s in shown) + "."]
    return "\n".join(lines)


def node_titles(name: str, prompt: dict) -> dict[str, str]:
    titles: dict[str, str] = {}
    for nid, node in prompt.items():
        cls = node["class_type"]
        if cls == "Preview3D":
            titles[nid] = PREVIEW_3D_TITLE
        elif cls in SOURCE_TITLES:
            titles[nid] = SOURCE_TITLES[cls]
        elif cls == "PreviewAny":
            src = node["inputs"]["source"]
            titles[nid] = OUTPUT_TITLES.get((prompt[src[0]]["class_type"], src[1]), "Result")
    titles.update(TEMPLATES[name].titles if name in TEMPLATES else {})
    return titles


def text_sizes(prompt: dict) -> dict[str, tuple[int, int]]:
    from atop_models.workflow_layout import NODE_W

    sizes = {}
    for nid, node in prompt.items():
        src = node["inputs"].get("source")
        if node["class_type"] == "PreviewAny" and isinstance(src, list):
            height = LONG_TEXTS.get((prompt[src[0]]["class_type"], src[1]))
            if height:
                sizes[nid] = (NODE_W, height)
    return sizes


def template_file(name: str) -> str:
    return TEMPLATES[name].file if name in TEMPLATES else name


def main() -> int:
    host = ComfyHost(Path(tempfile.mkdtemp(prefix="atop_workflows_"))).start()
    try:
        info = host.object_info()
    finally:
        host.stop()
    missing_any = False
    keep = {f"{template_file(n)}.json" for n in WORKFLOWS}
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
        titles = node_titles(name, prompt)
        ui = api_to_ui(api, info, title=template_file(name), note=note_for(name, prompt, info), node_titles=titles,
                       node_sizes=text_sizes(prompt))
        ui["extra"]["atop_api_twin"] = f"api/{name}.json"
        for node_id, title in titles.items():
            api[node_id]["_meta"] = {"title": title}
        (ROOT / "workflows" / "api").mkdir(parents=True, exist_ok=True)
        (ROOT / "workflows" / "api" / f"{name}.json").write_text(json.dumps(api, indent=2) + "\n")
        (ROOT / "workflows" / f"{template_file(name)}.json").write_text(json.dumps(ui, indent=2) + "\n")
        sys.stdout.write(f"wrote {name}: {template_file(name)}.json\n")
    for stale in (ROOT / "workflows").glob("*.json"):
        if stale.name not in keep:
            stale.unlink()
            sys.stdout.write(f"removed {stale.name} (no longer generated)\n")
    return 1 if missing_any else 0


if __name__ == "__main__":
    raise SystemExit(main())
