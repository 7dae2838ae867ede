"""Ground-truth multi-view motion of a part, as an ATOP_MV_VIDEO (lift it, fine-tune on it, compare with a
sampled motion)."""
from __future__ import annotations

from ..atop_models.errors import InputError
from ..atop_models.mesh.articulate import governing_joint
from ..atop_models.render.motion import opening_values, render_joint_motion
from ._comfy import images_to_comfy, io, progress_callback, user_errors
from ._joints import joint_moving
from .types import CamerasType, JointType, MVVideoType, PartMeshType


class MultiViewVideoFromMesh(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="MultiViewVideoFromMesh",
            display_name="ATOP Multi-View Video From Mesh",
            category="ATOP/motion",
            description="Renders a part opening along its joint (the mesh's ground-truth joint, or a given one) "
                        "from every camera: the reference motion that the lift can fit with 'video' guidance.",
            inputs=[
                PartMeshType.Input("mesh", tooltip="Segmented mesh whose part moves."),
                CamerasType.Input("cameras", tooltip="Cameras to render from (from ATOP Mesh Multi-View Render)."),
                io.String.Input("part_name", default="door", tooltip="The part that moves."),
                io.Int.Input("num_frames", default=10, min=2, max=64,
                             tooltip="Frames from rest (frame 0) to the opened state."),
                io.Float.Input("fraction", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="How far the last frame opens, as a fraction of the joint's range."),
                io.String.Input("prompt", default="", optional=True, tooltip="Text stored with the video."),
                JointType.Input("joint", optional=True,
                                tooltip="Move the part by this joint instead of the mesh's ground-truth one."),
            ],
            outputs=[
                MVVideoType.Output("video", tooltip="Frames [views, frames, H, W, 3], cameras, first-frame masks."),
                io.Image.Output("frames", tooltip="Every frame of every view (view-major), for previewing."),
                io.Mask.Output("part_masks", tooltip="First-frame visible masks of the moving part, one per view."),
            ],
        )

    @classmethod
    def execute(cls, mesh, cameras, part_name, num_frames, fraction, prompt="", joint=None) -> io.NodeOutput:
        import torch

        with user_errors("MultiViewVideoFromMesh"):
            part = mesh.part_names[mesh.part_index(part_name)]
            if joint is not None:
                chosen = joint_moving(joint, part)
            else:
                chosen = governing_joint(mesh, part)
                if chosen is None:
                    articulated = sorted({j.child for j in mesh.joints}) or ["none"]
                    raise InputError(f"part '{part}' has no joint in this mesh; articulated parts: "
                                     f"{', '.join(articulated)}; or connect an estimated joint")
            values = opening_values(chosen, num_frames, fraction)
            video = render_joint_motion(mesh, chosen, values, cameras, prompt=prompt,
                                        on_step=progress_callback(len(values)))
        V, F, H, W, _ = video.frames.shape
        return io.NodeOutput(video, images_to_comfy(video.frames.reshape(V * F, H, W, 3)),
                             torch.from_numpy(video.part_masks))


NODES = [MultiViewVideoFromMesh]
