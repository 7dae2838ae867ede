"""Procedural articulated objects with exact ground-truth joints (cabinets, drawers, appliances, ...).

Frames: every object is built in metres in its *source* frame (+Z up, standing on z = 0, front facing -Y,
so the azimuth-0 camera looks at it from the front), then normalised like a loaded mesh: bounding box
centred at the origin, largest side 1.0 (``NORMALISED_EXTENT``). ``normalized_from_source`` records that
similarity (a uniform scale and a translation), so exports in the source frame come out in metres.

Joints follow the pack's convention: unit ``axis``, ``origin`` on the axis, a positive value opens the
part (doors swing outward toward -Y, drawers slide toward -Y, lids and screens lift). "Left"/"right" are
as seen by a viewer facing the object's front (left = -X).

Visuals: one material per part whose texture is a small atlas of procedural tiles (wood grain, brushed
metal, painted speckle, glass, keypads); every box face has its own vertices and 0..1 UVs inside its tile,
so the mesh exports to glTF with one textured primitive per part, unchanged.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..types import Joint, Material, PartMesh
from . import textures as tx
from ..geometry.transforms import joint_in_frame
from .normalize import normalization_matrix, similarity_scale, transform_points

CATEGORIES: tuple[str, ...] = (
    "cabinet", "chest_of_drawers", "microwave", "fridge", "oven", "box", "laptop", "trash_can", "dishwasher",
    "washing_machine",
)
DISPLAY_NAMES = {
    "cabinet": "cabinet", "chest_of_drawers": "chest of drawers", "microwave": "microwave", "fridge": "fridge",
    "oven": "oven", "box": "box", "laptop": "laptop", "trash_can": "trash can", "dishwasher": "dishwasher",
    "washing_machine": "washing machine",
}
SEGMENTS = 32  # polygon sides of round shapes (a multiple of 8, so square-with-hole plates keep their corners)

Geom = tuple  # (vertices [N, 3], faces [M, 3], uv01 [N, 2])

# --- primitives (metres, outward-facing counter-clockwise triangles, per-face 0..1 UVs) ----------------------
_X, _Y, _Z = np.eye(3)
# (normal, e1, e2) with e1 x e2 = normal, for the six faces of a box
_BOX_FACES = [(_X, _Y, _Z), (-_X, _Z, _Y), (_Y, _Z, _X), (-_Y, _X, _Z), (_Z, _X, _Y), (-_Z, _Y, _X)]


def _box(lo, hi) -> Geom:
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if np.any(hi - lo <= 0):
        raise ValueError(f"degenerate box {lo} .. {hi}")
    c, h = (lo + hi) / 2, (hi - lo) / 2
    V, F, UV = [], [], []
    for n, e1, e2 in _BOX_FACES:
        centre = c + n * h
        a, b = float(np.abs(e1) @ h), float(np.abs(e2) @ h)
        signs = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=np.float64)
        V.append(centre + signs[:, :1] * a * e1 + signs[:, 1:] * b * e2)
        uv = (signs + 1) / 2
        UV.append(uv[:, ::-1] if a > b else uv)  # the face's long side runs along v (the grain direction)
        base = 4 * len(F)
        F.append([[base, base + 1, base + 2], [base, base + 2, base + 3]])
    return np.concatenate(V), np.asarray(F, dtype=np.int64).reshape(-1, 3), np.concatenate(UV)


def _frame(axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit u, v, w with u x v = w = axis."""
    w = np.asarray(axis, dtype=np.float64)
    w = w / np.linalg.norm(w)
    helper = _X if abs(w[0]) < 0.9 else _Y
    u = np.cross(helper, w)
    u /= np.linalg.norm(u)
    return u, np.cross(w, u), w


def _cylinder(base, axis, radius: float, height: float, *, caps=(True, True), inward: bool = False,
              segments: int = SEGMENTS) -> Geom:
    """Cylinder from ``base`` along ``axis``; ``inward`` flips the faces (inside of a tube or drum)."""
    u, v, w = _frame(axis)
    base = np.asarray(base, dtype=np.float64)
    th = np.linspace(0.0, 2 * np.pi, segments + 1)  # seam vertex repeated for the UVs
    ring = np.cos(th)[:, None] * u + np.sin(th)[:, None] * v  # [N+1, 3]
    n1 = segments + 1
    V = [base + radius * ring, base + radius * ring + height * w]
    UV = [np.stack([th / (2 * np.pi), np.zeros(n1)], 1), np.stack([th / (2 * np.pi), np.ones(n1)], 1)]
    i = np.arange(segments)
    F = [np.stack([i, i + 1, n1 + i + 1], 1), np.stack([i, n1 + i + 1, n1 + i], 1)]
    count = 2 * n1
    for top, enabled in ((False, caps[0]), (True, caps[1])):
        if not enabled:
            continue
        centre = base + (height * w if top else 0)
        V.append(np.concatenate([centre[None], centre + radius * ring[:-1]]))
        UV.append(np.concatenate([[[0.5, 0.5]], 0.5 + 0.5 * np.stack([np.cos(th[:-1]), np.sin(th[:-1])], 1)]))
        j = np.arange(segments)
        tri = np.stack([np.zeros(segments, np.int64), 1 + j, 1 + (j + 1) % segments], 1)
        F.append(count + (tri if top else tri[:, [0, 2, 1]]))
        count += segments + 1
    faces = np.concatenate(F).astype(np.int64)
    return np.concatenate(V), faces[:, ::-1].copy() if inward else faces, np.concatenate(UV)


