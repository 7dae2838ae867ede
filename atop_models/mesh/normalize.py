"""Source frame -> normalised frame: up-axis rotation, bounding-box centring, uniform scaling.

``normalized_from_source`` (a 4x4 similarity) is stored on every loaded mesh so that exports can map
results back to the source file's frame and units with its inverse.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..types import NORMALISED_EXTENT

UP_AXES = ("auto", "z", "y")


def up_rotation(up_axis: str) -> np.ndarray:  # [4, 4]
    """Rotation taking a source frame with the given up axis to our +Z-up world.

    Y-up (glTF): +90 degrees about X, so +Y -> +Z and the glTF front (+Z) -> -Y, where azimuth 0 looks from.
    """
    T = np.eye(4)
    if up_axis == "y":
        T[:3, :3] = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    elif up_axis != "z":
        raise InputError(f"up axis '{up_axis}' is not supported; use one of: z, y")
    return T


def yaw_rotation(degrees: float) -> np.ndarray:  # [4, 4]
    """Rotation about +Z (counter-clockwise seen from above)."""
    a = np.deg2rad(degrees)
    T = np.eye(4)
    T[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return T


def normalization_matrix(vertices: np.ndarray, up_axis: str, extent: float = NORMALISED_EXTENT,
                         yaw_deg: float = 0.0) -> np.ndarray:  # [4, 4]
    """Similarity: rotate to +Z up (then by ``yaw_deg`` about +Z so the object's front faces -Y), centre the
    bounding box at the origin, scale the largest side to ``extent``."""
    R = yaw_rotation(yaw_deg) @ up_rotation(up_axis)
    v = np.asarray(vertices, dtype=np.float64) @ R[:3, :3].T  # [N, 3]
    if len(v) == 0:
        raise InputError("the mesh has no vertices; nothing to load; export the mesh with its geometry")
    if not np.all(np.isfinite(v)):
        raise InputError("the mesh has non-finite (NaN/inf) vertex coordinates; the file is damaged; "
                         "repair or re-export the mesh")
    lo, hi = v.min(0), v.max(0)
    size = float((hi - lo).max())
    if size <= 1e-12 * max(1.0, float(np.abs(v).max())):
        raise InputError("the mesh is degenerate (all vertices at one point, zero extent); "
                         "it cannot be scaled to a normalised size; check the file's geometry and units")
    s = extent / size
    S = np.diag([s, s, s, 1.0])
    S[:3, 3] = -s * (lo + hi) / 2
    return S @ R


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:  # [N, 3]
    return np.asarray(points, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]


def similarity_scale(T: np.ndarray) -> float:
    """Uniform scale factor of a similarity transform."""
    return float(np.cbrt(abs(np.linalg.det(T[:3, :3]))))
