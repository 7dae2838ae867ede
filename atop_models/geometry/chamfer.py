"""Robust chamfer distances between point clouds.

Distances are capped at ``cap`` (a length): a point farther than ``cap`` from the other cloud counts as
``cap``. Outliers (floaters, mislabelled points) then cost a bounded amount instead of dominating the sum,
while a wrong motion still pays for every point it misplaces. ``cap=inf`` gives the plain chamfer.
The symmetric score is mean(capped a->b) + mean(capped b->a) (an L1 chamfer: robust to noise scale).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def capped_mean(d: np.ndarray, cap: float, axis=-1) -> np.ndarray:
    return np.minimum(d, cap).mean(axis=axis)


def one_sided(tree: cKDTree, points: np.ndarray, cap: float = np.inf) -> float:
    """Mean capped distance from ``points`` [N, 3] to the cloud of ``tree``."""
    d, _ = tree.query(points, k=1)
    return float(capped_mean(d, cap))


def chamfer(a: np.ndarray, b: np.ndarray, cap: float = np.inf, *, tree_a: cKDTree | None = None,
            tree_b: cKDTree | None = None) -> float:
    """Symmetric capped L1 chamfer between clouds a [N, 3] and b [M, 3] (cKDTree nearest neighbours)."""
    tree_a = cKDTree(a) if tree_a is None else tree_a
    tree_b = cKDTree(b) if tree_b is None else tree_b
    return one_sided(tree_b, a, cap) + one_sided(tree_a, b, cap)


def batched_chamfer(moved: np.ndarray, target: np.ndarray, cap: float = np.inf) -> np.ndarray:  # [B]
    """Chamfer between each of B small clouds ``moved`` [B, N, 3] and one ``target`` [M, 3], by brute-force
    pairwise distances (faster than trees for the few dozen points the discrete search uses)."""
    moved = np.asarray(moved, dtype=np.float32)  # single precision: ranking needs no more, and it is 2x faster
    target = np.asarray(target, dtype=np.float32)
    t2 = (target ** 2).sum(-1)  # [M]
    m2 = (moved ** 2).sum(-1)  # [B, N]
    d2 = (moved @ (-2.0 * target.T)).astype(np.float32)  # [B, N, M]
    d2 += m2[:, :, None]
    d2 += t2[None, None, :]
    np.maximum(d2, 0.0, out=d2)
    fwd = np.sqrt(d2.min(axis=2))  # [B, N]
    bwd = np.sqrt(d2.min(axis=1))  # [B, M]
    return capped_mean(fwd, cap) + capped_mean(bwd, cap)


def batched_chamfer_frames(moved: np.ndarray, targets: np.ndarray, cap: float = np.inf) -> np.ndarray:  # [B, F]
    """Chamfer between B x F small clouds ``moved`` [B, F, N, 3] and the frames' ``targets`` [F, M, 3] (cloud
    (b, f) against target f), brute force in single precision like ``batched_chamfer``."""
    moved = np.asarray(moved, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.float32)
    d2 = moved @ (-2.0 * targets).transpose(0, 2, 1)  # [B, F, N, M] (batched matmul: 3x faster than einsum)
    d2 += (moved ** 2).sum(-1)[..., None]
    d2 += (targets ** 2).sum(-1)[None, :, None, :]
    fwd = np.sqrt(np.maximum(d2.min(axis=3), 0.0))  # [B, F, N]; clamp only the minima (rounding below 0)
    bwd = np.sqrt(np.maximum(d2.min(axis=2), 0.0))  # [B, F, M]
    return capped_mean(fwd, cap) + capped_mean(bwd, cap)
