"""Static GLB export of a part mesh: one named scene node (and geometry) per part, PBR materials.

Up axis: glTF is +Y up, the pack's world is +Z up. The rotation (x, y, z) -> (x, z, -y) is BAKED into the
written vertex positions (no root-node transform), so the file stands upright in any glTF viewer and its
front (our -Y) faces glTF's +Z, the viewer's default front. ``load_part_mesh(path)`` (up_axis="auto")
turns glTF Y-up back into Z-up.

Frames: ``frame="source"`` writes the source frame (``inverse(normalized_from_source)`` applied: the
original units, e.g. metres for procedural objects), ``frame="normalized"`` the normalised frame.

Materials: a part that uses one material is written as it is (texture, UVs, base colour). A part that uses
several materials is written with one atlas texture (each material's texture, or its base colour, in one
tile; UVs remapped per face); faces whose UVs span more than one texture repeat are clamped, and that is
logged. Vertex colours are written as COLOR_0 for parts without textures; a textured part drops them (logged).

A textured material carries its colour twice, so that it shows even where a viewer cannot load the texture
(ComfyUI's page under ``--disable-api-nodes`` blocks the ``blob:`` URLs three.js loads embedded images from,
and the model would render flat white): the base colour factor is the texture's brightest value per channel
(linear, times the material's own factor) and the written texture is the source texture divided by it. A
viewer multiplies the two, which gives back the source texture (to 8-bit rounding); without the texture it
shows the factor. The brightest value, not the mean, because a factor below a texel's value would clip it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import write_bytes_atomic
from ..types import PartMesh

log = logging.getLogger("atop")

Y_UP_FROM_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # glTF = R @ ours
ATLAS_TILE = 128


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def colour_in_factor(base_color: np.ndarray, texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(factor [4], texture [H, W, C] uint8) whose product is ``base_color`` times ``texture`` and whose factor
    alone is the texture's brightest linear value per channel times ``base_color`` (see module doc)."""
    tex = np.asarray(texture, dtype=np.uint8)
    linear = _srgb_to_linear(tex[..., :3].astype(np.float64) / 255.0)
    peak = linear.reshape(-1, 3).max(0)  # [3]
    scaled = linear / np.maximum(peak, 1e-12)
    out = tex.copy()
    out[..., :3] = (np.clip(_linear_to_srgb(scaled), 0, 1) * 255).round().astype(np.uint8)
    factor = np.asarray(base_color, dtype=np.float64).reshape(4).copy()
    factor[:3] *= peak
    return factor, out


def _pbr(name: str, base_color: np.ndarray, texture: np.ndarray | None, fold_colour: bool = True):
    """A PBR material; ``fold_colour``: the texture's colour also in the factor (``colour_in_factor``)."""
    from PIL import Image
    from trimesh.visual.material import PBRMaterial

    image = None
    factor = np.asarray(base_color, dtype=np.float64).reshape(4)
    if texture is not None:
        factor, tex = colour_in_factor(factor, texture) if fold_colour else (factor, np.asarray(texture, np.uint8))
        image = Image.fromarray(tex, "RGBA" if tex.shape[2] == 4 else "RGB")
    return PBRMaterial(name=name, baseColorFactor=factor, baseColorTexture=image, metallicFactor=0.0,
                       roughnessFactor=0.8, doubleSided=True)


def _tile(material, size: int) -> np.ndarray:  # [size, size, 4] uint8 sRGB with the base colour baked in
    from PIL import Image

    base = np.asarray(material.base_color, dtype=np.float64).reshape(4)
    if material.texture is None:
        rgb = _linear_to_srgb(base[:3])
        px = np.concatenate([rgb, base[3:]])[None, None, :] * np.ones((size, size, 1))
    else:
        tex = np.asarray(material.texture, dtype=np.uint8)
        img = Image.fromarray(tex, "RGBA" if tex.shape[2] == 4 else "RGB").convert("RGBA").resize((size, size))
        px = np.asarray(img, dtype=np.float64) / 255.0
        px[..., :3] = _linear_to_srgb(_srgb_to_linear(px[..., :3]) * base[:3])
        px[..., 3] *= base[3]
    return (np.clip(px, 0, 1) * 255).round().astype(np.uint8)


