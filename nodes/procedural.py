"""Procedural sample objects with ground-truth joints, and reference motion clips rendered from them
(fine-tuning data for the motion module)."""
from __future__ import annotations

import os
import re

import numpy as np
import torch

from ..atop_models.errors import InputError
from ..atop_models.mesh.procedural import CATEGORIES, describe, make_object
from ..atop_models.training.clips import render_reference_clip, write_clip
from ._comfy import images_to_comfy, io, output_directory, progress_callback, user_errors
from ._joints import joint_moving
from .types import JointType, PartMeshType

CLIPS_SUBFOLDER = "atop_clips"


class ProceduralObject(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ProceduralObject",
            display_name="ATOP Procedural Object",
            category="ATOP/mesh",
            description="A procedural articulated object (cabinet, drawers, appliances, box, laptop, ...) with "
                        "textured parts and exact ground-truth joints, already in the normalised frame.",
            inputs=[
                io.Combo.Input("category", options=list(CATEGORIES), default="cabinet",
                               tooltip="Kind of object to build."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=False,
                             tooltip="Varies proportions, colours, textures and hinge side; the same seed always "
                                     "gives the same object."),
            ],
            outputs=[
                PartMeshType.Output(display_name="mesh", tooltip="The object: parts, textures and ground-truth "
                                    "joints (+Z up, front facing -Y, largest side 1)."),
                io.String.Output(display_name="description", tooltip="Size, parts and every joint (type, axis, "
                                 "origin, range) in one paragraph."),
            ],
        )

    @classmethod
    def execute(cls, category: str, seed: int) -> io.NodeOutput:
        with user_errors("ProceduralObject"):
            mesh = make_object(category, seed)
            return io.NodeOutput(mesh, describe(mesh))


def _safe_name(name: str) -> str:
    """A single folder name from user text (no separators, no '..')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    if not cleaned:
        raise InputError(f"dataset name '{name}' has no usable characters; use letters, digits, '-', '_' or '.'")
    return cleaned


def _next_clip_folder(dataset: str, stem: str) -> str:
    for i in range(1000):
        path = os.path.join(dataset, f"{stem}_{i:03d}")
        if not os.path.exists(path):
            return path
    raise InputError(f"dataset folder '{dataset}' already holds 1000 clips named '{stem}_*'; use another dataset name")


class RenderReferenceMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="RenderReferenceMotion",
            display_name="ATOP Render Reference Motion",
            category="ATOP/training",
            description="Renders a part opening along its ground-truth joint from ImageDream's 4 views and saves "
                        "it as a reference clip (frames, first-frame part masks, cameras, prompt) into "
                        "output/atop_clips/<dataset>, the folder the motion-module fine-tuning reads.",
            is_output_node=True,
            inputs=[
                PartMeshType.Input("mesh", tooltip="Mesh with ground-truth joints (ATOP Procedural Object, or a "
                                   "URDF / PartNet-Mobility object from ATOP Load Part Mesh)."),
                io.String.Input("part_name", default="door", tooltip="The moving part (it must have a joint, or "
                                                                     "connect one)."),
                io.String.Input("prompt", default="", multiline=False,
                                tooltip="Motion prompt stored with the clip; empty = a generated one such as "
                                        "'the door of the cabinet is being opened'."),
                io.Int.Input("num_frames", default=10, min=2, max=64,
                             tooltip="Frames from rest (frame 0) to the opened state (ImageDream motion: 10)."),
                io.Float.Input("fraction", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="How far the last frame opens, as a fraction of the joint's range."),
                io.Float.Input("elevation", default=15.0, min=-30.0, max=60.0, step=0.5,
                               tooltip="Camera elevation in degrees (the 4 views sit at azimuth 0/90/180/270)."),
                io.Int.Input("resolution", default=256, min=64, max=1024, step=8,
                             tooltip="Image size in pixels (the model is trained at 256)."),
                io.String.Input("dataset_name", default="reference",
                                tooltip="Clips are saved under ComfyUI's output folder in atop_clips/<dataset_name>/, "
                                        "one numbered sub-folder per run."),
                JointType.Input("joint", optional=True,
                                tooltip="Move the part by this joint instead of the mesh's ground-truth one: an "
                                        "estimated joint, e.g. for a part painted with ATOP Part From Masks."),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="All frames, view-major: index = view * num_frames + "
                                "frame, [views x frames, H, W, 3]."),
                io.Mask.Output(display_name="part_masks", tooltip="First-frame visible masks of the moving part, "
                               "one per view [views, H, W]."),
                io.String.Output(display_name="clip_folder", tooltip="Absolute path of the saved clip folder."),
            ],
        )

    @classmethod
    def execute(cls, mesh, part_name: str, prompt: str = "", num_frames: int = 10, fraction: float = 1.0,
                elevation: float = 15.0, resolution: int = 256, dataset_name: str = "reference",
                joint=None) -> io.NodeOutput:
        with user_errors("RenderReferenceMotion"):
            part = mesh.part_names[mesh.part_index(part_name)]
            clip = render_reference_clip(mesh, part, num_frames=num_frames, fraction=fraction, prompt=prompt,
                                         resolution=resolution, elevation_deg=elevation,
                                         joint=None if joint is None else joint_moving(joint, part),
                                         on_step=progress_callback(num_frames))
            dataset = os.path.join(output_directory(), CLIPS_SUBFOLDER, _safe_name(dataset_name))
            stem = _safe_name(f"{mesh.name}_{clip.part}")
            folder = str(write_clip(clip, _next_clip_folder(dataset, stem)))
        V, F, H, W, _ = clip.frames.shape
        masks = torch.from_numpy(np.ascontiguousarray(clip.masks, dtype=np.float32))
        return io.NodeOutput(images_to_comfy(clip.frames.reshape(V * F, H, W, 3)), masks, folder)


NODES = [ProceduralObject, RenderReferenceMotion]
