"""Load a segmented mesh (GLB/GLTF scene parts, OBJ groups/objects, URDF links, PartNet-Mobility folder)
into a normalised ``PartMesh``.

Every source is first turned into a list of pieces (part name, geometry in the source file's frame,
visuals), then concatenated and normalised (normalize.py). Colours follow glTF: a face's colour is
base colour x texture (if any) x vertex colour (ones where a part has none).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError
from ..types import Joint, Material, PartMesh
from ..geometry.transforms import joint_in_frame
from .assets import AssetResolver, asset_root, check_image
from .normalize import UP_AXES, normalization_matrix, transform_points
from .urdf_reader import MOVABLE, UrdfModel, link_world_transforms, read_urdf

log = logging.getLogger("atop")

SCENE_EXTS = (".glb", ".gltf")
OBJ_EXTS = (".obj",)
URDF_EXTS = (".urdf",)
OTHER_MESH_EXTS = (".stl", ".ply", ".off", ".dae")
# PartNet-Mobility objects face -X in their URDF world (checked on renders of the development objects);
# a quarter turn about +Z brings their front to -Y, where the azimuth-0 camera looks from.
PARTNET_FRONT_YAW_DEG = 90.0
MAX_NOTES_SHOWN = 5  # loading notes listed under the parts; the log has them all
SUPPORTED = SCENE_EXTS + OBJ_EXTS + URDF_EXTS + OTHER_MESH_EXTS


@dataclass
class _Piece:
    part: str
    vertices: np.ndarray  # [N, 3] source frame
    faces: np.ndarray  # [M, 3]
    material: Material
    material_key: object
    uv: Optional[np.ndarray] = None  # [N, 2]
    vertex_colors: Optional[np.ndarray] = None  # [N, 4] float 0..1


# --- visuals ---------------------------------------------------------------------------------------------
def _color01(c, default=(0.8, 0.8, 0.8, 1.0)) -> np.ndarray:  # [4]
    if c is None:
        return np.array(default, dtype=np.float64)
    a = np.asarray(c, dtype=np.float64).reshape(-1)
    if np.issubdtype(np.asarray(c).dtype, np.integer) or a.max(initial=0.0) > 1.0:
        a = a / 255.0
    if a.size == 3:
        a = np.append(a, 1.0)
    return np.clip(a[:4], 0.0, 1.0)


def _image_array(img, notes: list[str]) -> Optional[np.ndarray]:  # [H, W, 3|4] uint8
    if img is None:
        return None
    try:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
        return np.asarray(img, dtype=np.uint8).copy()
    except Exception as exc:  # PIL decodes lazily: a truncated or corrupt image fails only here
        name = img.info.get("file_path", "a texture")
        notes.append(f"texture '{name}' could not be decoded ({type(exc).__name__}: {str(exc)[:120]}); "
                     "its parts use their base colour")
        return None


def _material_from_trimesh(mat, notes: list[str]) -> Material:
    name = getattr(mat, "name", None) or "material"
    if mat is None:
        return Material()
    if hasattr(mat, "baseColorFactor") or hasattr(mat, "baseColorTexture"):  # PBRMaterial
        return Material(name=name, base_color=_color01(getattr(mat, "baseColorFactor", None), (1, 1, 1, 1)),
                        texture=_image_array(getattr(mat, "baseColorTexture", None), notes))
    img = _image_array(getattr(mat, "image", None), notes)  # SimpleMaterial (OBJ/MTL)
    diffuse = getattr(mat, "diffuse", None)
    return Material(name=name, base_color=_color01(diffuse, (1, 1, 1, 1) if img is not None else (0.8, 0.8, 0.8, 1)),
                    texture=img)


def _piece_from_trimesh(mesh, part: str, transform: Optional[np.ndarray] = None,
                        rgba: Optional[np.ndarray] = None, notes: Optional[list[str]] = None) -> Optional[_Piece]:
    """One trimesh geometry as a piece (None when it has no faces)."""
    import trimesh

    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        return None
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.faces, dtype=np.int64)
    if transform is not None:
        v = transform_points(transform, v)
    uv = vc = None
    visual = mesh.visual
    key: object = ("default", None if rgba is None else tuple(rgba))
    material = Material() if rgba is None else Material(name="urdf", base_color=_color01(rgba))
    if isinstance(visual, trimesh.visual.TextureVisuals):
        material = _material_from_trimesh(visual.material, [] if notes is None else notes)
        key = id(visual.material)
        if visual.uv is not None and len(visual.uv) == len(v):
            uv = np.asarray(visual.uv, dtype=np.float64)
    elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind in ("vertex", "face"):
        if visual.kind == "vertex":
            vc = np.asarray(visual.vertex_colors, dtype=np.float64)[:, :4] / 255.0
        else:  # per-face colours: give every face its own vertices so colours stay flat
            fc = np.asarray(visual.face_colors, dtype=np.float64)[:, :4] / 255.0
            v = v[f].reshape(-1, 3)
            f = np.arange(len(v), dtype=np.int64).reshape(-1, 3)
            vc = np.repeat(fc, 3, axis=0)
        material = Material(name="vertex_colors", base_color=np.ones(4))
        key = "vertex_colors"
    return _Piece(part, v, f, material, key, uv, vc)


# --- sources ---------------------------------------------------------------------------------------------
def _glb_chunks(data: bytes) -> tuple[Optional[dict], bytes]:
    """(JSON document, BIN chunk) of GLB bytes, as far as they can be read (trimesh judges the rest)."""
    doc, blob, off = None, b"", 12
    while off + 8 <= len(data):
        size, kind = struct.unpack_from("<II", data, off)
        chunk = data[off + 8: off + 8 + size]
        if kind == 0x4E4F534A:  # JSON
            try:
                doc = json.loads(chunk)
            except (ValueError, RecursionError):
                return None, b""
        elif kind == 0x004E4942:  # BIN
            blob = chunk
        off += 8 + size
    return (doc if isinstance(doc, dict) else None), blob


def _embedded_images(doc: dict, blob: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of the images a glTF document carries inside itself (GLB buffer views, data URIs):
    trimesh drops one it cannot open without a word."""
    import base64
    import binascii

    out = []
    views = doc.get("bufferViews") if isinstance(doc.get("bufferViews"), list) else []
    for i, img in enumerate(doc.get("images") if isinstance(doc.get("images"), list) else []):
        if not isinstance(img, dict):
            continue
        name = str(img.get("name") or f"image {i}")
        uri, view = img.get("uri"), img.get("bufferView")
        if isinstance(uri, str) and uri.startswith("data:") and "base64," in uri:
            try:
                out.append((name, base64.b64decode(uri.split("base64,", 1)[1])))
            except (binascii.Error, ValueError):
                pass  # trimesh reports a broken data URI itself
        elif isinstance(view, int) and 0 <= view < len(views) and isinstance(views[view], dict):
            start = int(views[view].get("byteOffset", 0) or 0)
            out.append((name, blob[start: start + int(views[view].get("byteLength", 0) or 0)]))
    return out