def _atlas_part(mesh: PartMesh, faces: np.ndarray, verts: np.ndarray, name: str):
    """Unshared vertices and one atlas texture (base colours baked in) for a part with several materials
    (see module doc)."""
    mats = np.unique(mesh.face_material[faces])
    K = len(mats)
    size = ATLAS_TILE
    atlas = np.concatenate([_tile(mesh.materials[m], size) for m in mats], axis=1)  # [S, K*S, 4]
    tri = mesh.faces[faces]  # [M, 3]
    v = verts[tri].reshape(-1, 3)
    if mesh.uv is not None:
        uv = mesh.uv[tri].astype(np.float64)  # [M, 3, 2]
        uv = uv - np.floor(uv.min(axis=1, keepdims=True))  # each face into its first repeat
        clamped = int(np.any(uv > 1.0 + 1e-6, axis=(1, 2)).sum())
        if clamped:
            log.warning("GLB export: part '%s': %d faces span several texture repeats; their UVs are clamped "
                        "in the atlas", name, clamped)
        uv = np.clip(uv, 0.0, 1.0)
    else:
        uv = np.full((len(tri), 3, 2), 0.5)
    tile = np.searchsorted(mats, mesh.face_material[faces])  # [M]
    inset = 1.0 / size
    u = (tile[:, None] + inset + uv[..., 0] * (1 - 2 * inset)) / K
    vv = inset + uv[..., 1] * (1 - 2 * inset)
    uv_out = np.stack([u, vv], axis=-1).reshape(-1, 2)
    f = np.arange(len(v), dtype=np.int64).reshape(-1, 3)
    log.info("GLB export: part '%s' uses %d materials; written with one %dx%d atlas", name, K, atlas.shape[1],
             atlas.shape[0])
    return v, f, uv_out, atlas


