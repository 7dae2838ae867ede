"""Export stage: URDF folder with link meshes and an animated GLB that ComfyUI's Preview 3D plays."""
from __future__ import annotations

import os

from ..atop_models.errors import InputError
from ..atop_models.export.animated_glb import write_animated_glb
from ..atop_models.export.urdf import write_urdf
from ._comfy import io, output_directory, ui, user_errors
from ._joints import joint_list
from .types import JointType, PartMeshType


def _next_folder(base: str, prefix: str) -> str:
    os.makedirs(base, exist_ok=True)
    n = 1
    existing = set(os.listdir(base))
    while f"{prefix}_{n:05d}" in existing:
        n += 1
    return f"{prefix}_{n:05d}"


class ExportURDF(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ExportURDF",
            display_name="ATOP Export URDF",
            category="ATOP/export",
            is_output_node=True,
            description="Writes a URDF (base link + one link per articulated part, OBJ/MTL/PNG or GLB meshes) "
                        "and an animated GLB, shown in the node and playable in Preview 3D.",
            inputs=[
                PartMeshType.Input("mesh", tooltip="The segmented mesh."),
                JointType.Input("joint", tooltip="Joint(s) to export (one per articulated part)."),
                io.String.Input("robot_name", default="object", tooltip="Robot name inside the URDF."),
                io.String.Input("filename_prefix", default="atop", tooltip="Folder name prefix under output/atop/."),
                io.Combo.Input("mesh_format", options=["obj", "glb"], default="obj",
                               tooltip="Link mesh format: OBJ with MTL and textures, or GLB."),
                io.Combo.Input("frame", options=["source", "normalized"], default="source",
                               tooltip="Source file frame and units, or the normalised frame."),
            ],
            outputs=[
                io.String.Output(display_name="urdf_path", tooltip="Absolute path of the written .urdf file."),
                io.String.Output(display_name="animated_glb_path", tooltip="Absolute path of the animated GLB."),
            ],
        )

    @classmethod
    def execute(cls, mesh, joint, robot_name, filename_prefix, mesh_format, frame) -> io.NodeOutput:
        with user_errors("ExportURDF"):
            joints = joint_list(joint)
            prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in filename_prefix) or "atop"
            if not robot_name.strip():
                raise InputError("robot name is empty; give the URDF robot a name")
            base = os.path.join(output_directory(), "atop")
            name = _next_folder(base, prefix)
            folder = os.path.join(base, name)
            urdf = write_urdf(mesh, joints, folder, robot_name=robot_name.strip(), mesh_format=mesh_format,
                              frame=frame)
            glb = write_animated_glb(mesh, joints, os.path.join(folder, "animated.glb"), frame=frame)
        rel = os.path.relpath(str(glb), output_directory()).replace(os.sep, "/")
        return io.NodeOutput(str(urdf), str(glb), ui=ui.PreviewUI3D(rel, None))


NODES = [ExportURDF]