def _ring_face(centre, e1, e2, inner: np.ndarray, outer: np.ndarray) -> Geom:
    """Flat band between two closed 2-D loops ``inner``/``outer`` [N+1, 2] (seam repeated), facing e1 x e2."""
    centre = np.asarray(centre, dtype=np.float64)
    n1 = len(inner)
    V = np.concatenate([centre + inner[:, :1] * e1 + inner[:, 1:] * e2,
                        centre + outer[:, :1] * e1 + outer[:, 1:] * e2])
    span = np.abs(outer).max()
    UV = 0.5 + 0.5 * np.concatenate([inner, outer]) / span
    i = np.arange(n1 - 1)
    F = np.concatenate([np.stack([i, n1 + i, n1 + i + 1], 1), np.stack([i, n1 + i + 1, i + 1], 1)])
    return V, F.astype(np.int64), UV


def _annulus(centre, axis, r_in: float, r_out: float, segments: int = SEGMENTS) -> Geom:
    u, v, _ = _frame(axis)
    th = np.linspace(0.0, 2 * np.pi, segments + 1)
    c = np.stack([np.cos(th), np.sin(th)], 1)
    return _ring_face(centre, u, v, r_in * c, r_out * c)


def _square_with_hole(centre, half: float, radius: float, thickness: float, segments: int = SEGMENTS) -> list[Geom]:
    """A square plate in the X-Z plane with a round hole: front face at centre (facing -Y), back face at
    centre + thickness along +Y, and the hole's wall (its outer rim is left to the surrounding panels)."""
    centre = np.asarray(centre, dtype=np.float64)
    th = np.linspace(0.0, 2 * np.pi, segments + 1)
    c = np.stack([np.cos(th), np.sin(th)], 1)
    square = c / np.abs(c).max(axis=1, keepdims=True) * half  # the loop's rays hit the square (corners at 45 deg)
    front = _ring_face(centre, _X, _Z, radius * c, square)  # X x Z = -Y
    bv, bf, buv = _ring_face(centre + thickness * _Y, _X, _Z, radius * c, square)
    back = (bv, bf[:, ::-1].copy(), buv)  # same band one thickness behind, facing +Y
    wall = _cylinder(centre, _Y, radius, thickness, caps=(False, False), inward=True, segments=segments)
    return [front, back, wall]


# --- object assembly -----------------------------------------------------------------------------------------
@dataclass
class _Part:
    tiles: list[str] = field(default_factory=list)
    geoms: list[tuple[Geom, str]] = field(default_factory=list)


class _Builder:
    """Collects geometry per part; ``palette`` maps a surface key to its texture tile."""

    def __init__(self, palette: dict[str, np.ndarray]):
        self.palette = palette
        self.parts: dict[str, _Part] = {}

    def add(self, part: str, key: str, geom: Geom | list[Geom]) -> None:
        if key not in self.palette:
            raise KeyError(f"no texture for surface '{key}'")
        p = self.parts.setdefault(part, _Part())
        if key not in p.tiles:
            p.tiles.append(key)
        for g in geom if isinstance(geom, list) else [geom]:
            p.geoms.append((g, key))

    def box(self, part: str, key: str, lo, hi) -> None:
        self.add(part, key, _box(lo, hi))

    def build(self, category: str, seed: int, joints: list[Joint]) -> PartMesh:
        V, F, FP, UV, materials = [], [], [], [], []
        offset = 0
        for pi, (name, part) in enumerate(self.parts.items()):
            K = len(part.tiles)
            materials.append(Material(name=f"{name}_material", base_color=np.ones(4),
                                      texture=tx.atlas([self.palette[k] for k in part.tiles])))
            for (verts, faces, uv01), key in part.geoms:
                V.append(verts)
                F.append(faces + offset)
                FP.append(np.full(len(faces), pi, dtype=np.int64))
                UV.append(tx.atlas_uv(uv01, part.tiles.index(key), K, self.palette[key].shape[0]))
                offset += len(verts)
        verts = np.concatenate(V)
        N = normalization_matrix(verts, "z")  # metres -> normalised frame (no rotation: built +Z up, front -Y)
        njoints = [joint_in_frame(j, N) for j in joints]
        face_part = np.concatenate(FP)
        return PartMesh(vertices=transform_points(N, verts), faces=np.concatenate(F), face_part=face_part,
                        part_names=list(self.parts), materials=materials, face_material=face_part.copy(),
                        uv=np.concatenate(UV), normalized_from_source=N,
                        source_path=f"procedural:{category}:{seed}", source_format="procedural",
                        joints=njoints, name=f"{category}_{seed}", category=category)


