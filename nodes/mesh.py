"""Mesh nodes: load a segmented mesh into the normalised frame and list its parts."""
from __future__ import annotations

import os

from ..atop_models.mesh.loaders import describe_parts, load_part_mesh
from ._comfy import input_directory, io, output_directory, user_errors
from .types import PartMeshType


def resolve_mesh_path(mesh_path: str) -> str:
    """Absolute paths stay; relative ones (Load3D's "3d/x.glb", optionally "[input]"/"[output]" annotated)
    are resolved against ComfyUI's input (or output) folder."""
    p = mesh_path.strip().strip('"')
    base = input_directory()
    if p.endswith(" [output]"):
        p, base = p[: -len(" [output]")], output_directory()
    elif p.endswith(" [input]"):
        p = p[: -len(" [input]")]
    p = os.path.expanduser(p)
    return p if os.path.isabs(p) else os.path.join(base, p)


class LoadPartMesh(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoadPartMesh",
            display_name="ATOP Load Part Mesh",
            category="ATOP/mesh",
            description="Load a segmented mesh (GLB/GLTF scene parts, OBJ groups, URDF links or a "
                        "PartNet-Mobility folder), centre it and scale it to unit size, and list its parts.",
            inputs=[
                io.String.Input("mesh_path", default="", tooltip="Mesh file or PartNet-Mobility folder. A relative "
                                "path is resolved against ComfyUI's input folder, so Load3D's '3d/model.glb' works."),
                io.Combo.Input("up_axis", options=["auto", "z", "y"], default="auto",
                               tooltip="Up axis of the source: auto = Y for glTF/GLB, Z for URDF/OBJ/others."),
            ],
            outputs=[
                PartMeshType.Output(display_name="mesh", tooltip="The segmented mesh in the normalised frame "
                                    "(+Z up, centred, largest side 1), with ground-truth joints when known."),
                io.String.Output(display_name="parts", tooltip="One line per part: name, faces and the joint "
                                 "that moves it (if the source defines one); then 'note:' lines for what loading "
                                 "left out or read differently (a texture outside the asset's folder, a missing "
                                 "material file)."),
            ],
        )

    @classmethod
    def execute(cls, mesh_path: str, up_axis: str = "auto") -> io.NodeOutput:
        with user_errors("LoadPartMesh"):
            mesh = load_part_mesh(resolve_mesh_path(mesh_path), up_axis=up_axis)
            return io.NodeOutput(mesh, describe_parts(mesh))


NODES = [LoadPartMesh]
