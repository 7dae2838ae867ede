"""Ray-cast renderer for part meshes (trimesh + Embree): colour, face ids, depth and alpha per view.

Colours follow glTF: base colour x texture x vertex colour, with sRGB textures decoded to linear before
shading and the result encoded back to sRGB. Shading is a fixed, two-sided headlight plus key light on the
face normal, so renders are deterministic and parts read clearly from every view.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..geometry.cameras import pixel_rays
from ..types import CameraRig, PartMesh

log = logging.getLogger("atop")

AMBIENT = 0.35
HEADLIGHT = 0.45
KEY = 0.20
KEY_DIRECTION = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])  # towards the light, world


@dataclass
class RenderResult:
    rgb: np.ndarray  # [V, H, W, 3] float32 0..1 (sRGB)
    face_id: np.ndarray  # [V, H, W] int64, -1 = background
    depth: np.ndarray  # [V, H, W] float32 camera-space depth along the optical axis, inf = background
    alpha: np.ndarray  # [V, H, W] float32 1 = object


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)


_SRGB_LUT = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)  # [256]


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:  # [N, 4] linear float32
    """Bilinear, repeat-wrapped lookup. UVs use the OpenGL convention (v = 0 at the image's bottom row),
    which is how trimesh returns both OBJ and glTF texture coordinates."""
    H, W = texture.shape[:2]
    tex = texture if texture.shape[2] == 4 else np.concatenate(
        [texture, np.full((H, W, 1), 255, dtype=np.uint8)], axis=2)
    x = np.mod(uv[:, 0], 1.0) * W - 0.5
    y = (1.0 - np.mod(uv[:, 1], 1.0)) * H - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None].astype(np.float32), (y - y0)[:, None].astype(np.float32)
    x0 = x0.astype(np.int64) % W
    y0 = y0.astype(np.int64) % H
    x1, y1 = (x0 + 1) % W, (y0 + 1) % H
    lut = _SRGB_LUT
    alpha = lambda t: t.astype(np.float32) / 255.0  # noqa: E731  (alpha is linear already)

    def fetch(yy, xx):
        t = tex[yy, xx]  # [N, 4] uint8
        return np.concatenate([lut[t[:, :3]], alpha(t[:, 3:])], axis=1)

    top = fetch(y0, x0) * (1 - fx) + fetch(y0, x1) * fx
    bottom = fetch(y1, x0) * (1 - fx) + fetch(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def _barycentric(tri: np.ndarray, p: np.ndarray) -> np.ndarray:  # tri [N, 3, 3], p [N, 3] -> [N, 3]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    d00 = np.einsum("ij,ij->i", v0, v0)
    d01 = np.einsum("ij,ij->i", v0, v1)
    d11 = np.einsum("ij,ij->i", v1, v1)
    d20 = np.einsum("ij,ij->i", v2, v0)
    d21 = np.einsum("ij,ij->i", v2, v1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-30, 1e-30, den)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1 - v - w, v, w], axis=1)


def surface_colors(mesh: PartMesh, face: np.ndarray, bary: np.ndarray) -> np.ndarray:  # [N, 4] linear
    """Unshaded linear RGBA at hit points (face ids [N], barycentrics [N, 3])."""
    mats = mesh.face_material[face]
    base = np.stack([np.asarray(m.base_color, dtype=np.float64) for m in mesh.materials])  # [M, 4] linear
    color = base[mats].astype(np.float32)
    tri_v = mesh.faces[face]  # [N, 3]
    if mesh.uv is not None:
        for mi, m in enumerate(mesh.materials):
            if m.texture is None:
                continue
            sel = np.nonzero(mats == mi)[0]
            if len(sel) == 0:
                continue
            uv = np.einsum("nk,nkj->nj", bary[sel], mesh.uv[tri_v[sel]])
            color[sel] *= sample_texture(m.texture, uv)
    if mesh.vertex_colors is not None:
        vc = np.einsum("nk,nkj->nj", bary, mesh.vertex_colors[tri_v]).astype(np.float32)
        vc[:, :3] = _srgb_to_linear(vc[:, :3])  # stored as display colours (trimesh uint8 -> 0..1)
        color *= vc
    return color


def render_views(mesh: PartMesh, rig: CameraRig, *, background=(1.0, 1.0, 1.0),
                 vertices: np.ndarray | None = None, faces: np.ndarray | None = None) -> RenderResult:
    """Render every camera of ``rig``. ``vertices`` [V, 3] overrides the mesh's (e.g. a posed state);
    ``faces`` (indices into mesh.faces) restricts rendering to a subset, face ids staying global."""
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    verts = mesh.vertices if vertices is None else np.asarray(vertices, dtype=np.float64)
    if verts.shape != mesh.vertices.shape:
        raise InputError(f"vertex override has shape {verts.shape}, the mesh has {mesh.vertices.shape}; "
                         "pass vertices of this mesh (e.g. from posed_vertices)")
    face_subset = np.arange(len(mesh.faces)) if faces is None else np.asarray(faces, dtype=np.int64)
    nV, H, W = rig.num_views, rig.height, rig.width
    rgb = np.empty((nV * H * W, 3), dtype=np.float32)
    rgb[:] = np.asarray(background, dtype=np.float32)[:3]
    face_id = np.full(nV * H * W, -1, dtype=np.int64)
    depth = np.full(nV * H * W, np.inf, dtype=np.float32)
    if len(face_subset) == 0:
        return RenderResult(rgb.reshape(nV, H, W, 3), face_id.reshape(nV, H, W), depth.reshape(nV, H, W),
                            np.zeros((nV, H, W), np.float32))

    tm = trimesh.Trimesh(verts, mesh.faces[face_subset], process=False, validate=False)
    origins, dirs = pixel_rays(rig)  # [V, HW, 3] each
    hit_tri, hit_ray, loc = RayMeshIntersector(tm).intersects_id(
        origins.reshape(-1, 3), dirs.reshape(-1, 3), multiple_hits=False, return_locations=True)
    if len(hit_ray):
        gface = face_subset[hit_tri]
        face_id[hit_ray] = gface
        view = hit_ray // (H * W)
        forward = -rig.c2w[view, :3, 2]  # [N, 3] optical axis
        cam = rig.c2w[view, :3, 3]
        depth[hit_ray] = np.einsum("ij,ij->i", loc - cam, forward)

        tri = verts[mesh.faces[gface]]  # [N, 3, 3]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
        d = dirs.reshape(-1, 3)[hit_ray]
        ndotv = np.einsum("ij,ij->i", n, d)
        n_front = n * -np.sign(np.where(ndotv == 0, 1.0, ndotv))[:, None]  # two-sided: face the camera
        shade = AMBIENT + HEADLIGHT * np.abs(ndotv) + KEY * np.clip(n_front @ KEY_DIRECTION, 0, None)

        color = surface_colors(mesh, gface, _barycentric(tri, loc))  # [N, 4] linear
        bg_lin = _srgb_to_linear(np.asarray(background, dtype=np.float64)[:3])
        a = np.clip(color[:, 3:4], 0.0, 1.0)  # texture/base alpha blends over the background
        lin = color[:, :3] * shade[:, None] * a + bg_lin * (1 - a)
        rgb[hit_ray] = _linear_to_srgb(lin)
    alpha = (face_id >= 0).astype(np.float32)
    return RenderResult(rgb.reshape(nV, H, W, 3), face_id.reshape(nV, H, W), depth.reshape(nV, H, W),
                        alpha.reshape(nV, H, W))
