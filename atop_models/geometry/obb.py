"""Oriented bounding boxes from principal components, and the paper's joint candidates derived from them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass
class OrientedBox:
    centre: np.ndarray  # [3]
    axes: np.ndarray  # [3, 3] rows = unit principal directions (largest variance first), right-handed
    half_extents: np.ndarray  # [3] along each axis

    def face_centres(self) -> np.ndarray:  # [6, 3]: +a0, -a0, +a1, -a1, +a2, -a2
        out = []
        for k in range(3):
            for s in (1.0, -1.0):
                out.append(self.centre + s * self.half_extents[k] * self.axes[k])
        return np.array(out)

    def corners(self) -> np.ndarray:  # [8, 3]
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        return self.centre + (signs * self.half_extents) @ self.axes


def pca_obb(points: np.ndarray, *, robust: bool = True, reach: float = 2.2) -> OrientedBox:
    """PCA box of ``points`` [N, 3]. ``robust``: axes and extents (0.5/99.5 percentiles) from the points
    within ``reach`` times the median distance to the median point, so floaters far from the part can
    neither tilt the axes nor stretch the box (a solid part's points all lie within about twice that
    median distance)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 4:
        raise InputError(f"an oriented bounding box needs at least 4 points [N, 3], got shape {pts.shape}")
    sel = pts
    if robust and len(pts) >= 20:
        d = np.linalg.norm(pts - np.median(pts, axis=0), axis=1)
        sel = pts[d <= reach * np.median(d) + 1e-12]
    mean = sel.mean(axis=0)
    cov = np.cov((sel - mean).T)
    evals, evecs = np.linalg.eigh(cov)
    axes = evecs[:, ::-1].T.copy()  # rows, largest variance first
    if np.linalg.det(axes) < 0:
        axes[2] *= -1.0
    proj = (sel - mean) @ axes.T  # [N', 3]
    lo, hi = (np.percentile(proj, 0.5, axis=0), np.percentile(proj, 99.5, axis=0)) if robust else (proj.min(0), proj.max(0))
    centre = mean + ((lo + hi) / 2) @ axes
    return OrientedBox(centre=centre, axes=axes, half_extents=(hi - lo) / 2)


def candidate_origins(box: OrientedBox) -> np.ndarray:  # [7, 3]: centre, then the 6 face centres
    return np.vstack([box.centre[None], box.face_centres()])


def candidate_directions(box: OrientedBox) -> np.ndarray:  # [6, 3]: +a0, -a0, +a1, -a1, +a2, -a2
    return np.stack([s * box.axes[k] for k in range(3) for s in (1.0, -1.0)])
