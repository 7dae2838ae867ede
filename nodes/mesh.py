"""Mesh nodes: load a segmented mesh into the normalised frame and list its parts."""
from __future__ import annotations

import os

from ..atop_models.errors import InputError
from ..atop_models.mesh.loaders import describe_parts, load_part_mesh, mesh_from_triangles
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
                        "PartNet-Mobility folder), or take ComfyUI's own MESH (Hunyuan3D's output) without a "
                        "file; centre it and scale it to unit size, and list its parts.",
            inputs=[
                io.String.Input("mesh_path", default="", tooltip="Mesh file or PartNet-Mobility folder. A relative "
                                "path is resolved against ComfyUI's input folder, so Load3D's '3d/model.glb' works."),
                io.Combo.Input("up_axis", options=["auto", "z", "y"], default="auto",
                               tooltip="Up axis of the source: auto = Y for glTF/GLB and ComfyUI's MESH, Z for "
                                       "URDF/OBJ/others."),
                io.Mesh.Input("comfy_mesh", optional=True,
                              tooltip="ComfyUI's own MESH (from its Hunyuan3D nodes, or any node that outputs "
                                      "MESH), used instead of mesh_path: one part named 'mesh'; paint its "
                                      "parts with ATOP Part From Masks."),
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
    def execute(cls, mesh_path: str, up_axis: str = "auto", comfy_mesh=None) -> io.NodeOutput:
        with user_errors("LoadPartMesh"):
            if comfy_mesh is None:
                mesh = load_part_mesh(resolve_mesh_path(mesh_path), up_axis=up_axis)
                return io.NodeOutput(mesh, describe_parts(mesh))
            mesh = mesh_from_comfy(comfy_mesh, up_axis)
            parts = describe_parts(mesh)
            if mesh_path.strip():
                parts += f"\nnote: the connected MESH was loaded; mesh_path '{mesh_path.strip()}' was not used"
            return io.NodeOutput(mesh, parts)


def mesh_from_comfy(comfy_mesh, up_axis: str):
    """ComfyUI's MESH (vertices [B, N, 3], faces [B, M, 3] tensors, or unbatched [N, 3] / [M, 3]) as a
    PartMesh; a batch must hold one mesh."""
    vertices, faces = getattr(comfy_mesh, "vertices", None), getattr(comfy_mesh, "faces", None)
    if vertices is None or faces is None:
        raise InputError(f"comfy_mesh is a {type(comfy_mesh).__name__}, not ComfyUI's MESH (vertices and faces); "
                         "connect a MESH output")
    vertices = vertices.detach().cpu().double().numpy() if hasattr(vertices, "detach") else vertices
    faces = faces.detach().cpu().long().numpy() if hasattr(faces, "detach") else faces
    if vertices.ndim == 3 or faces.ndim == 3:
        if vertices.ndim != 3 or faces.ndim != 3 or vertices.shape[0] != 1 or faces.shape[0] != 1:
            raise InputError(f"the MESH holds a batch (vertices {list(vertices.shape)}, faces {list(faces.shape)}); "
                             "connect a batch of one mesh")
        vertices, faces = vertices[0], faces[0]
    return mesh_from_triangles(vertices, faces, up_axis=up_axis)


NODES = [LoadPartMesh]
