"""Closed-form joint estimation from point correspondences: per-frame rigid fits (weighted Kabsch with
robust reweighting) and the joint (screw) axis that explains them."""
from __future__ import annotations

import numpy as np


def kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R [3, 3] and translation t [3] minimising sum w |R src + t - dst|^2 (src, dst [N, 3])."""
    w = np.ones(len(src)) if w is None else np.asarray(w, dtype=np.float64)
    w = w / max(w.sum(), 1e-300)
    cs, cd = w @ src, w @ dst
    H = (src - cs).T @ ((dst - cd) * w[:, None])
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0])
    R = Vt.T @ D @ U.T
    return R, cd - R @ cs


def huber_weights(r: np.ndarray, delta: float) -> np.ndarray:
    """IRLS weights of the Huber loss for residual norms ``r``."""
    return np.where(r <= delta, 1.0, delta / np.maximum(r, 1e-300))


def robust_scale(r: np.ndarray, floor: float) -> float:
    """Noise scale from the median residual norm (MAD-like), never below ``floor``."""
    return max(1.4826 * float(np.median(r)), floor)


def robust_rigid_fit(src: np.ndarray, dst: np.ndarray, *, iterations: int = 8, floor: float = 1e-9,
                     cap: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kabsch with Huber reweighting; pairs farther than ``cap`` get no weight. Returns R, t, weights [N]."""
    R, t = kabsch(src, dst)
    w = np.ones(len(src))
    for _ in range(iterations):
        r = np.linalg.norm(src @ R.T + t - dst, axis=1)
        w = huber_weights(r, 1.345 * robust_scale(r, floor)) * (r <= cap)
        if w.sum() < 3:
            break
        R, t = kabsch(src, dst, w)
    return R, t, w


def robust_translation_fit(src: np.ndarray, dst: np.ndarray, *, iterations: int = 8, floor: float = 1e-9,
                           cap: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Translation t [3] minimising the Huber loss of |src + t - dst| (pairs farther than ``cap`` get no
    weight). Returns t and the weights [N]. A slide seen through tracks: unlike the translation of a rigid
    fit, it does not absorb a noisy rotation about a far point."""
    diff = dst - src
    t = np.median(diff, axis=0)
    w = np.ones(len(src))
    for _ in range(iterations):
        r = np.linalg.norm(diff - t, axis=1)
        w = huber_weights(r, 1.345 * robust_scale(r, floor)) * (r <= cap)
        if w.sum() <= 0:
            break
        t = (w @ diff) / w.sum()
    return t, w


def rotation_log(R: np.ndarray) -> np.ndarray:  # [3] axis * angle
    """Axis-angle vector of a rotation (angle in [0, pi])."""
    c = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(c))
    v = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if angle < 1e-7:
        return 0.5 * v
    if np.pi - angle < 1e-4:  # near pi the antisymmetric part vanishes: axis from R + I
        B = (R + np.eye(3)) / 2.0
        axis = B[np.argmax(np.diag(B))]
        axis = axis / np.linalg.norm(axis)
        if axis @ v < 0:
            axis = -axis
        return axis * angle
    return v / (2.0 * np.sin(angle)) * angle


def revolute_from_transforms(Rs: np.ndarray, ts: np.ndarray, centre: np.ndarray,
                             weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hinge explaining rigid motions x -> R_f x + t_f (Rs [F, 3, 3], ts [F, 3]).

    Axis: principal direction of the axis-angle vectors (larger rotations weigh more); angles: their signed
    components on it. Origin: least squares of (I - R_f) o = t_f (perpendicular part), the point of the line
    nearest ``centre``. Returns axis [3], origin [3], angles [F]."""
    w = np.ones(len(Rs)) if weights is None else np.asarray(weights, dtype=np.float64)
    omegas = np.array([rotation_log(R) for R in Rs])  # [F, 3]
    M = (omegas * w[:, None]).T @ omegas
    axis = np.linalg.eigh(M)[1][:, -1]
    angles = omegas @ axis
    if np.abs(angles).max() > 0 and angles[np.argmax(np.abs(angles))] < 0:
        axis, angles = -axis, -angles
    P = np.eye(3) - np.outer(axis, axis)
    A = np.concatenate([(np.eye(3) - R) * np.sqrt(wi) for R, wi in zip(Rs, w)] + [axis[None]])
    b = np.concatenate([(P @ t) * np.sqrt(wi) for t, wi in zip(ts, w)] + [[axis @ centre]])
    origin = np.linalg.lstsq(A, b, rcond=None)[0]
    return axis, origin, angles


def prismatic_from_transforms(ts: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Slide direction (principal direction of the translations) and amounts [F] along it."""
    w = np.ones(len(ts)) if weights is None else np.asarray(weights, dtype=np.float64)
    M = (ts * w[:, None]).T @ ts
    axis = np.linalg.eigh(M)[1][:, -1]
    amounts = ts @ axis
    if np.abs(amounts).max() > 0 and amounts[np.argmax(np.abs(amounts))] < 0:
        axis, amounts = -axis, -amounts
    return axis, amounts
