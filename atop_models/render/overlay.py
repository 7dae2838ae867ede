"""Joint overlay: the mesh rendered with the part moved to a joint value, the part tinted and the joint's
axis drawn as a line (revolute) or an arrow from the part's centre (prismatic)."""
from __future__ import annotations

import numpy as np

from ..geometry.cameras import world_to_pixels
from ..mesh.articulate import posed_vertices
from ..types import CameraRig, Joint, PartMesh
from .raycast import render_views

TINT = np.array([1.0, 0.45, 0.1], dtype=np.float32)
AXIS_COLOR = np.array([0.9, 0.05, 0.05], dtype=np.float32)


def _draw_segment(img: np.ndarray, p0: np.ndarray, p1: np.ndarray, color: np.ndarray, radius: int) -> None:
    """Thick line from pixel p0 to p1 (x right, y down) into img [H, W, 3], clipped to the image."""
    H, W = img.shape[:2]
    n = int(max(2, np.ceil(np.linalg.norm(p1 - p0) * 2)))
    pts = p0[None] + np.linspace(0, 1, n)[:, None] * (p1 - p0)[None]  # [n, 2]
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            x = np.round(pts[:, 0]).astype(int) + dx
            y = np.round(pts[:, 1]).astype(int) + dy
            ok = (x >= 0) & (x < W) & (y >= 0) & (y < H)
            img[y[ok], x[ok]] = color


def axis_overlay(mesh: PartMesh, joint: Joint, rig: CameraRig, *, value: float | None = None,
                 tint: float = 0.45) -> np.ndarray:  # [V, H, W, 3]
    """Render with ``joint`` at ``value`` (default: its upper limit), moved parts tinted, axis drawn."""
    value = joint.limits[1] if value is None else float(value)
    joints = [joint] + [j for j in mesh.joints if j.child != joint.child]
    moved_parts = [p for p in mesh.parts_moved_by(joint) if p in mesh.part_names] or [joint.child]
    verts = posed_vertices(mesh, {joint.child: value}, joints) if value != 0.0 else mesh.vertices
    render = render_views(mesh, rig, vertices=verts)
    img = render.rgb.copy()
    moved_faces = np.nonzero(mesh.part_face_mask(moved_parts))[0]
    sel = np.isin(render.face_id, moved_faces)  # [V, H, W]
    img[sel] = (1 - tint) * img[sel] + tint * TINT
    part_pts = mesh.vertices[np.unique(mesh.faces[moved_faces])]
    extent = float(np.linalg.norm(part_pts.max(0) - part_pts.min(0)))
    if joint.type == "revolute":
        c = joint.origin + joint.axis * ((part_pts.mean(0) - joint.origin) @ joint.axis)
        ends = np.stack([c - 0.75 * extent * joint.axis, c + 0.75 * extent * joint.axis])
    else:
        c = verts[np.unique(mesh.faces[moved_faces])].mean(0)
        ends = np.stack([c, c + 0.5 * extent * joint.axis])
    px, depth = world_to_pixels(rig, ends)  # [V, 2, 2]
    radius = max(1, rig.width // 128)
    for v in range(rig.num_views):
        if (depth[v] > 0).all():
            _draw_segment(img[v], px[v, 0], px[v, 1], AXIS_COLOR, radius)
            if joint.type == "prismatic":  # arrow head
                _draw_segment(img[v], px[v, 1], px[v, 1], AXIS_COLOR, 3 * radius)
    return np.clip(img, 0, 1).astype(np.float32)