# --- colours and textures ------------------------------------------------------------------------------------
WOODS = [(0.55, 0.38, 0.22), (0.72, 0.55, 0.36), (0.40, 0.26, 0.16), (0.82, 0.68, 0.50), (0.62, 0.33, 0.20)]
PAINTS = [(0.92, 0.92, 0.90), (0.60, 0.62, 0.64), (0.30, 0.42, 0.60), (0.45, 0.56, 0.42), (0.90, 0.85, 0.72),
          (0.22, 0.22, 0.24), (0.70, 0.30, 0.25)]
METALS = [(0.78, 0.79, 0.81), (0.50, 0.51, 0.53), (0.78, 0.63, 0.33)]
APPLIANCE = [(0.93, 0.93, 0.92), (0.76, 0.77, 0.79), (0.13, 0.13, 0.14)]  # white, stainless, black


def _jitter(rng, color, amount: float = 0.06, hue: float = 0.02) -> tuple:
    """Brightness varies by +-amount; each channel by a little more (+-hue), so greys stay grey."""
    scale = rng.uniform(1 - amount, 1 + amount) * rng.uniform(1 - hue, 1 + hue, 3)
    return tuple(np.clip(np.asarray(color) * scale, 0, 1))


def _pick(rng, options) -> tuple:
    return _jitter(rng, options[int(rng.integers(len(options)))])


def _finish(rng, color, kind: str) -> np.ndarray:
    if kind == "wood":
        return tx.wood_grain(rng, color)
    if kind == "metal":
        return tx.brushed_metal(rng, color)
    return tx.speckle(rng, color)


def _furniture_palette(rng) -> dict[str, np.ndarray]:
    wood = rng.random() < 0.6
    body = _pick(rng, WOODS if wood else PAINTS)
    front = body if rng.random() < 0.7 else _pick(rng, WOODS if wood else PAINTS)
    inner = tuple(0.5 * np.asarray(body) + 0.5 * np.asarray((0.85, 0.8, 0.72)))
    return {"body": _finish(rng, body, "wood" if wood else "paint"),
            "front": _finish(rng, front, "wood" if wood else "paint"),
            "inner": _finish(rng, inner, "paint"),
            "handle": tx.brushed_metal(rng, _pick(rng, METALS))}


def _appliance_palette(rng) -> dict[str, np.ndarray]:
    shell = _pick(rng, APPLIANCE)
    kind = "metal" if 0.5 < shell[0] < 0.85 else "paint"
    dark = _jitter(rng, (0.10, 0.10, 0.11))
    return {"body": _finish(rng, shell, kind), "front": _finish(rng, shell, kind),
            "inner": tx.speckle(rng, _jitter(rng, (0.80, 0.80, 0.80)), strength=0.05),
            "handle": tx.brushed_metal(rng, _pick(rng, METALS[:2])),
            "glass": tx.glass(rng, _jitter(rng, (0.12, 0.14, 0.16))),
            "panel": tx.keypad(rng, dark, _jitter(rng, (0.55, 0.58, 0.62)), keys=(6, 3)),
            "dark": tx.speckle(rng, dark, strength=0.1)}


# --- shared pieces -------------------------------------------------------------------------------------------
def _hollow_box(b: _Builder, part: str, key: str, x0, x1, y0, y1, z0, z1, t: float) -> None:
    """Open-front carcass: sides (full), top, bottom and back between them."""
    b.box(part, key, (x0, y0, z0), (x0 + t, y1, z1))
    b.box(part, key, (x1 - t, y0, z0), (x1, y1, z1))
    b.box(part, key, (x0 + t, y0, z0), (x1 - t, y1 - t, z0 + t))
    b.box(part, key, (x0 + t, y0, z1 - t), (x1 - t, y1 - t, z1))
    b.box(part, key, (x0 + t, y1 - t, z0), (x1 - t, y1, z1))


