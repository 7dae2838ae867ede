"""Render nodes: multi-view images of a (posed) part mesh from the ImageDream rig, and part masks."""
from __future__ import annotations

import numpy as np
import torch

from ..atop_models.geometry.cameras import imagedream_rig
from ..atop_models.mesh.articulate import posed_vertices
from ..atop_models.render.masks import part_masks, part_silhouettes
from ..atop_models.render.raycast import render_views
from ._comfy import images_to_comfy, io, user_errors
from ._joints import joint_moving
from .types import CamerasType, JointType, PartMeshType


def _pose_inputs() -> list:
    return [
        io.String.Input("part_name", default="", optional=True,
                        tooltip="Part to move before rendering (empty = rest state)."),
        io.Float.Input("joint_value", default=0.0, min=-100.0, max=100.0, step=0.01, optional=True,
                       tooltip="Joint value for that part: radians (revolute) or normalised lengths "
                               "(prismatic); 0 = rest. Must lie within the joint's limits."),
        JointType.Input("joint", optional=True,
                        tooltip="Move the part by this joint (e.g. an estimated one) instead of the mesh's "
                                "ground-truth joint."),
    ]


def posed(mesh, part_name: str, joint_value: float, joint=None):
    """Vertices [V, 3] with ``part_name`` moved to ``joint_value`` (None when nothing moves)."""
    if not part_name.strip() or joint_value == 0.0:
        return None
    part = mesh.part_names[mesh.part_index(part_name)]
    if joint is None:
        return posed_vertices(mesh, {part: joint_value})
    return posed_vertices(mesh, {part: joint_value}, joints=[joint_moving(joint, part)])


class MeshMultiViewRender(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MeshMultiViewRender",
            display_name="ATOP Mesh Multi-View Render",
            category="ATOP/render",
            description="Ray-cast views of the mesh from ImageDream's camera rig (azimuth 0 looks at the front "
                        "from -Y), at rest or with one part moved.",
            inputs=[
                PartMeshType.Input("mesh", tooltip="Segmented mesh from ATOP Load Part Mesh."),
                io.Int.Input("num_views", default=4, min=1, max=64, tooltip="Views evenly spaced in azimuth."),
                io.Float.Input("elevation", default=15.0, min=-89.0, max=89.0, step=0.5,
                               tooltip="Camera elevation in degrees."),
                io.Float.Input("azimuth_start", default=0.0, min=-360.0, max=360.0, step=1.0,
                               tooltip="Azimuth of the first view in degrees (0 = front)."),
                io.Float.Input("fov", default=40.0, min=1.0, max=150.0, step=0.5,
                               tooltip="Vertical field of view in degrees."),
                io.Float.Input("distance", default=2.0, min=0.1, max=100.0, step=0.05,
                               tooltip="Camera distance from the object's centre (the object is unit-sized)."),
                io.Int.Input("resolution", default=256, min=16, max=2048, step=8, tooltip="Image width and height."),
                *_pose_inputs(),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="Rendered views [V, H, W, 3] on white."),
                CamerasType.Output(display_name="cameras", tooltip="The camera rig used (for masks and models)."),
            ],
        )

    @classmethod
    def execute(cls, mesh, num_views=4, elevation=15.0, azimuth_start=0.0, fov=40.0, distance=2.0,
                resolution=256, part_name="", joint_value=0.0, joint=None) -> io.NodeOutput:
        with user_errors("MeshMultiViewRender"):
            rig = imagedream_rig(num_views=num_views, elevation_deg=elevation, azimuth_start_deg=azimuth_start,
                                 fov_deg=fov, distance=distance, resolution=resolution)
            out = render_views(mesh, rig, vertices=posed(mesh, part_name or "", joint_value, joint))
            return io.NodeOutput(images_to_comfy(out.rgb), rig)


class PartMaskRender(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="PartMaskRender",
            display_name="ATOP Part Mask Render",
            category="ATOP/render",
            description="Masks of one part in every camera view: visible pixels (occlusion aware) or the full "
                        "silhouette.",
            inputs=[
                PartMeshType.Input("mesh", tooltip="Segmented mesh from ATOP Load Part Mesh."),
                CamerasType.Input("cameras", tooltip="Camera rig from ATOP Mesh Multi-View Render."),
                io.String.Input("part_name", default="", tooltip="The part to mask (see Load Part Mesh's parts list)."),
                io.Combo.Input("mode", options=["visible", "silhouette"], default="visible",
                               tooltip="visible: only pixels where the part is the nearest surface; "
                                       "silhouette: the whole part, ignoring what is in front of it."),
                io.Float.Input("joint_value", default=0.0, min=-100.0, max=100.0, step=0.01, optional=True,
                               tooltip="Move the part to this joint value first (0 = rest)."),
                JointType.Input("joint", optional=True,
                                tooltip="Move the part by this joint instead of the mesh's ground-truth joint."),
            ],
            outputs=[io.Mask.Output(display_name="masks", tooltip="Part masks [V, H, W], 1 = part.")],
        )

    @classmethod
    def execute(cls, mesh, cameras, part_name, mode="visible", joint_value=0.0, joint=None) -> io.NodeOutput:
        with user_errors("PartMaskRender"):
            verts = posed(mesh, part_name, joint_value, joint)
            if mode == "silhouette":
                masks = part_silhouettes(mesh, cameras, [part_name], vertices=verts)
            else:
                masks = part_masks(mesh, render_views(mesh, cameras, vertices=verts), [part_name])
            return io.NodeOutput(torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)))


NODES = [MeshMultiViewRender, PartMaskRender]