def _check_container(path: str, notes: list[str]) -> None:
    """What trimesh may not notice or say clearly: a GLB shorter than its header states (cut off), a
    .gltf that is not a JSON object, an embedded texture that is not an image (or a decompression bomb)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in SCENE_EXTS:
        return
    with open(path, "rb") as fh:
        data = fh.read()
    if ext == ".glb":
        if len(data) < 12 or data[:4] != b"glTF":
            return  # trimesh says it is not a GLB
        declared = struct.unpack_from("<I", data, 8)[0]
        if declared > len(data):
            raise InputError(f"'{path}' is truncated: its GLB header declares {declared:,} bytes, the file has "
                             f"{len(data):,}; copy or export the file again")
        doc, blob = _glb_chunks(data)
    else:
        try:
            doc, blob = json.loads(data), b""
        except (ValueError, RecursionError) as exc:  # ValueError covers JSON and text decoding
            raise InputError(f"could not read '{path}'; it is not valid glTF JSON ({type(exc).__name__}: "
                             f"{str(exc)[:120]}); re-export the mesh or check that the file is complete") from exc
        if not isinstance(doc, dict):
            raise InputError(f"could not read '{path}'; its JSON is a {type(doc).__name__}, not a glTF document")
    for name, image in _embedded_images(doc or {}, blob):
        bad = check_image(image, decode=False)  # a truncated one is noted when it is decoded
        if bad:
            notes.append(f"'{os.path.basename(path)}': embedded texture '{name}' is {bad}; its parts use their "
                         "base colour")


def _decode_textures(scene, where: str, notes: list[str]) -> None:
    """Decode every texture now (PIL decodes lazily), so that a truncated one becomes a note naming its
    file instead of an error later."""
    for g in scene.geometry.values():
        mat = getattr(getattr(g, "visual", None), "material", None)
        for attr in ("image", "baseColorTexture"):
            img = getattr(mat, attr, None)
            if img is None or not hasattr(img, "load"):
                continue
            try:
                img.load()
            except Exception as exc:  # PIL raises several types for damaged image data
                name = img.info.get("file_path", "(embedded)")
                notes.append(f"'{where}': texture '{name}' could not be decoded ({type(exc).__name__}: "
                             f"{str(exc)[:100]}); its parts use their base colour")
                setattr(mat, attr, None)


def _load_trimesh_scene(path: str, root: str, notes: list[str], images: Optional[dict] = None, **kwargs):
    """A trimesh Scene of ``path``; the files it refers to come from inside ``root`` only (assets.py).
    References that could not be served become ``notes``; ``images`` caches texture checks across files."""
    import trimesh

    _check_container(path, notes)
    resolver = AssetResolver(os.path.dirname(os.path.abspath(path)), root, images=images)
    try:
        scene = trimesh.load(path, force="scene", process=False, resolver=resolver, **kwargs)
    except InputError:
        raise
    except Exception as exc:  # trimesh raises many types for damaged files
        ext = os.path.splitext(path)[1].lower()
        refs = "".join(f"; it refers to '{name}', which {why}" for name, why in resolver.problems[:3])
        raise InputError(f"could not read '{path}'{refs}; it is not a valid {ext[1:].upper()} file "
                         f"({type(exc).__name__}: {str(exc)[:160]}); re-export the mesh or check that the "
                         "file is complete") from exc
    for g in scene.geometry.values():
        v = getattr(g, "vertices", None)
        if v is not None and len(v) and not np.isfinite(v).all():
            bad = int((~np.isfinite(np.asarray(v))).any(axis=1).sum())
            raise InputError(f"'{path}' has {bad} of {len(v)} vertices with NaN/inf coordinates; the file is "
                             "damaged; repair or re-export the mesh")
    where = os.path.relpath(path, root)
    _decode_textures(scene, where, notes)
    for name, why in resolver.problems:
        what = "material file" if name.lower().endswith(".mtl") else "referenced file"
        notes.append(f"'{where}': {what} '{name}' {why}; its parts use "
                     + ("the default grey material" if what == "material file" else "their base colour"))
    for name, found in resolver.relocated:
        notes.append(f"'{where}': '{name}' does not exist as written; used '{found}' inside the asset folder")
    if path.lower().endswith(".obj") and any(n.lower().endswith(".mtl") for n, _ in resolver.problems):
        # trimesh substitutes a grey 2x2 placeholder texture for a missing MTL; use our default material.
        for g in scene.geometry.values():
            if isinstance(g.visual, trimesh.visual.TextureVisuals):
                g.visual = trimesh.visual.ColorVisuals(mesh=g)
    return scene


def _scene_pieces(scene, notes: list[str], base: Optional[np.ndarray] = None, part: Optional[str] = None,
                  rgba: Optional[np.ndarray] = None) -> list[_Piece]:
    """Pieces of a trimesh Scene, scene-graph transforms applied; part = node name unless given.
    Nodes are taken in name order (trimesh does not keep the file's order), so part order is stable."""
    pieces = []
    for node in sorted(scene.graph.nodes_geometry, key=str):
        T, gname = scene.graph[node]
        geom = scene.geometry.get(gname)
        T = np.asarray(T, dtype=np.float64)
        if base is not None:
            T = base @ T
        piece = _piece_from_trimesh(geom, part if part is not None else str(node), T, rgba, notes)
        if piece is not None:
            pieces.append(piece)
    return pieces


def _urdf_pieces(path: str, notes: list[str]):
    import trimesh

    model: UrdfModel = read_urdf(path)
    notes += model.notes
    world = link_world_transforms(model)
    pieces: list[_Piece] = []
    cache: dict[str, object] = {}
    images: dict = {}
    for link in model.links.values():
        for vis in link.visuals:
            S = np.diag([*vis.scale, 1.0])
            T = world[link.name] @ vis.origin @ S
            if vis.mesh_path is not None:
                if vis.mesh_path not in cache:
                    cache[vis.mesh_path] = _load_trimesh_scene(vis.mesh_path, vis.asset_root, notes, images)
                new = _scene_pieces(cache[vis.mesh_path], notes, T, link.name, vis.rgba)
                if not new:
                    log.warning("URDF link '%s': mesh '%s' has no faces", link.name, vis.mesh_path)
                pieces += new
            else:
                kind, dims = vis.primitive
                if kind == "box":
                    m = trimesh.creation.box(extents=dims)
                elif kind == "cylinder":
                    m = trimesh.creation.cylinder(radius=dims[0], height=dims[1])
                elif kind == "capsule":
                    m = trimesh.creation.capsule(height=dims[1], radius=dims[0])
                else:
                    m = trimesh.creation.icosphere(subdivisions=2, radius=dims[0])
                pieces.append(_piece_from_trimesh(m, link.name, T, vis.rgba))
    joints, attached = [], {}
    for j in model.joints:
        if j.type in MOVABLE:
            Tj = world[j.parent] @ j.origin
            jt = "prismatic" if j.type == "prismatic" else "revolute"
            limits = j.limits if j.type != "continuous" else (-math.pi, math.pi)
            joints.append(Joint(type=jt, axis=Tj[:3, :3] @ j.axis, origin=Tj[:3, 3], limits=limits,
                                child=j.child, parent=j.parent, name=j.name))
        else:
            if j.type != "fixed":
                log.warning("URDF joint '%s' of type '%s' is treated as fixed", j.name, j.type)
            attached[j.child] = j.parent
    return pieces, joints, attached, model.name


def _find_urdf_in_folder(folder: str) -> str:
    mob = os.path.join(folder, "mobility.urdf")
    if os.path.isfile(mob):
        return mob
    urdfs = sorted(f for f in os.listdir(folder) if f.lower().endswith(".urdf"))
    if len(urdfs) == 1:
        return os.path.join(folder, urdfs[0])
    if urdfs:
        raise InputError(f"folder '{folder}' holds several URDF files ({', '.join(urdfs)}); "
                         "give the path of the one to load")
    raise InputError(f"folder '{folder}' holds no mobility.urdf or other URDF file; give a mesh file "
                     f"({', '.join(e[1:] for e in SUPPORTED)}) or a PartNet-Mobility object folder")


# --- assembly --------------------------------------------------------------------------------------------
def _share_textures(materials: list[Material]) -> None:
    """Materials whose textures are the same image share one array (a PartNet object names one texture in
    dozens of material files; each was decoded on its own)."""
    seen: dict[tuple, np.ndarray] = {}
    for m in materials:
        if m.texture is not None:
            key = (m.texture.shape, hashlib.blake2b(m.texture.tobytes(), digest_size=16).digest())
            m.texture = seen.setdefault(key, m.texture)


def _assemble(pieces: list[_Piece], path: str) -> dict:
    part_names: list[str] = []
    materials: list[Material] = []
    mat_index: dict[object, int] = {}
    V, F, FP, FM, UV, VC = [], [], [], [], [], []
    has_uv = any(p.uv is not None for p in pieces)
    has_vc = any(p.vertex_colors is not None for p in pieces)
    offset = 0
    for p in pieces:
        if p.part not in part_names:
            part_names.append(p.part)
        if p.material_key not in mat_index:
            mat_index[p.material_key] = len(materials)
            materials.append(p.material)
        n = len(p.vertices)
        V.append(p.vertices)
        F.append(p.faces + offset)
        FP.append(np.full(len(p.faces), part_names.index(p.part), dtype=np.int64))
        FM.append(np.full(len(p.faces), mat_index[p.material_key], dtype=np.int64))
        if has_uv:
            UV.append(p.uv if p.uv is not None else np.zeros((n, 2)))
        if has_vc:
            VC.append(p.vertex_colors if p.vertex_colors is not None else np.ones((n, 4)))
        offset += n
    if not pieces or offset == 0:
        raise InputError(f"'{path}' contains no mesh faces (no parts to load); "
                         "export the object with its triangle geometry")
    _share_textures(materials)
    vertices = np.concatenate(V)
    if not np.isfinite(vertices).all():  # finite in their files, but a transform (URDF scale, origin) overflowed
        raise InputError(f"'{path}': vertices become NaN/inf once placed (an absurd scale or origin); fix the file")
    faces = np.concatenate(F)
    if faces.max() >= offset or faces.min() < 0:
        raise InputError(f"'{path}' has faces that index missing vertices; the file is damaged; re-export it")
    return dict(vertices=vertices, faces=faces, face_part=np.concatenate(FP), part_names=part_names,
                materials=materials, face_material=np.concatenate(FM),
                uv=np.concatenate(UV) if has_uv else None, vertex_colors=np.concatenate(VC) if has_vc else None)


def load_part_mesh(path: str, *, up_axis: str = "auto") -> PartMesh:
    """Load a segmented mesh into the normalised frame.

    ``path``: a .glb/.gltf (named scene nodes are parts), .obj (objects/groups are parts), .urdf (links with
    visuals are parts; movable joints become ``Joint`` objects), .stl/.ply/.off/.dae, or a folder holding
    mobility.urdf. ``up_axis``: "auto" (glTF is Y-up, everything else Z-up), "y" or "z".
    """
    path = os.fspath(path)
    if up_axis not in UP_AXES:
        raise InputError(f"up axis '{up_axis}' is not supported; use one of: {', '.join(UP_AXES)}")
    if not os.path.exists(path):
        raise InputError(f"mesh file '{path}' does not exist; check the path (relative paths are resolved "
                         "against the input folder)")
    if os.path.isdir(path):
        path = _find_urdf_in_folder(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUPPORTED:
        raise InputError(f"'{os.path.basename(path)}' has an unsupported extension '{ext}'; supported: "
                         f"{', '.join(e[1:] for e in SUPPORTED)} or a PartNet-Mobility folder; convert the mesh")
    if os.path.getsize(path) == 0:
        raise InputError(f"'{path}' is empty (0 bytes); the file is incomplete; export or copy it again")

    joints: list[Joint] = []
    attached: dict[str, str] = {}
    name = os.path.splitext(os.path.basename(path))[0]
    notes: list[str] = []
    if ext in URDF_EXTS:
        pieces, joints, attached, robot_name = _urdf_pieces(path, notes)
        fmt = "urdf"
        if os.path.basename(path) == "mobility.urdf":
            name, fmt = os.path.basename(os.path.dirname(os.path.abspath(path))), "partnet-mobility"
    elif ext in OBJ_EXTS:
        scene = _load_trimesh_scene(path, asset_root(path), notes, split_objects=True, split_groups=True,
                                    group_material=False)
        pieces, fmt = _scene_pieces(scene, notes), "obj"
    else:
        scene = _load_trimesh_scene(path, asset_root(path), notes)
        pieces, fmt = _scene_pieces(scene, notes), ext[1:]
    notes = list(dict.fromkeys(notes))  # a texture shared by many files is reported once per file
    for note in notes:
        log.warning("%s: %s", os.path.basename(path), note)
    up = up_axis if up_axis != "auto" else ("y" if ext in SCENE_EXTS else "z")

    yaw = PARTNET_FRONT_YAW_DEG if fmt == "partnet-mobility" else 0.0
    mesh = _normalised(_assemble(pieces, path), up, yaw, joints, source_path=os.path.abspath(path),
                       source_format=fmt, name=name, attached=attached, notes=notes)
    log.info("loaded %s: %d parts, %d faces, %d joints (%s, up=%s)", path, len(mesh.part_names),
             len(mesh.faces), len(mesh.joints), fmt, up)
    return mesh


def _normalised(arrays: dict, up: str, yaw: float, joints: list[Joint], **meta) -> PartMesh:
    N = normalization_matrix(arrays["vertices"], up, yaw_deg=yaw)
    arrays["vertices"] = transform_points(N, arrays["vertices"])
    return PartMesh(**arrays, normalized_from_source=N, joints=[joint_in_frame(j, N) for j in joints], **meta)


def mesh_from_triangles(vertices, faces, *, up_axis: str = "y", name: str = "mesh",
                        source: str = "MESH") -> PartMesh:
    """A mesh given as arrays, one part named ``name``, normalised like a loaded file: ComfyUI's own MESH
    (what its Hunyuan3D nodes output and its Save GLB node writes), ``vertices`` [N, 3] and triangle
    ``faces`` [M, 3]. ``up_axis`` "y" (ComfyUI's 3D nodes and glTF, the default; "auto" means it too) or "z".
    ``source`` names the input in errors."""
    if up_axis not in UP_AXES:
        raise InputError(f"up axis '{up_axis}' is not supported; use one of: {', '.join(UP_AXES)}")
    v, f = np.asarray(vertices), np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or not np.issubdtype(v.dtype, np.number):
        raise InputError(f"the {source}'s vertices have shape {list(v.shape)}; expected [N, 3] coordinates")
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise InputError(f"the {source}'s faces have shape {list(f.shape)} ({f.dtype}); expected [M, 3] integer "
                         "vertex indices (triangles)")
    if len(f) == 0:
        raise InputError(f"the {source} has no faces; connect a mesh with triangles")
    if f.min() < 0 or f.max() >= len(v):
        raise InputError(f"the {source}'s faces index vertices up to {int(f.max())} but it has {len(v)} vertices; "
                         "the mesh is damaged")
    piece = _Piece(name, v.astype(np.float64), f.astype(np.int64), Material(), "default")
    mesh = _normalised(_assemble([piece], f"the {source}"), "y" if up_axis == "auto" else up_axis, 0.0, [],
                       source_format="comfy-mesh", name=name)
    log.info("%s: %d vertices, %d faces (up=%s)", source, len(mesh.vertices), len(mesh.faces), up_axis)
    return mesh


def describe_parts(mesh: PartMesh) -> str:
    """One line per part: its name, face count and the joint that moves it (if known)."""
    lines = []
    for i, p in enumerate(mesh.part_names):
        n = int((mesh.face_part == i).sum())
        j = mesh.joint_for_part(p)
        info = f"{p} ({n} faces)"
        if j is not None:
            info += f": {j.type} joint '{j.name}', limits [{j.limits[0]:.3g}, {j.limits[1]:.3g}]"
        lines.append(info)
    shown = MAX_NOTES_SHOWN
    lines += [f"note: {n}" for n in mesh.notes[:shown]]
    if len(mesh.notes) > shown:
        lines.append(f"note: {len(mesh.notes) - shown} more (see the log)")
    return "\n".join(lines)