def _bar_handle(b: _Builder, part: str, key: str, centre, length: float, vertical: bool, y_front: float,
                stand: float = 0.03, size: float = 0.012) -> None:
    """A bar on two standoffs, on a front surface at ``y_front`` (protruding toward -Y)."""
    cx, cz = centre
    along = np.array([0.0, 0.0, 1.0]) if vertical else np.array([1.0, 0.0, 0.0])
    across = np.array([1.0, 0.0, 0.0]) if vertical else np.array([0.0, 0.0, 1.0])
    c = np.array([cx, y_front, cz])
    half = along * length / 2 + across * size / 2
    b.box(part, key, c - half - _Y * (stand + size), c + half - _Y * stand)
    for end in (-1, 1):
        p = c + along * end * (length / 2 - size)
        hs = (along + across) * size * 0.4
        b.box(part, key, p - hs - _Y * stand, p + hs)


def _side_door(b: _Builder, name: str, x0, x1, z0, z1, y_back: float, td: float, hinge: str, limit: float,
               handle_key: str = "handle", front_key: str = "front", parent: str = "body",
               handle_len: float | None = None, handle_z: float | None = None) -> Joint:
    """A flat door in front of ``y_back`` with a vertical bar handle near its free edge; hinged on the
    left (axis -Z at x0) or right (axis +Z at x1) back edge, so positive angles swing it toward -Y."""
    b.box(name, front_key, (x0, y_back - td, z0), (x1, y_back, z1))
    height = z1 - z0
    length = handle_len if handle_len is not None else min(0.3, 0.35 * height)
    hx = x1 - 0.05 if hinge == "left" else x0 + 0.05
    hz = handle_z if handle_z is not None else (z0 + z1) / 2
    _bar_handle(b, name, handle_key, (hx, hz), length, True, y_back - td)
    if hinge == "left":
        return Joint("revolute", -_Z, (x0, y_back, z0), (0.0, limit), child=name, parent=parent,
                     name=f"{name}_hinge")
    return Joint("revolute", _Z, (x1, y_back, z0), (0.0, limit), child=name, parent=parent, name=f"{name}_hinge")


def _drop_door(b: _Builder, name: str, x0, x1, z0, z1, y_back: float, td: float, limit: float, window: bool,
               parent: str = "body") -> Joint:
    """A door hinged along its bottom back edge (axis +X), so positive angles tip its top toward -Y."""
    b.box(name, "front", (x0, y_back - td, z0), (x1, y_back, z1))
    h, w = z1 - z0, x1 - x0
    if window:
        b.box(name, "glass", (x0 + 0.15 * w, y_back - td - 0.002, z0 + 0.25 * h),
              (x1 - 0.15 * w, y_back - td, z1 - 0.2 * h))
    _bar_handle(b, name, "handle", ((x0 + x1) / 2, z1 - 0.07 * h), 0.75 * w, False, y_back - td)
    return Joint("revolute", _X, (0.0, y_back, z0), (0.0, limit), child=name, parent=parent, name=f"{name}_hinge")


# --- categories ----------------------------------------------------------------------------------------------
def _cabinet(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.45, 0.9), rng.uniform(0.35, 0.6), rng.uniform(0.6, 1.2)
    t, g, td = 0.018, 0.003, 0.02
    b = _Builder(_furniture_palette(rng))
    _hollow_box(b, "body", "body", -W / 2, W / 2, -D / 2, D / 2, 0.0, H, t)
    for k in range(int(rng.integers(0, 3))):  # shelves
        z = H * (k + 1) / (k + 2 + rng.uniform(-0.2, 0.2))
        b.box("body", "inner", (-W / 2 + t, -D / 2 + 0.02, z - t / 2), (W / 2 - t, D / 2 - t, z + t / 2))
    hinge = "left" if rng.random() < 0.5 else "right"
    j = _side_door(b, "door", -W / 2, W / 2 - 0.0, 0.004, H - 0.004, -D / 2 - g, td, hinge,
                   float(rng.uniform(1.6, 2.0)), handle_len=min(0.25, 0.3 * H), handle_z=0.7 * H)
    return b, [j]


