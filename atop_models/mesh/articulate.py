"""Posing a segmented mesh by joint values (pure functions).

Joints are defined at rest (q = 0) in the normalised frame. A part below a chain of joints J1 (nearest the
base) ... Jk (nearest the part) moves by T1(q1) @ ... @ Tk(qk): the child's motion is applied first, about
its rest axis, and every parent joint then carries the result (and the child's axis) along.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..geometry.transforms import apply_transform, joint_matrix
from ..types import Joint, PartMesh

LIMIT_TOLERANCE = 1e-6


def _parent_map(mesh: PartMesh, joints: list[Joint]) -> dict[str, tuple[str | None, Joint | None]]:
    """child link/part -> (parent, joint moving it or None for a rigid attachment)."""
    parents: dict[str, tuple[str | None, Joint | None]] = {c: (p, None) for c, p in mesh.attached.items()}
    for j in joints:
        parents[j.child] = (j.parent, j)
    return parents


def governing_joint(mesh: PartMesh, part: str, joints: list[Joint] | None = None) -> Joint | None:
    """The nearest joint above ``part`` (its own joint, or the one moving the part it is attached to)."""
    joints = mesh.joints if joints is None else joints
    parents = _parent_map(mesh, joints)
    node, seen = part, set()
    while node in parents and node not in seen:
        seen.add(node)
        parent, joint = parents[node]
        if joint is not None:
            return joint
        node = parent
    return None


def resolve_joint(mesh: PartMesh, key: str, joints: list[Joint] | None = None) -> Joint:
    """A joint by its name, its child's name, or the name of a part it moves rigidly."""
    joints = mesh.joints if joints is None else joints
    for j in joints:
        if j.name and j.name == key:
            return j
    for j in joints:
        if j.child == key:
            return j
    if key in mesh.part_names or key.strip().lower() in [p.lower() for p in mesh.part_names]:
        part = mesh.part_names[mesh.part_index(key)]
        j = governing_joint(mesh, part, joints)
        if j is not None:
            return j
        raise InputError(f"part '{part}' has no joint (it is static); choose a moving part or give its joint; "
                         f"joints: {_joint_list(joints)}")
    raise InputError(f"no joint or part named '{key}'; joints: {_joint_list(joints)}; "
                     f"parts: {', '.join(mesh.part_names)}")


def _joint_list(joints: list[Joint]) -> str:
    return ", ".join(f"{j.name or '?'} (moves {j.child})" for j in joints) or "none"


def check_joint_value(joint: Joint, value: float) -> None:
    lo, hi = joint.limits
    if not np.isfinite(value) or value < lo - LIMIT_TOLERANCE or value > hi + LIMIT_TOLERANCE:
        unit = "rad" if joint.type == "revolute" else "units"
        raise InputError(f"value {value:.6g} for joint '{joint.name or joint.child}' is outside its range "
                         f"[{lo:.6g}, {hi:.6g}] {unit}; give a value within the joint limits")


def part_transforms(mesh: PartMesh, joint_values: dict[str, float],
                    joints: list[Joint] | None = None) -> np.ndarray:  # [P, 4, 4]
    """world_from_rest transform of every part for the given joint values (others stay at 0)."""
    joints = mesh.joints if joints is None else joints
    values: dict[int, float] = {}
    for key, value in joint_values.items():
        j = resolve_joint(mesh, key, joints)
        check_joint_value(j, float(value))
        values[id(j)] = float(value)
    parents = _parent_map(mesh, joints)
    out = np.repeat(np.eye(4)[None], len(mesh.part_names), axis=0)
    for i, part in enumerate(mesh.part_names):
        T, node, seen = np.eye(4), part, set()
        while node in parents and node not in seen:  # walk from the part up to the base
            seen.add(node)
            parent, joint = parents[node]
            if joint is not None and values.get(id(joint), 0.0) != 0.0:
                T = joint_matrix(joint, values[id(joint)]) @ T
            node = parent
        out[i] = T
    return out


def posed_vertices(mesh: PartMesh, joint_values: dict[str, float],
                   joints: list[Joint] | None = None) -> np.ndarray:  # [V, 3]
    """Vertices with every named joint set to its value; keys are joint names or (child) part names."""
    T = part_transforms(mesh, joint_values, joints)
    out = mesh.vertices.copy()
    vertex_part = np.full(len(mesh.vertices), -1, dtype=np.int64)
    vertex_part[mesh.faces.reshape(-1)] = np.repeat(mesh.face_part, 3)
    for i in range(len(mesh.part_names)):
        if np.allclose(T[i], np.eye(4)):
            continue
        sel = vertex_part == i
        out[sel] = apply_transform(T[i], mesh.vertices[sel])
    return out


def pose_mesh(mesh: PartMesh, joint_values: dict[str, float], joints: list[Joint] | None = None) -> PartMesh:
    """A copy of the mesh in the given joint state (joints keep their rest-state definition)."""
    posed = mesh.copy()
    posed.vertices = posed_vertices(mesh, joint_values, joints)
    return posed


def joint_values_for_fraction(joint: Joint, fraction):
    """Joint value at ``fraction`` (0..1, scalar or array) of the opening motion.

    Rule: the motion starts at rest (0 clipped into the limits) and "opening" goes toward ``limits[1]``;
    only when the rest already sits at ``limits[1]`` (no room above) does it go toward ``limits[0]``.
    """
    lo, hi = joint.limits
    rest = float(np.clip(0.0, lo, hi))
    target = hi if hi - rest > LIMIT_TOLERANCE else lo
    f = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)
    out = rest + f * (target - rest)
    return float(out) if out.ndim == 0 else out
