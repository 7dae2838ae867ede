"""Painting nodes: the rendered views as one image for ComfyUI's mask editor, and a new part from the masks
painted on it (meshes without parts: generated, scanned, single-mesh downloads)."""
from __future__ import annotations

import numpy as np
import torch

from ..atop_models.mesh.part_from_masks import BLANK_VIEW_CHOICES, HIDDEN_CHOICES, part_from_masks
from ..atop_models.render.painted_masks import masks_per_view, side_by_side
from ._comfy import comfy_to_images, images_to_comfy, io, user_errors
from .types import CamerasType, PartMeshType


class ViewsSideBySide(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ViewsSideBySide",
            display_name="ATOP Views Side By Side",
            category="ATOP/render",
            description="The rendered views in one row (view 0 on the left), as one image to paint on in "
                        "ComfyUI's mask editor. ATOP Part From Masks cuts a mask painted on it back into views.",
            inputs=[io.Image.Input("images", tooltip="Views [V, H, W, 3] from ATOP Mesh Multi-View Render.")],
            outputs=[io.Image.Output(display_name="image", tooltip="One image [1, H, V x W, 3]: the views side "
                                                                   "by side.")],
        )

    @classmethod
    def execute(cls, images) -> io.NodeOutput:
        return io.NodeOutput(images_to_comfy(side_by_side(comfy_to_images(images))))


class PartFromMasks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="PartFromMasks",
            display_name="ATOP Part From Masks",
            category="ATOP/mesh",
            description="Splits the part painted on the rendered views out of the mesh as a new part, with its "
                        "own vertices along the cut so it can move: faces vote with their painted pixels, faces "
                        "crossing the painted edge are subdivided to follow it, faces no painted view sees take "
                        "the side of their surroundings. For meshes without parts, or a part the mesh lacks.",
            inputs=[
                PartMeshType.Input("mesh", tooltip="The mesh (ATOP Load Part Mesh): one part or several."),
                CamerasType.Input("cameras", tooltip="The cameras of the views the masks were painted on (ATOP "
                                                     "Mesh Multi-View Render)."),
                io.Mask.Input("masks", tooltip="The part painted white: one mask per view [V, H, W], or one mask "
                                               "over the views side by side (Load Image's mask of the painted "
                                               "ATOP Views Side By Side image). Views left empty say nothing: "
                                               "painting one view is enough."),
                io.String.Input("part_name", default="part",
                                tooltip="Name of the new part (must not exist yet), e.g. 'door'."),
                io.Float.Input("coverage", default=0.5, min=0.01, max=1.0, step=0.01,
                               tooltip="Share of a face's visible pixels (over the painted views) that must be "
                                       "painted for it to join the part."),
                io.Int.Input("refine_levels", default=6, min=0, max=10,
                             tooltip="Times a face crossing the painted edge may be split in four so the cut "
                                     "follows the paint (about a pixel); 0 = whole faces only."),
                io.Combo.Input("hidden", options=list(HIDDEN_CHOICES), default="attach",
                               tooltip="Pieces no painted view sees at all (a drawer's box, shelves inside): "
                                       "attach = they go with the surface they touch (the painted side when "
                                       "they touch both and lie behind the paint); static = they stay."),
                io.Combo.Input("blank_views", options=list(BLANK_VIEW_CHOICES), default="unknown",
                               tooltip="What a view left blank means: unknown = it says nothing (paint one view, "
                                       "the rest follows); no part = the part is not in that view (on a "
                                       "one-piece mesh painted in one view, keeps the sides behind the part "
                                       "out of it)."),
            ],
            outputs=[
                PartMeshType.Output(display_name="mesh", tooltip="The mesh with the new part; the rest keeps its "
                                    "parts (a part that gave all its faces is removed)."),
                io.Mask.Output(display_name="part_masks", tooltip="Visible pixels of the new part in every view "
                               "[V, H, W] (also where nothing was painted): the masks for motion sampling."),
                io.Image.Output(display_name="preview", tooltip="Every view with the new part tinted orange and "
                                "the painted masks outlined in blue."),
                io.String.Output(display_name="info", tooltip="Faces and surface share of the part, how hidden "
                                 "faces were decided, subdivided faces, and how well masks and part agree."),
                io.String.Output(display_name="part_name", tooltip="The new part's name, for the nodes that ask "
                                 "for it."),
            ],
        )

    @classmethod
    def execute(cls, mesh, cameras, masks, part_name="part", coverage=0.5, refine_levels=6,
                hidden="attach", blank_views="unknown") -> io.NodeOutput:
        with user_errors("PartFromMasks"):
            per_view = masks_per_view(masks.detach().cpu().float().numpy(), cameras)
            result = part_from_masks(mesh, cameras, per_view, part_name, coverage=coverage,
                                     refine_levels=refine_levels, hidden=hidden, blank_views=blank_views)
        return io.NodeOutput(result.mesh, torch.from_numpy(np.ascontiguousarray(result.part_masks)),
                             images_to_comfy(result.preview), result.info, result.part_name)


NODES = [ViewsSideBySide, PartFromMasks]