def _chest(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.6, 1.1), rng.uniform(0.4, 0.55), rng.uniform(0.6, 1.2)
    n = int(rng.integers(2, 5))
    t, g, tf, plinth = 0.018, 0.003, 0.02, 0.06
    b = _Builder(_furniture_palette(rng))
    _hollow_box(b, "body", "body", -W / 2, W / 2, -D / 2, D / 2, plinth, H, t)
    b.box("body", "body", (-W / 2 + 0.02, -D / 2 + 0.02, 0.0), (W / 2 - 0.02, D / 2 - 0.02, plinth))
    lo, hi = plinth + t, H - t
    slot = (hi - lo - (n - 1) * t) / n
    joints = []
    for i in range(n):  # drawer_1 is the top one
        top = hi - i * (slot + t)
        bottom = top - slot
        if i < n - 1:  # divider below this slot
            b.box("body", "body", (-W / 2 + t, -D / 2, bottom - t), (W / 2 - t, D / 2 - t, bottom))
        name = f"drawer_{i + 1}"
        yf = -D / 2 - g
        b.box(name, "front", (-W / 2 + 0.003, yf - tf, bottom - t / 2 + 0.002), (W / 2 - 0.003, yf, top + t / 2 - 0.002))
        x0, x1, z0, z1 = -W / 2 + t + 0.006, W / 2 - t - 0.006, bottom + 0.006, top - 0.012
        y1 = D / 2 - t - 0.02
        tb = 0.012
        b.box(name, "inner", (x0, yf, z0), (x1, y1, z0 + tb))
        b.box(name, "inner", (x0, yf, z0 + tb), (x0 + tb, y1, z1))
        b.box(name, "inner", (x1 - tb, yf, z0 + tb), (x1, y1, z1))
        b.box(name, "inner", (x0 + tb, y1 - tb, z0 + tb), (x1 - tb, y1, z1))
        _bar_handle(b, name, "handle", (0.0, (bottom + top) / 2), min(0.3 * W, 0.25), False, yf - tf, stand=0.025)
        depth = y1 - yf
        joints.append(Joint("prismatic", -_Y, (0.0, yf - tf, (bottom + top) / 2), (0.0, 0.8 * depth), child=name,
                            parent="body", name=f"{name}_slide"))
    return b, joints


def _microwave(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.45, 0.6), rng.uniform(0.33, 0.45), rng.uniform(0.26, 0.35)
    t, g, td = 0.015, 0.003, 0.025
    b = _Builder(_appliance_palette(rng))
    _hollow_box(b, "body", "body", -W / 2, W / 2, -D / 2, D / 2, 0.0, H, t)
    xd = -W / 2 + 0.72 * W  # door / control-panel split; a wall closes the cavity there
    b.box("body", "inner", (xd - t, -D / 2, t), (xd, D / 2 - t, H - t))
    b.box("body", "panel", (xd + g, -D / 2 - g - td, 0.0), (W / 2, -D / 2, H))
    b.box("door", "front", (-W / 2, -D / 2 - g - td, 0.0), (xd - 0.001, -D / 2 - g, H))
    dw = xd - 0.001 + W / 2
    b.box("door", "glass", (-W / 2 + 0.12 * dw, -D / 2 - g - td - 0.002, 0.2 * H),
          (-W / 2 + 0.78 * dw, -D / 2 - g - td, 0.8 * H))
    _bar_handle(b, "door", "handle", (xd - 0.05, H / 2), 0.6 * H, True, -D / 2 - g - td, stand=0.02, size=0.01)
    j = Joint("revolute", -_Z, (-W / 2, -D / 2 - g, 0.0), (0.0, float(rng.uniform(1.5, 1.85))), child="door",
              parent="body", name="door_hinge")
    return b, [j]


def _fridge(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.75), rng.uniform(1.5, 1.9)
    t, g, td = 0.03, 0.004, 0.05
    b = _Builder(_appliance_palette(rng))
    _hollow_box(b, "body", "body", -W / 2, W / 2, -D / 2, D / 2, 0.0, H, t)
    for k in range(int(rng.integers(2, 4))):
        z = H * (k + 1) / (k + 2.5)
        b.box("body", "inner", (-W / 2 + t, -D / 2 + 0.05, z), (W / 2 - t, D / 2 - t, z + 0.012))
    limit = float(rng.uniform(1.6, 2.0))
    if rng.random() < 0.5:
        hinge = "left" if rng.random() < 0.5 else "right"
        joints = [_side_door(b, "door", -W / 2, W / 2, 0.005, H - 0.005, -D / 2 - g, td, hinge, limit,
                             handle_len=0.45, handle_z=0.6 * H)]
    else:
        joints = [_side_door(b, "left_door", -W / 2, -0.003, 0.005, H - 0.005, -D / 2 - g, td, "left", limit,
                             handle_len=0.45, handle_z=0.6 * H),
                  _side_door(b, "right_door", 0.003, W / 2, 0.005, H - 0.005, -D / 2 - g, td, "right", limit,
                             handle_len=0.45, handle_z=0.6 * H)]
    return b, joints


