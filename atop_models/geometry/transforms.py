"""Rigid transforms and joint motion (pure functions, float64 numpy)."""
from __future__ import annotations

import numpy as np

from ..types import Joint


def rotation_about_axis(axis: np.ndarray, angle: float) -> np.ndarray:  # [3, 3]
    """Rodrigues' rotation by ``angle`` radians about the unit ``axis`` (right-hand rule)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * (K @ K)


def joint_transform(joint_type: str, axis: np.ndarray, origin: np.ndarray, value: float) -> np.ndarray:  # [4, 4]
    """World transform that moves the child part to joint ``value`` (radians or length)."""
    T = np.eye(4)
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    if joint_type == "revolute":
        R = rotation_about_axis(axis, value)
        o = np.asarray(origin, dtype=np.float64)
        T[:3, :3] = R
        T[:3, 3] = o - R @ o
    elif joint_type == "prismatic":
        T[:3, 3] = axis * value
    else:
        raise ValueError(f"unknown joint type {joint_type!r}")
    return T


def joint_matrix(joint: Joint, value: float) -> np.ndarray:  # [4, 4]
    return joint_transform(joint.type, joint.axis, joint.origin, value)


def apply_transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:  # [..., 3]
    return points @ T[:3, :3].T + T[:3, 3]


def joint_in_frame(joint: Joint, T: np.ndarray) -> Joint:
    """The joint expressed in the frame x' = T x (T a similarity: rotation, uniform scale, translation)."""
    s = float(np.cbrt(abs(np.linalg.det(T[:3, :3]))))
    axis = T[:3, :3] @ joint.axis
    origin = T[:3, :3] @ joint.origin + T[:3, 3]
    limits = joint.limits if joint.type == "revolute" else (joint.limits[0] * s, joint.limits[1] * s)
    amounts = None
    if joint.amounts is not None:
        amounts = joint.amounts if joint.type == "revolute" else np.asarray(joint.amounts) * s
    return joint.replace(axis=axis, origin=origin, limits=limits, amounts=amounts)
