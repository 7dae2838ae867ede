"""Animated GLB: every articulated part opens through its range and closes again (one looping animation).

The static scene comes from ``glb.part_mesh_to_scene`` (one node per part, glTF Y-up baked into the
vertices); this module re-parents each articulated part under three nodes, pivot (translation = a point on
the axis) -> joint (animated rotation or translation) -> offset (the negated pivot), so the rotation turns
exactly about the axis at every instant, and appends the animation's samplers to the binary chunk. Parts
below another articulated part hang under that part's offset node and follow its motion.

Framing: viewers (ComfyUI's Preview 3D among them) frame a model by the bounding box of its rest pose, so an
opening door leaves the view. The file therefore also holds a ``motion_envelope`` node: two invisible points
(a POINTS primitive with a fully transparent material) at the corners of the box the parts sweep through
over the whole animation, which makes the viewer frame every moment of the motion.
"""
from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import write_bytes_atomic
from ..types import Joint, PartMesh
from .glb import Y_UP_FROM_Z_UP, part_mesh_to_scene
from ..geometry.transforms import joint_in_frame, joint_transform
from .urdf import BASE_LINK, _check_joints, link_assignment, output_frame

log = logging.getLogger("atop")

GLB_MAGIC, CHUNK_JSON, CHUNK_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
FLOAT, SCALAR, VEC3, VEC4 = 5126, "SCALAR", "VEC3", "VEC4"


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """Split a GLB container into its JSON document and binary chunk."""
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2:
        raise InputError("not a glTF 2.0 binary (GLB) file")
    off, doc, blob = 12, None, b""
    while off < length:
        clen, ctype = struct.unpack_from("<II", data, off)
        chunk = data[off + 8: off + 8 + clen]
        if ctype == CHUNK_JSON:
            doc = json.loads(chunk)
        elif ctype == CHUNK_BIN:
            blob = bytes(chunk)
        off += 8 + clen
    if doc is None:
        raise InputError("GLB file has no JSON chunk")
    return doc, blob


def pack_glb(doc: dict, blob: bytes) -> bytes:
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    blob += b"\0" * (-len(blob) % 4)
    total = 12 + 8 + len(js) + (8 + len(blob) if blob else 0)
    out = struct.pack("<III", GLB_MAGIC, 2, total) + struct.pack("<II", len(js), CHUNK_JSON) + js
    if blob:
        out += struct.pack("<II", len(blob), CHUNK_BIN) + blob
    return out


