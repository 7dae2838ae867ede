"""Point sequences of a part moving along a joint: exact surface samples, optionally corrupted like the
output of a reconstruction (noise, floaters, sparse and unmatched points)."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..mesh.sampling import sample_surface
from ..types import Joint, PartMesh, PointSequence
from .transforms import apply_transform, joint_matrix


def point_sequence_from_joint(mesh: PartMesh, joint: Joint, values, *, n_points: int = 2000,
                              n_static: int | None = None, noise: float = 0.0, outliers: float = 0.0,
                              subsample: int = 1, drop_correspondence: float = 0.0, seed: int = 0) -> PointSequence:
    """Points on the surface of ``mesh`` with ``joint`` set to each of ``values`` [F] (frame 0 should be the
    rest state, value 0). The joint's child and everything below it move; the rest is static.

    ``n_points`` points on the moving parts and ``n_static`` (default ``n_points``) on the others, the same
    surface samples in every frame (tracked: ``track_ids`` = sample index). Corruption, independent per frame:
    ``noise`` Gaussian jitter with standard deviation ``noise`` x object bounding-box diagonal; ``outliers``
    fraction of the moving points replaced by uniform points in the object's bounding box (still labelled
    moving, keeping their track id: wrong matches); ``subsample`` K keeps a random 1/K of the moving and of
    the static points; ``drop_correspondence`` fraction of track ids set to -1 (1.0 drops them all: None).
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) < 2 or not np.isfinite(values).all():
        raise InputError(f"a point sequence needs at least 2 finite joint values, got {values.tolist()}")
    if n_points < 1 or subsample < 1 or not (0 <= outliers <= 1) or not (0 <= drop_correspondence <= 1) or noise < 0:
        raise InputError(f"invalid corruption settings: n_points={n_points}, subsample={subsample}, noise={noise}, "
                         f"outliers={outliers}, drop_correspondence={drop_correspondence}; need n_points >= 1, "
                         "subsample >= 1, noise >= 0, outliers and drop_correspondence in [0, 1]")
    moved_parts = mesh.parts_moved_by(joint)
    static_parts = [p for p in mesh.part_names if p not in moved_parts]
    n_static = n_points if n_static is None else int(n_static)
    rng = np.random.default_rng(seed)
    part, _ = sample_surface(mesh, moved_parts, n_points, seed=int(rng.integers(2**31)))
    static = (sample_surface(mesh, static_parts, n_static, seed=int(rng.integers(2**31)))[0]
              if static_parts and n_static > 0 else np.zeros((0, 3)))
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    sigma = noise * float(np.linalg.norm(hi - lo))
    n_keep_part = max(1, n_points // subsample)
    n_keep_static = len(static) // subsample
    frames, labels, ids = [], [], []
    for value in values:
        moved = apply_transform(joint_matrix(joint, float(value)), part)
        pid = np.arange(n_points)
        if outliers > 0:
            k = int(round(outliers * n_points))
            swap = rng.choice(n_points, k, replace=False)
            moved[swap] = rng.uniform(lo, hi, size=(k, 3))
        pi = np.sort(rng.choice(n_points, n_keep_part, replace=False)) if subsample > 1 else pid
        si = (np.sort(rng.choice(len(static), n_keep_static, replace=False)) if subsample > 1
              else np.arange(len(static)))
        pts = np.concatenate([moved[pi], static[si]])
        if sigma > 0:
            pts = pts + rng.normal(0.0, sigma, size=pts.shape)
        tid = np.concatenate([pi, n_points + si]).astype(np.int64)
        if 0 < drop_correspondence < 1:
            tid[rng.random(len(tid)) < drop_correspondence] = -1
        frames.append(pts)
        labels.append(np.concatenate([np.ones(len(pi), bool), np.zeros(len(si), bool)]))
        ids.append(tid)
    desc = [f"noise {noise:g}"] if noise else []
    desc += [f"outliers {outliers:g}"] if outliers else []
    desc += [f"subsample {subsample}"] if subsample > 1 else []
    desc += [f"dropped correspondences {drop_correspondence:g}"] if drop_correspondence else []
    return PointSequence(points=np.stack(frames), moving=np.stack(labels),
                         track_ids=None if drop_correspondence >= 1 else np.stack(ids), part_name=joint.child,
                         source="ground truth" + (f" ({', '.join(desc)})" if desc else ""))