def _oven(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.55, 0.76), rng.uniform(0.55, 0.65), rng.uniform(0.8, 0.95)
    t, g, td, plinth = 0.02, 0.004, 0.04, 0.08
    top = H - rng.uniform(0.12, 0.18)  # cavity top; the control section sits above
    b = _Builder(_appliance_palette(rng))
    b.box("body", "dark", (-W / 2, -D / 2 + 0.03, 0.0), (W / 2, D / 2, plinth))
    _hollow_box(b, "body", "body", -W / 2, W / 2, -D / 2, D / 2, plinth, top, t)
    b.box("body", "body", (-W / 2, -D / 2, top), (W / 2, D / 2, H - 0.01))
    b.box("body", "panel", (-W / 2 + 0.01, -D / 2 - 0.005, top + 0.01), (W / 2 - 0.01, -D / 2, H - 0.02))
    b.box("body", "dark", (-W / 2 + 0.01, -D / 2 + 0.01, H - 0.01), (W / 2 - 0.01, D / 2 - 0.01, H))
    b.box("body", "inner", (-W / 2 + t, -D / 2 + 0.06, (plinth + top) / 2), (W / 2 - t, D / 2 - t, (plinth + top) / 2 + 0.01))
    j = _drop_door(b, "door", -W / 2 + 0.003, W / 2 - 0.003, plinth + 0.003, top - 0.003, -D / 2 - g, td,
                   float(rng.uniform(1.45, 1.57)), window=True)
    return b, [j]


def _dishwasher(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.45, 0.6), rng.uniform(0.55, 0.62), rng.uniform(0.8, 0.87)
    t, g, td, plinth = 0.02, 0.004, 0.05, 0.1
    b = _Builder(_appliance_palette(rng))
    b.box("body", "dark", (-W / 2, -D / 2 + 0.04, 0.0), (W / 2, D / 2, plinth))
    _hollow_box(b, "body", "body", -W / 2, W / 2, -D / 2, D / 2, plinth, H, t)
    for z in (plinth + 0.3 * (H - plinth), plinth + 0.65 * (H - plinth)):  # racks: rails and rods
        for x in np.linspace(-W / 2 + t + 0.03, W / 2 - t - 0.03, 7):
            b.box("body", "handle", (x - 0.004, -D / 2 + 0.06, z), (x + 0.004, D / 2 - t - 0.03, z + 0.008))
        b.box("body", "handle", (-W / 2 + t + 0.02, -D / 2 + 0.05, z + 0.008), (W / 2 - t - 0.02, -D / 2 + 0.06, z + 0.06))
    j = _drop_door(b, "door", -W / 2 + 0.003, W / 2 - 0.003, plinth + 0.003, H - 0.003, -D / 2 - g, td,
                   float(rng.uniform(1.45, 1.57)), window=False)
    b.box("door", "panel", (-W / 2 + 0.02, -D / 2 - g - td - 0.003, H - 0.06), (W / 2 - 0.02, -D / 2 - g - td, H - 0.015))
    return b, [j]


def _washing_machine(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.55, 0.62), rng.uniform(0.5, 0.6), rng.uniform(0.82, 0.9)
    t, g, td, zb = 0.02, 0.004, 0.045, 0.08
    S = W - 2 * t  # the square front plate holding the porthole
    zc = zb + S / 2
    r_hole = 0.32 * S
    b = _Builder(_appliance_palette(rng))
    b.box("body", "body", (-W / 2, -D / 2, 0.0), (-W / 2 + t, D / 2, H))
    b.box("body", "body", (W / 2 - t, -D / 2, 0.0), (W / 2, D / 2, H))
    b.box("body", "body", (-W / 2 + t, -D / 2, 0.0), (W / 2 - t, D / 2, t))
    b.box("body", "body", (-W / 2 + t, -D / 2, H - t), (W / 2 - t, D / 2, H))
    b.box("body", "body", (-W / 2 + t, D / 2 - t, t), (W / 2 - t, D / 2, H - t))
    b.box("body", "body", (-W / 2 + t, -D / 2, t), (W / 2 - t, -D / 2 + t, zb))  # kick plate
    b.add("body", "body", _square_with_hole((0.0, -D / 2, zc), S / 2, r_hole, t))
    b.box("body", "body", (-W / 2 + t, -D / 2, zb + S), (W / 2 - t, -D / 2 + t, H - t))
    b.box("body", "panel", (-W / 2 + t + 0.01, -D / 2 - 0.004, zb + S + 0.02), (W / 2 - t - 0.01, -D / 2, H - t - 0.02))
    drum_depth = D - 2 * t - 0.06
    b.add("body", "inner", _cylinder((0.0, -D / 2 + t, zc), _Y, r_hole, drum_depth, caps=(False, True), inward=True))
    Rd = r_hole + 0.045
    yb = -D / 2 - g
    b.add("door", "front", _cylinder((0.0, yb, zc), -_Y, Rd, td, caps=(True, True)))
    b.add("door", "glass", _cylinder((0.0, yb - td, zc), -_Y, 0.7 * Rd, 0.004, caps=(False, True)))
    b.box("door", "handle", (Rd - 0.05, yb - td - 0.025, zc - 0.05), (Rd - 0.02, yb - td, zc + 0.05))
    j = Joint("revolute", -_Z, (-Rd, yb, zc), (0.0, float(rng.uniform(1.45, 1.6))), child="door", parent="body",
              name="door_hinge")
    return b, [j]