def texture_regions(uv_tri: np.ndarray, shape: tuple[int, int], grid: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Regions of a texture that separate faces use: faces whose UV boxes overlap (on a ``grid``-cell raster
    of the texture) share a region. Returns (region per face [M], region per grid cell [G, G'], -1 unused);
    ``uv_tri`` [M, 3, 2] in the OpenGL convention (v = 0 at the image's bottom row). A face spanning texture
    repeats covers the whole texture."""
    H, W = shape
    gy, gx = min(grid, H), min(grid, W)
    lo, hi = uv_tri.min(1), uv_tri.max(1)  # [M, 2]
    repeats = np.any(np.floor(lo) != np.floor(hi - 1e-9), axis=1) | np.any(lo < 0, axis=1) | np.any(hi > 1, axis=1)
    x0 = np.where(repeats, 0, np.floor(lo[:, 0] * gx)).astype(int).clip(0, gx - 1)
    x1 = np.where(repeats, gx, np.ceil(hi[:, 0] * gx)).astype(int).clip(x0 + 1, gx)
    y0 = np.where(repeats, 0, np.floor((1 - hi[:, 1]) * gy)).astype(int).clip(0, gy - 1)
    y1 = np.where(repeats, gy, np.ceil((1 - lo[:, 1]) * gy)).astype(int).clip(y0 + 1, gy)
    parent = np.arange(len(uv_tri))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cells = np.full((gy, gx), -1, dtype=np.int64)
    for i in range(len(uv_tri)):
        box = cells[y0[i]:y1[i], x0[i]:x1[i]]
        for j in np.unique(box[box >= 0]):
            parent[find(int(j))] = find(i)
        box[...] = i
    face_region = np.array([find(i) for i in range(len(uv_tri))], dtype=np.int64)
    return face_region, np.where(cells >= 0, face_region[np.maximum(cells, 0)], -1)


def region_colour_split(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, texture: np.ndarray):
    """(vertices, faces, uv, texture, vertex colours [N, 4] uint8) such that vertex colour times texture is the
    source texture (to 8-bit rounding), and the vertex colour alone is the brightest linear value, per channel,
    of the texture region its face uses (``texture_regions``): what a viewer shows where the texture cannot
    load. A vertex whose faces use different regions is split, one copy per region."""
    tex = np.asarray(texture, dtype=np.uint8)
    H, W = tex.shape[:2]
    face_region, cells = texture_regions(uv[faces], (H, W))
    rows = (np.arange(H) * cells.shape[0]) // H
    cols = (np.arange(W) * cells.shape[1]) // W
    texel_region = cells[rows[:, None], cols[None, :]]  # [H, W]
    linear = _srgb_to_linear(tex[..., :3].astype(np.float64) / 255.0)
    regions = np.unique(face_region)
    peak = {int(r): np.maximum(linear[texel_region == r].max(0), 1e-12) if (texel_region == r).any()
            else np.ones(3) for r in regions}
    scaled = linear.copy()
    for r, m in peak.items():
        scaled[texel_region == r] /= m
    out = tex.copy()
    out[..., :3] = (np.clip(_linear_to_srgb(scaled), 0, 1) * 255).round().astype(np.uint8)
    # one vertex per (vertex, region) pair
    pair = np.stack([faces, np.repeat(face_region[:, None], 3, 1)], -1).reshape(-1, 2)
    keys, inverse = np.unique(pair, axis=0, return_inverse=True)
    colours = np.ones((len(keys), 4))
    colours[:, :3] = np.stack([peak[int(r)] for r in keys[:, 1]])
    colours = (colours * 255).round().astype(np.uint8)  # glTF vertex colours are linear
    return vertices[keys[:, 0]], inverse.reshape(-1, 3), uv[keys[:, 0]], out, colours


def _textured(name: str, v: np.ndarray, f: np.ndarray, uv: np.ndarray | None, base_color: np.ndarray,
              texture: np.ndarray | None, region_colours: bool):
    """The visual of a textured (or plain) part, or (vertices, faces, visual) when region colours split it."""
    import trimesh

    if not region_colours or texture is None or uv is None:
        return trimesh.visual.TextureVisuals(uv=uv, material=_pbr(name, base_color, texture))
    v, f, uv, tex, colours = region_colour_split(v, f, uv, texture)
    visual = trimesh.visual.TextureVisuals(uv=uv, material=_pbr(name, base_color, tex, fold_colour=False))
    visual.vertex_attributes["color"] = colours
    return v, f, visual


def part_mesh_to_scene(mesh: PartMesh, *, frame: str = "source", vertices: np.ndarray | None = None,
                       region_colours: bool = False):
    """A ``trimesh.Scene`` with one node and geometry per part, both named after the part, in glTF's Y-up
    convention (see module doc). ``vertices`` [V, 3] (normalised frame) replaces the mesh's, e.g. a pose.
    ``region_colours``: textured parts carry their colours per texture region in vertex colours
    (``region_colour_split``) rather than per part in the material factor: for previews, which no loader
    reads back."""
    import trimesh

    if frame not in ("source", "normalized"):
        raise InputError(f"frame '{frame}' is not supported; use 'source' or 'normalized'")
    verts = mesh.vertices if vertices is None else np.asarray(vertices, dtype=np.float64)
    if verts.shape != mesh.vertices.shape:
        raise InputError(f"vertex override has shape {verts.shape}, the mesh has {mesh.vertices.shape}; "
                         "pass vertices of this mesh (e.g. from posed_vertices)")
    if frame == "source":
        S = np.linalg.inv(mesh.normalized_from_source)
        verts = verts @ S[:3, :3].T + S[:3, 3]
    verts = verts @ Y_UP_FROM_Z_UP.T
    scene = trimesh.Scene()
    for pi, name in enumerate(mesh.part_names):
        faces = np.nonzero(mesh.face_part == pi)[0]
        if len(faces) == 0:
            log.warning("GLB export: part '%s' has no faces; skipped", name)
            continue
        mats = np.unique(mesh.face_material[faces])
        if len(mats) > 1:
            v, f, uv, atlas = _atlas_part(mesh, faces, verts, name)
            visual = _textured(f"{name}_atlas", v, f, uv, np.ones(4), atlas, region_colours)
        else:
            used = np.unique(mesh.faces[faces])  # keep the part's vertices in their original order
            remap = np.full(len(verts), -1, dtype=np.int64)
            remap[used] = np.arange(len(used))
            v, f = verts[used], remap[mesh.faces[faces]]
            m = mesh.materials[int(mats[0])]
            if m.texture is not None or mesh.vertex_colors is None:
                if m.texture is not None and mesh.vertex_colors is not None and not np.allclose(mesh.vertex_colors[used], 1):
                    log.warning("GLB export: part '%s' has a texture and vertex colours; vertex colours dropped", name)
                uv = mesh.uv[used] if mesh.uv is not None else None
                visual = _textured(m.name or f"{name}_material", v, f, uv, m.base_color, m.texture, region_colours)
            else:
                colors = (np.clip(mesh.vertex_colors[used], 0, 1) * 255).round().astype(np.uint8)
                visual = trimesh.visual.ColorVisuals(vertex_colors=colors)
        if isinstance(visual, tuple):  # region colours split the vertices
            v, f, visual = visual
        geom = trimesh.Trimesh(vertices=v, faces=f, visual=visual, process=False, validate=False)
        scene.add_geometry(geom, node_name=name, geom_name=name)
    if not scene.geometry:
        raise InputError("the mesh has no faces to export; load or build a mesh with geometry first")
    return scene


def write_glb(mesh: PartMesh, path: str | os.PathLike, **kw) -> Path:
    """Write ``part_mesh_to_scene(mesh, **kw)`` to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = part_mesh_to_scene(mesh, **kw).export(file_type="glb")
    write_bytes_atomic(path, data)
    log.info("wrote %s (%d parts, %d bytes)", path, len(mesh.part_names), len(data))
    return path