def _quat_xyzw(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:  # [K, 4]
    half = np.asarray(angle)[:, None] / 2
    return np.concatenate([np.sin(half) * axis[None], np.cos(half)], axis=1)


def motion_values(joint: Joint, frames: int) -> np.ndarray:  # [frames]
    """Rest -> fully open -> rest, eased (cosine), over ``frames`` keys."""
    lo, hi = joint.limits
    rest = float(np.clip(0.0, lo, hi))
    target = hi if hi - rest > 1e-9 else lo
    phase = (1 - np.cos(2 * np.pi * np.arange(frames) / (frames - 1))) / 2
    return rest + phase * (target - rest)


def animated_glb_bytes(mesh: PartMesh, joints: list[Joint], *, frames: int = 48, fps: float = 24.0,
                       frame: str = "source") -> bytes:
    joints = _check_joints(mesh, list(joints))
    if frames < 2 or fps <= 0:
        raise InputError(f"an animation needs at least 2 frames and a positive fps, got {frames} frames at {fps}")
    T = output_frame(mesh, frame)
    doc, blob = read_glb(part_mesh_to_scene(mesh, frame=frame, region_colours=True).export(file_type="glb"))
    blob = bytearray(blob)
    nodes = doc["nodes"]
    by_name = {n.get("name"): i for i, n in enumerate(nodes)}
    part_link, parent_link = link_assignment(mesh, joints)
    roots = doc["scenes"][doc.get("scene", 0)]["nodes"]

    def add_data(arr: np.ndarray, kind: str, with_bounds: bool = False) -> int:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        blob.extend(b"\0" * (-len(blob) % 4))
        doc.setdefault("bufferViews", []).append({"buffer": 0, "byteOffset": len(blob), "byteLength": arr.nbytes})
        blob.extend(arr.tobytes())
        acc = {"bufferView": len(doc["bufferViews"]) - 1, "componentType": FLOAT, "count": int(len(arr)), "type": kind}
        if with_bounds:
            acc["min"], acc["max"] = [float(arr.min())], [float(arr.max())]
        doc.setdefault("accessors", []).append(acc)
        return len(doc["accessors"]) - 1

    times = add_data(np.arange(frames) / fps, SCALAR, with_bounds=True)
    offset_node: dict[str, int] = {}
    channels, samplers = [], []
    # Parents before children: a joint whose parent link is another joint's link is handled after it.
    pending = list(joints)
    while pending:
        j = next(j for j in pending if parent_link[j.child] == BASE_LINK or parent_link[j.child] in offset_node)
        pending.remove(j)
        jo = joint_in_frame(j, T)
        axis = Y_UP_FROM_Z_UP @ (jo.axis / np.linalg.norm(jo.axis))
        pivot = Y_UP_FROM_Z_UP @ jo.origin
        parts = [by_name[p] for p, link in part_link.items() if link == j.child and p in by_name]
        nodes.append({"name": f"{j.child}_offset", "translation": (-pivot).tolist(), "children": parts})
        off = len(nodes) - 1
        nodes.append({"name": f"{j.child}_joint", "children": [off]})
        jn = len(nodes) - 1
        nodes.append({"name": f"{j.child}_pivot", "translation": pivot.tolist(), "children": [jn]})
        pv = len(nodes) - 1
        for p in parts:  # detach the part from where the static export put it
            if p in roots:
                roots.remove(p)
            for n in nodes[:-3]:
                if p in n.get("children", []):
                    n["children"].remove(p)
        parent = parent_link[j.child]
        if parent == BASE_LINK:
            roots.append(pv)
        else:
            nodes[offset_node[parent]]["children"].append(pv)
        offset_node[j.child] = off
        q = motion_values(jo, frames)
        if jo.type == "revolute":
            out, path = add_data(_quat_xyzw(axis, q), VEC4), "rotation"
        else:
            out, path = add_data(q[:, None] * axis[None], VEC3), "translation"
        samplers.append({"input": times, "output": out, "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": jn, "path": path}})
    lo, hi = motion_envelope(mesh, joints, T, frames)
    corners = add_data(np.stack([lo, hi]), VEC3)
    doc["accessors"][corners].update(min=lo.tolist(), max=hi.tolist())
    doc.setdefault("materials", []).append({"name": "motion_envelope", "alphaMode": "BLEND",
                                            "pbrMetallicRoughness": {"baseColorFactor": [0.0, 0.0, 0.0, 0.0]}})
    doc.setdefault("meshes", []).append({"name": "motion_envelope", "primitives": [
        {"attributes": {"POSITION": corners}, "mode": 0, "material": len(doc["materials"]) - 1}]})
    nodes.append({"name": "motion_envelope", "mesh": len(doc["meshes"]) - 1,
                  "extras": {"purpose": "corners of the box the animation sweeps, so that viewers frame it"}})
    roots.append(len(nodes) - 1)
    for n in nodes:
        if n.get("children") == []:
            del n["children"]
    doc.setdefault("animations", []).append({"name": "open_close", "channels": channels, "samplers": samplers})
    doc["buffers"] = [{"byteLength": len(blob) + (-len(blob) % 4)}]
    return pack_glb(doc, bytes(blob))


def motion_envelope(mesh: PartMesh, joints: list[Joint], T: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Corners (glTF Y-up, output frame ``T``) of the axis-aligned box every part occupies at some key of
    the animation: each part's vertices moved by the chain of joints above it, key by key."""
    part_link, parent_link = link_assignment(mesh, joints)
    verts = mesh.vertices @ T[:3, :3].T + T[:3, 3]  # [V, 3] output frame, Z-up
    by_link: dict[str, np.ndarray] = {}
    for pi, name in enumerate(mesh.part_names):
        used = np.unique(mesh.faces[mesh.face_part == pi])
        if len(used):
            link = part_link.get(name, BASE_LINK)
            by_link[link] = np.concatenate([by_link.get(link, np.zeros((0, 3))), verts[used]])
    moved = {j.child: joint_in_frame(j, T) for j in joints}
    values = {child: motion_values(jo, frames) for child, jo in moved.items()}
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for k in range(frames):
        world = {BASE_LINK: np.eye(4)}
        pending = list(moved)
        while pending:  # parents before children
            child = next(c for c in pending if parent_link[c] in world)
            pending.remove(child)
            jo = moved[child]
            world[child] = world[parent_link[child]] @ joint_transform(jo.type, jo.axis, jo.origin, values[child][k])
        for link, pts in by_link.items():
            M = world.get(link, np.eye(4))
            p = (pts @ M[:3, :3].T + M[:3, 3]) @ Y_UP_FROM_Z_UP.T
            lo, hi = np.minimum(lo, p.min(0)), np.maximum(hi, p.max(0))
    return lo, hi


def write_animated_glb(mesh: PartMesh, joints: list[Joint] | Joint, path: str | os.PathLike, *, frames: int = 48,
                       fps: float = 24.0, frame: str = "source") -> Path:
    """Write the animated GLB atomically (temp file, then rename); returns ``path``."""
    joints = [joints] if isinstance(joints, Joint) else list(joints)
    data = animated_glb_bytes(mesh, joints, frames=frames, fps=fps, frame=frame)
    path = Path(path)
    write_bytes_atomic(path, data)
    log.info("wrote animated GLB %s (%d joints, %d frames at %g fps)", path, len(joints), frames, fps)
    return path