def _box_with_lid(rng) -> tuple[_Builder, list[Joint]]:
    W, D, H = rng.uniform(0.25, 0.6), rng.uniform(0.2, 0.45), rng.uniform(0.12, 0.35)
    t, g, tl, lip = 0.012, 0.002, 0.015, 0.025
    b = _Builder(_furniture_palette(rng))
    b.box("body", "body", (-W / 2, -D / 2, 0.0), (W / 2, D / 2, t))
    b.box("body", "body", (-W / 2, -D / 2, t), (-W / 2 + t, D / 2, H))
    b.box("body", "body", (W / 2 - t, -D / 2, t), (W / 2, D / 2, H))
    b.box("body", "body", (-W / 2 + t, -D / 2, t), (W / 2 - t, -D / 2 + t, H))
    b.box("body", "body", (-W / 2 + t, D / 2 - t, t), (W / 2 - t, D / 2, H))
    b.box("body", "inner", (-W / 2 + t, -D / 2 + t, t), (W / 2 - t, D / 2 - t, t + 0.002))
    gap = 0.004  # lip clearance from the front wall while the lid starts to turn
    b.box("lid", "front", (-W / 2, -D / 2 - gap, H + g), (W / 2, D / 2, H + g + tl))
    b.box("lid", "front", (-W / 2, -D / 2 - gap - 0.008, H - lip), (W / 2, -D / 2 - gap, H + g + tl))
    b.box("lid", "handle", (-0.04, -D / 2 - gap - 0.02, H - lip + 0.004), (0.04, -D / 2 - gap - 0.008, H - lip + 0.014))
    j = Joint("revolute", -_X, (0.0, D / 2, H + g), (0.0, float(rng.uniform(1.6, 2.0))), child="lid", parent="body",
              name="lid_hinge")
    return b, [j]


def _laptop(rng) -> tuple[_Builder, list[Joint]]:
    W, D = rng.uniform(0.3, 0.4), rng.uniform(0.21, 0.28)
    hb, ts, g = rng.uniform(0.015, 0.022), rng.uniform(0.006, 0.01), 0.004
    shell = _pick(rng, [(0.75, 0.76, 0.78), (0.2, 0.2, 0.22), (0.55, 0.56, 0.6)])
    palette = {"body": tx.brushed_metal(rng, shell), "front": tx.brushed_metal(rng, shell),
               "keys": tx.keypad(rng, _jitter(rng, (0.12, 0.12, 0.13)), _jitter(rng, (0.3, 0.3, 0.32)), keys=(12, 5)),
               "pad": tx.speckle(rng, tuple(0.85 * np.asarray(shell)), strength=0.04),
               "screen": tx.glass(rng, _jitter(rng, (0.06, 0.08, 0.12)))}
    b = _Builder(palette)
    b.box("base", "body", (-W / 2, -D / 2, 0.0), (W / 2, D / 2, hb))
    b.box("base", "keys", (-0.42 * W, -0.05 * D, hb), (0.42 * W, 0.42 * D, hb + 0.001))
    b.box("base", "pad", (-0.14 * W, -0.45 * D, hb), (0.14 * W, -0.12 * D, hb + 0.0008))
    z0 = hb + g
    b.box("screen", "front", (-W / 2, -D / 2, z0), (W / 2, D / 2, z0 + ts))
    b.box("screen", "screen", (-0.46 * W, -0.44 * D, z0 - 0.0008), (0.46 * W, 0.4 * D, z0))
    j = Joint("revolute", -_X, (0.0, D / 2, z0), (0.0, float(rng.uniform(1.75, 2.0))), child="screen",
              parent="base", name="screen_hinge")
    return b, [j]


def _trash_can(rng) -> tuple[_Builder, list[Joint]]:
    R, H = rng.uniform(0.14, 0.2), rng.uniform(0.3, 0.5)
    t, g, tl = 0.006, 0.003, 0.015
    b = _Builder(_appliance_palette(rng))
    b.add("body", "body", _cylinder((0, 0, 0), _Z, R, H, caps=(True, False)))
    b.add("body", "inner", _cylinder((0, 0, t), _Z, R - t, H - t, caps=(True, False), inward=True))
    b.add("body", "body", _annulus((0, 0, H), _Z, R - t, R))
    b.box("body", "dark", (-0.05, -R - 0.06, 0.0), (0.05, -R + 0.01, 0.02))  # pedal
    Rl = R + 0.004
    b.add("lid", "front", _cylinder((0, 0, H + g), _Z, Rl, tl))
    b.box("lid", "handle", (-0.03, -Rl - 0.015, H + g + 0.002), (0.03, -Rl + 0.01, H + g + tl - 0.002))
    j = Joint("revolute", -_X, (0.0, Rl, H + g), (0.0, float(rng.uniform(1.6, 1.95))), child="lid", parent="body",
              name="lid_hinge")
    return b, [j]


