"""ImageDream's camera rig (notes/imagedream.md section 6) and pinhole projection helpers.

World: +Z up. Camera-to-world matrices use OpenGL camera axes (+x right, +y up, looking along -z).
Azimuth 0 looks at the object's front from -Y; azimuths increase counter-clockwise seen from +Z.
"""
from __future__ import annotations

import numpy as np

from ..types import CameraRig

DEFAULT_AZIMUTHS = (0.0, 90.0, 180.0, 270.0)
DEFAULT_ELEVATION = 15.0
DEFAULT_FOV = 40.0
DEFAULT_DISTANCE = 2.0


def imagedream_c2w(elevation_deg: float, azimuth_deg: float, distance: float = 1.0) -> np.ndarray:  # [4, 4]
    """Closed form of ImageDream's ``get_camera`` (blender_coord=True), scaled to ``distance``."""
    e, a = np.deg2rad(elevation_deg), np.deg2rad(azimuth_deg)
    ce, se, ca, sa = np.cos(e), np.sin(e), np.cos(a), np.sin(a)
    return np.array(
        [
            [ca, -se * sa, ce * sa, distance * ce * sa],
            [sa, se * ca, -ce * ca, -distance * ce * ca],
            [0.0, ce, se, distance * se],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def imagedream_camera_vector(c2w: np.ndarray) -> np.ndarray:  # [V, 16]
    """The model's 16-number camera input: row-major c2w with the translation scaled to unit norm."""
    c2w = np.array(c2w, dtype=np.float64, copy=True).reshape(-1, 4, 4)
    t = np.linalg.norm(c2w[:, :3, 3], axis=-1, keepdims=True)
    c2w[:, :3, 3] = c2w[:, :3, 3] / np.maximum(t, 1e-12)
    return c2w.reshape(-1, 16)


def imagedream_rig(
    num_views: int = 4,
    elevation_deg: float = DEFAULT_ELEVATION,
    azimuth_start_deg: float = 0.0,
    fov_deg: float = DEFAULT_FOV,
    distance: float = DEFAULT_DISTANCE,
    resolution: int = 256,
    azimuths_deg: tuple[float, ...] | None = None,
) -> CameraRig:
    """Views evenly spaced in azimuth (0/90/180/270 for 4 views), one elevation, looking at the origin."""
    if num_views < 1:
        raise ValueError(f"num_views must be at least 1, got {num_views}")
    if not 1.0 <= fov_deg <= 150.0:
        raise ValueError(f"field of view must be within 1..150 degrees, got {fov_deg}")
    if distance <= 0:
        raise ValueError(f"camera distance must be positive, got {distance}")
    if azimuths_deg is None:
        azimuths_deg = tuple(azimuth_start_deg + 360.0 * i / num_views for i in range(num_views))
    az = np.asarray(azimuths_deg, dtype=np.float64)
    el = np.full_like(az, float(elevation_deg))
    c2w = np.stack([imagedream_c2w(e, a, distance) for e, a in zip(el, az)])
    return CameraRig(c2w=c2w, fov_deg=float(fov_deg), width=int(resolution), height=int(resolution),
                     elevation_deg=el, azimuth_deg=az, distance=float(distance))


def world_to_pixels(rig: CameraRig, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points [N, 3] into every view: pixel coords [V, N, 2] (x right, y down) and depth [V, N]."""
    pts = np.asarray(points, dtype=np.float64)
    w2c = np.linalg.inv(rig.c2w)  # [V, 4, 4]
    cam = pts @ w2c[:, :3, :3].transpose(0, 2, 1) + w2c[:, None, :3, 3]  # [V, N, 3] OpenGL camera coords
    depth = -cam[..., 2]
    K = rig.intrinsics()
    x = K[:, None, 0, 0] * cam[..., 0] / depth + K[:, None, 0, 2]
    y = -K[:, None, 1, 1] * cam[..., 1] / depth + K[:, None, 1, 2]
    return np.stack([x, y], axis=-1), depth


def pixel_span(rig: CameraRig, points: np.ndarray) -> float:
    """How many pixels (at the rig's resolution) points [N, 3] span in the view where they span most: the
    longer side of their projected bounding box."""
    px, _ = world_to_pixels(rig, points)
    extent = px.max(1) - px.min(1)  # [V, 2]
    return float(extent.max())


def pixel_rays(rig: CameraRig) -> tuple[np.ndarray, np.ndarray]:
    """Ray origins [V, H*W, 3] and unit directions [V, H*W, 3] through pixel centres, row-major."""
    H, W = rig.height, rig.width
    f = 0.5 * H / np.tan(np.deg2rad(rig.fov_deg) / 2)
    xs = (np.arange(W) + 0.5 - W / 2) / f
    ys = -(np.arange(H) + 0.5 - H / 2) / f
    gx, gy = np.meshgrid(xs, ys)
    d_cam = np.stack([gx, gy, -np.ones_like(gx)], axis=-1).reshape(-1, 3)
    d_cam /= np.linalg.norm(d_cam, axis=-1, keepdims=True)
    dirs = d_cam[None] @ rig.c2w[:, :3, :3].transpose(0, 2, 1)  # [V, HW, 3]
    origins = np.broadcast_to(rig.c2w[:, None, :3, 3], dirs.shape).copy()
    return origins, dirs
