"""URDF export: a base link (static parts), one child link per articulated part, joints on their axes.

Layout ``links`` (default): ``<robot>.urdf`` + ``meshes/<part>.obj|glb`` written in each link's own frame
(link frames sit at their joint's origin, unrotated, so visual origins are identity). Layout ``partnet``:
``mobility.urdf`` + ``textured_objs/<part>.*`` in object coordinates, the child visual origin being the
negated pivot (PartNet-Mobility's convention). Several joints (different parts of one object) share one
URDF; a part below another articulated part (e.g. a handle on a door) gets its own link chained under it.

Frames: ``frame="source"`` writes the source file's frame and units (``inverse(normalized_from_source)``
applied to vertices, joint origins and axes; prismatic limits scaled), ``"normalized"`` the normalised frame.
Meshes are Z-up in both formats (URDF consumers do not convert glTF's Y-up). Writing is atomic: a temporary
folder beside ``out_dir`` is renamed into place; on failure nothing is left behind.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import new_temp_folder, replace_folder
from ..geometry.transforms import joint_in_frame
from ..types import Joint, PartMesh
from .glb import Y_UP_FROM_Z_UP, part_mesh_to_scene

log = logging.getLogger("atop")

BASE_LINK = "base"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "part"


def output_frame(mesh: PartMesh, frame: str) -> np.ndarray:  # [4, 4] out_from_normalized
    if frame == "source":
        return np.linalg.inv(mesh.normalized_from_source)
    if frame == "normalized":
        return np.eye(4)
    raise InputError(f"frame '{frame}' is not supported; use 'source' or 'normalized'")


def link_assignment(mesh: PartMesh, joints: list[Joint]) -> tuple[dict[str, str], dict[str, str]]:
    """part -> link key (a joint's child part, or BASE_LINK) and joint child -> parent link key.

    A part belongs to the nearest exported joint above it, following rigid attachments and the mesh's own
    (not exported) joints, which are then treated as fixed."""
    children = {j.child for j in joints}
    own = {j.child: j.parent for j in mesh.joints}

    def link_of(part: str | None) -> str:
        seen = set()
        while part is not None and part not in seen:
            seen.add(part)
            if part in children:
                return part
            part = mesh.attached.get(part, own.get(part))
        return BASE_LINK

    part_link = {p: link_of(p) for p in mesh.part_names}
    parent_link = {j.child: link_of(j.parent) if j.parent is not None else BASE_LINK for j in joints}
    return part_link, parent_link


def _check_joints(mesh: PartMesh, joints: list[Joint]) -> list[Joint]:
    if not joints:
        raise InputError("no joints to export; connect an estimated joint (ATOP_JOINT) or a list of them")
    out, seen = [], set()
    for j in joints:
        part = mesh.part_names[mesh.part_index(j.child)] if j.child else ""
        if not part:
            raise InputError("a joint has no child part name; set the part the joint moves")
        if part in seen:
            raise InputError(f"two joints move part '{part}'; export one joint per part")
        seen.add(part)
        out.append(j.replace(child=part, parent=j.parent if j.parent in mesh.part_names else None))
    return out


def _write_part_mesh(geom, folder: Path, stem: str, mesh_format: str) -> str:
    """Write one part's trimesh geometry; returns the main file name. OBJ gets its MTL and PNG textures."""
    if mesh_format == "glb":
        (folder / f"{stem}.glb").write_bytes(geom.export(file_type="glb"))
        return f"{stem}.glb"
    from trimesh.exchange.obj import export_obj

    text, files = export_obj(geom, include_texture=True, return_texture=True, mtl_name=f"{stem}.mtl")
    renames = {name: f"{stem}_{i}{os.path.splitext(name)[1]}" for i, name in enumerate(sorted(files))
               if not name.endswith(".mtl")}
    for name, data in files.items():
        if name.endswith(".mtl"):
            data = data.decode("utf-8") if isinstance(data, bytes) else data
            for old, new in renames.items():
                data = data.replace(old, new)
            (folder / name).write_text(data)
        else:
            (folder / renames[name]).write_bytes(data)
    (folder / f"{stem}.obj").write_text(text)
    return f"{stem}.obj"


def _xyz(v) -> str:
    return " ".join(f"{float(x):.10g}" for x in v)


def build_urdf(mesh: PartMesh, joints: list[Joint], folder: Path, *, robot_name: str, mesh_format: str,
               frame: str, layout: str) -> Path:
    """Write the URDF and its meshes into ``folder`` (not atomic; see ``write_urdf``)."""
    T = output_frame(mesh, frame)
    out_joints = {j.child: joint_in_frame(j, T) for j in joints}
    part_link, parent_link = link_assignment(mesh, joints)
    link_origin = {BASE_LINK: np.zeros(3)}
    link_origin.update({c: j.origin for c, j in out_joints.items()})
    link_name = {BASE_LINK: BASE_LINK}
    link_name.update({c: f"link_{_safe(c)}" for c in out_joints})

    sub = "textured_objs" if layout == "partnet" else "meshes"
    (folder / sub).mkdir(parents=True)
    scene = part_mesh_to_scene(mesh, frame=frame)
    robot = ET.Element("robot", name=robot_name)
    visuals: dict[str, list[tuple[str, str]]] = {k: [] for k in link_name}
    for part in mesh.part_names:
        if part not in scene.geometry:
            continue
        geom = scene.geometry[part].copy()
        geom.vertices = np.asarray(geom.vertices) @ Y_UP_FROM_Z_UP  # glTF Y-up back to Z-up
        key = part_link[part]
        if layout == "links":
            geom.vertices = np.asarray(geom.vertices) - link_origin[key]
        fname = _write_part_mesh(geom, folder / sub, _safe(part), mesh_format)
        visuals[key].append((part, f"{sub}/{fname}"))
    for key, name in link_name.items():
        link = ET.SubElement(robot, "link", name=name)
        offset = np.zeros(3) if layout == "links" else -link_origin[key]
        for part, fname in visuals[key]:
            for tag in ("visual", "collision"):
                el = ET.SubElement(link, tag, name=_safe(part))
                ET.SubElement(el, "origin", xyz=_xyz(offset), rpy="0 0 0")
                ET.SubElement(ET.SubElement(el, "geometry"), "mesh", filename=fname)
        inertial = ET.SubElement(link, "inertial")
        ET.SubElement(inertial, "mass", value="1")
        ET.SubElement(inertial, "inertia", ixx="0.01", ixy="0", ixz="0", iyy="0.01", iyz="0", izz="0.01")
    for child, j in out_joints.items():
        parent = parent_link[child]
        el = ET.SubElement(robot, "joint", name=_safe(j.name or f"{child}_joint"), type=j.type)
        ET.SubElement(el, "parent", link=link_name[parent])
        ET.SubElement(el, "child", link=link_name[child])
        ET.SubElement(el, "origin", xyz=_xyz(j.origin - link_origin[parent]), rpy="0 0 0")
        ET.SubElement(el, "axis", xyz=_xyz(j.axis))
        ET.SubElement(el, "limit", lower=f"{j.limits[0]:.10g}", upper=f"{j.limits[1]:.10g}", effort="10",
                      velocity="1")
    ET.indent(robot)
    path = folder / ("mobility.urdf" if layout == "partnet" else f"{_safe(robot_name)}.urdf")
    path.write_text('<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n")
    return path


def write_urdf(mesh: PartMesh, joints: list[Joint] | Joint, out_dir: str | os.PathLike, *, robot_name: str = "object",
               mesh_format: str = "obj", frame: str = "source", layout: str = "links") -> Path:
    """Write a URDF folder ``out_dir`` (replaced if it exists) atomically; returns the .urdf path."""
    joints = _check_joints(mesh, [joints] if isinstance(joints, Joint) else list(joints))
    if mesh_format not in ("obj", "glb"):
        raise InputError(f"mesh format '{mesh_format}' is not supported; use 'obj' or 'glb'")
    if layout not in ("links", "partnet"):
        raise InputError(f"layout '{layout}' is not supported; use 'links' or 'partnet'")
    output_frame(mesh, frame)
    out_dir = Path(out_dir).absolute()
    try:
        tmp = new_temp_folder(out_dir)
    except OSError as exc:
        raise InputError(f"cannot write the URDF folder '{out_dir}': {exc.strerror or exc}; choose a writable "
                         "output folder") from exc
    try:
        urdf = build_urdf(mesh, joints, tmp, robot_name=robot_name, mesh_format=mesh_format, frame=frame,
                          layout=layout)
        replace_folder(tmp, out_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write the URDF folder '{out_dir}': {exc.strerror or exc}; choose a writable "
                         "output folder with free space") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote URDF %s (%d joints, %s meshes, %s frame)", out_dir / urdf.name, len(joints), mesh_format, frame)
    return out_dir / urdf.name