_MAKERS = {
    "cabinet": _cabinet, "chest_of_drawers": _chest, "microwave": _microwave, "fridge": _fridge, "oven": _oven,
    "box": _box_with_lid, "laptop": _laptop, "trash_can": _trash_can, "dishwasher": _dishwasher,
    "washing_machine": _washing_machine,
}


def make_object(category: str, seed: int) -> PartMesh:
    """A procedural articulated object of ``category`` (see ``CATEGORIES``); the same seed gives identical
    arrays. Proportions, colours, textures and (where the category allows) the hinge side vary with the seed."""
    if category not in _MAKERS:
        raise InputError(f"unknown procedural category '{category}'; choose one of: {', '.join(CATEGORIES)}")
    seed = int(seed)
    if seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(category.encode())]))
    builder, joints = _MAKERS[category](rng)
    return builder.build(category, seed, joints)


# --- text ----------------------------------------------------------------------------------------------------
def object_noun(mesh: PartMesh) -> str:
    if mesh.category in DISPLAY_NAMES:
        return DISPLAY_NAMES[mesh.category]
    return (mesh.category or mesh.name or "object").replace("_", " ")


def _direction_words(axis: np.ndarray) -> str:
    names = {0: "x", 1: "y", 2: "z"}
    k = int(np.argmax(np.abs(axis)))
    if abs(axis[k]) > 0.999:
        return ("vertical" if k == 2 else "horizontal") + f" ({'+' if axis[k] > 0 else '-'}{names[k].upper()})"
    return "oblique (" + ", ".join(f"{a:.2f}" for a in axis) + ")"


def _part_words(mesh: PartMesh, part: str) -> str:
    """'the left door', 'the top drawer', 'the lid'."""
    drawers = sorted((p for p in mesh.part_names if p.startswith("drawer_")), key=lambda p: int(p.split("_")[1])
                     if p.split("_")[1].isdigit() else 0)
    if part in drawers and len(drawers) > 1:
        i, n = drawers.index(part), len(drawers)
        ordinals = ["second", "third", "fourth", "fifth"]
        if i == 0:
            return "the top drawer"
        if i == n - 1:
            return "the bottom drawer"
        return f"the {ordinals[i - 1]} drawer from the top"
    return "the " + part.replace("_", " ")


def default_prompt(mesh: PartMesh, part: str) -> str:
    """A motion prompt such as "the left door of the fridge is being opened"."""
    part = mesh.part_names[mesh.part_index(part)]
    joint = mesh.joint_for_part(part)
    noun = object_noun(mesh)
    if joint is not None and joint.type == "prismatic":
        verb = "pulled out"
    elif part in ("lid", "screen"):
        verb = "lifted open" if part == "lid" else "opened"
    else:
        verb = "opened"
    return f"{_part_words(mesh, part)} of the {noun} is being {verb}"


def describe(mesh: PartMesh) -> str:
    """One paragraph: the object, its size in source units, its parts and each joint."""
    s = similarity_scale(mesh.normalized_from_source)
    size = (mesh.vertices.max(0) - mesh.vertices.min(0)) / s
    unit = " m" if mesh.source_format == "procedural" else " source units"
    words = [f"A {object_noun(mesh)} ('{mesh.name}'), {size[0]:.2f} x {size[1]:.2f} x {size[2]:.2f}{unit} "
             f"(width x depth x height), {len(mesh.faces)} faces, {len(mesh.part_names)} parts: "
             + ", ".join(mesh.part_names) + "."]
    for part in mesh.part_names:
        j = mesh.joint_for_part(part)
        if j is None:
            continue
        if j.type == "revolute":
            words.append(f"'{part}' turns on revolute joint '{j.name}' about a {_direction_words(j.axis)} axis "
                         f"through ({', '.join(f'{o:.3f}' for o in j.origin)}), opening 0 to {j.limits[1]:.2f} rad "
                         f"({math.degrees(j.limits[1]):.0f} deg).")
        else:
            words.append(f"'{part}' slides on prismatic joint '{j.name}' along {_direction_words(j.axis)}, "
                         f"opening 0 to {j.limits[1]:.3f} (normalised units, {j.limits[1] / s:.3f}{unit}).")
    static = [p for p in mesh.part_names if mesh.joint_for_part(p) is None]
    if static:
        words.append("Static: " + ", ".join(static) + ".")
    return " ".join(words)
