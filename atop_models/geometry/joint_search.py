"""Joint estimation from a point sequence: the paper's discrete OBB search, then continuous refinement, and
(when points are tracked across frames) a closed-form correspondence fit.

0. Cleaning: floaters (points whose k-th neighbour is far compared with the cloud's typical spacing) are
   dropped per frame; the noise level is estimated from tracked pairs when there are tracks (else from the
   spread of the rest points around local planes), and each cloud is denoised along its local normals when
   it is noisy.
1. Discrete search (the paper): PCA box of the part's rest points; 7 origins (centre, 6 face centres) x 6
   directions (3 box axes and their negations) x {revolute, prismatic}. For each candidate and frame the
   amount is found by a 1-D search over opening amounts (>= 0: a grid, then golden section); the score is
   the chamfer distance between the moved rest part and that frame's part points, summed over frames.
   Prismatic candidates do not depend on the origin, so each direction is evaluated once and listed for
   the 7 origins. The search compares small random subsets of points (``discrete_points``).
2. Refinement (beyond the paper): Levenberg-Marquardt on robust (Huber, truncated) point-to-plane plus
   point-to-point residuals between the moved rest part and every frame (nearest neighbours both ways,
   re-found every iteration in k-d trees built once per frame), jointly over the axis direction
   (2 angles), the origin (2 offsets perpendicular to the axis) and every frame's amount. Tracked points,
   when there are any, add their own residuals. Few points first; then every frame's amount is searched
   again over the whole range for the refined axis (a drawer sliding along its own walls has local minima),
   and the last iterations use more points. Every start (discrete best and track fit, per type) takes a
   few probe steps; the one that then explains the frames best is refined to the end. The starts stay
   contenders unrefined too.
3. Correspondences (when ``track_ids`` exist): a robust per-frame rigid fit (Kabsch) of tracked points and
   screw-axis extraction. When the tracks agree with one rigid motion per frame (reliable tracks), they
   decide alone; otherwise their fit is one more starting point of the refinement.
The final joint is the contender with the lowest robust score on the same points; "auto" type prefers
prismatic unless a revolute joint explains clearly more of the motion (it can always mimic a slide with a
far axis), by a margin of the explained motion and of the slide's own score (noise lets the hinge's extra
freedom explain a little more of anything); the margin may be met on the tracked points alone. Distances
are capped at ``cap`` x object size so outliers cost a bounded amount. "Does not move" compares the
estimated motion with the noise (about noise / sqrt(points) is what still frames yield).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError
from ..types import Joint, PointSequence
from .chamfer import batched_chamfer_frames
from .obb import candidate_origins, pca_obb
from .screw import (huber_weights, prismatic_from_transforms, revolute_from_transforms, robust_rigid_fit, robust_scale,
                    robust_translation_fit)

log = logging.getLogger("atop")

MIN_PART_POINTS = 8
JOINT_TYPE_CHOICES = ("auto", "revolute", "prismatic")


@dataclass
class SearchSettings:
    discrete_points: int = 32  # points per frame compared by the discrete search
    refine_points: int = 400  # query points per frame and direction in the last refinement stage and the score
    coarse_points: int = 100  # the same in the first refinement stage
    score_points: int = 200  # the same when contenders are compared
    grid_steps: int = 12  # coarse amounts in [0, max] before golden section
    golden_steps: int = 7
    max_angle: float = np.pi  # revolute search range (radians)
    max_slide: float = 1.0  # prismatic search range, as a fraction of the object size
    cap: float = 0.05  # distance cap, fraction of the object size
    probe_iterations: int = 4  # refinement steps that every start takes before the best one goes on
    refine_iterations: int = 30  # at most a third on few points, then at most a sixth on more
    revolute_margin: float = 0.02  # share of the explained motion a revolute joint must gain over a slide
    revolute_share: float = 0.1  # ... and share of the slide's own score (noise-fitting by the extra freedom)
    floater_reach: float = 3.0  # a point whose k-th neighbour is farther than this x the median is a floater
    reliable_tracks: float = 0.9  # share of tracked pairs a rigid fit must explain for tracks to decide alone
    snap_degrees: float = 20.0  # a refined axis this close to an axis of the object's frame may snap to it,
    snap_tolerance: float = 0.02  # when the snapped joint scores at most this share worse (0: never snap)
    seed: int = 0


# --- motion ---------------------------------------------------------------------------------------------------
def _rodrigues(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:  # axes [B, 3], angles [B] -> [B, 3, 3]
    K = np.zeros((len(axes), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
    K = K - K.transpose(0, 2, 1)
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _transforms(revolute: np.ndarray, axes: np.ndarray, origins: np.ndarray, amounts: np.ndarray):
    """Per-config rotation [B, 3, 3] and translation [B, 3] of joint motions (revolute [B] bool)."""
    R = _rodrigues(axes, np.where(revolute, amounts, 0.0))
    t = origins - np.einsum("bij,bj->bi", R, origins)
    t = np.where(revolute[:, None], t, axes * amounts[:, None])
    return R, t


def _move(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:  # [N, 3] -> [B, N, 3]
    return (R.reshape(-1, 3) @ points.T).reshape(len(R), 3, -1).transpose(0, 2, 1) + t[:, None, :]


def joint_motion(joint_type: str, axis: np.ndarray, origin: np.ndarray, amount: float) -> tuple[np.ndarray, np.ndarray]:
    R, t = _transforms(np.array([joint_type == "revolute"]), np.asarray(axis, float)[None],
                       np.asarray(origin, float)[None], np.array([float(amount)]))
    return R[0], t[0]


def _frame_motions(jtype: str, axis, origin, amounts) -> tuple[np.ndarray, np.ndarray]:  # [Fm, 3, 3], [Fm, 3]
    Fm = len(amounts)
    return _transforms(np.full(Fm, jtype == "revolute"), np.repeat(np.asarray(axis, float)[None], Fm, 0),
                       np.repeat(np.asarray(origin, float)[None], Fm, 0), np.asarray(amounts, float))


# --- input --------------------------------------------------------------------------------------------------
@dataclass
class _Data:
    rest: np.ndarray  # [M0, 3] moving-part points at rest (frame 0), floaters removed
    frames: list  # F-1 arrays [Mf, 3] (frames 1..F-1), floaters removed
    rest_ids: np.ndarray | None  # [M0] track ids
    frame_ids: list | None
    size: float  # object size (bounding-box diagonal of frame 0)
    frame_axes: np.ndarray  # [K, 3] directions of the object's frame (see object_axes)
    noise: float = 0.0  # estimated per-coordinate noise of the points (length)
    floaters: int = 0  # points dropped as floaters, all frames


def _floater_mask(points: np.ndarray, reach: float, k: int = 6) -> np.ndarray:  # [N] bool, True = keep
    """Points whose k-th nearest neighbour lies within ``reach`` x the median such distance: isolated
    points (reconstruction floaters, stray labels) are far from their neighbours, surface samples are not."""
    if len(points) <= 4 * k:
        return np.ones(len(points), bool)
    d, _ = cKDTree(points).query(points, k=k + 1)
    dk = d[:, -1]
    keep = dk <= reach * np.median(dk) + 1e-12
    return keep if keep.sum() >= max(MIN_PART_POINTS, len(points) // 2) else np.ones(len(points), bool)


def _prepare(seq: PointSequence, settings: SearchSettings) -> _Data:
    pts = np.asarray(seq.points)
    if pts.ndim != 3 or pts.shape[2] != 3:
        raise InputError(f"point sequence must have points of shape [frames, N, 3], got {pts.shape}")
    F, N = pts.shape[:2]
    moving = np.asarray(seq.moving)
    if moving.shape != (F, N):
        raise InputError(f"point sequence labels have shape {moving.shape} but the points have {F} frames of "
                         f"{N} points; labels must be [frames, N]; rebuild the sequence")
    if seq.track_ids is not None and np.asarray(seq.track_ids).shape != (F, N):
        raise InputError(f"point sequence track ids have shape {np.asarray(seq.track_ids).shape}, expected "
                         f"{(F, N)}; rebuild the sequence")
    if F < 2:
        raise InputError(f"joint estimation needs at least 2 frames (rest and one moved state), got {F}")
    if not np.isfinite(pts).all():
        bad = sorted({int(f) for f in np.nonzero(~np.isfinite(pts).all(axis=(1, 2)))[0]})
        raise InputError(f"point sequence has NaN/Inf coordinates in frame(s) {bad[:10]}; the lift or the "
                         "source diverged; rerun it or drop those frames")
    counts = moving.sum(axis=1)
    if counts.min() < MIN_PART_POINTS:
        f = int(np.argmin(counts))
        raise InputError(f"frame {f} has {int(counts[f])} points on the moving part '{seq.part_name}', at "
                         f"least {MIN_PART_POINTS} are needed per frame; check the part name and labels, or "
                         "use more points")
    lo, hi = pts[0].min(0), pts[0].max(0)
    size = float(np.linalg.norm(hi - lo))
    if size <= 1e-12:
        raise InputError("all points of the rest frame coincide; the sequence has no extent")
    ids = None if seq.track_ids is None else np.asarray(seq.track_ids)
    clouds, cloud_ids, dropped = [], [], 0
    for f in range(F):
        p = pts[f][moving[f]]
        keep = _floater_mask(p, settings.floater_reach)
        dropped += int((~keep).sum())
        clouds.append(p[keep])
        cloud_ids.append(None if ids is None else ids[f][moving[f]][keep])
    data = _Data(rest=clouds[0], frames=clouds[1:], rest_ids=cloud_ids[0],
                 frame_ids=None if ids is None else cloud_ids[1:], size=size,
                 frame_axes=object_axes(pts[0][~moving[0]]), floaters=dropped)
    return data


def object_axes(static: np.ndarray) -> np.ndarray:
    """[K, 3] directions that the joints of man-made objects tend to follow: the coordinate axes (the
    object's own frame, for a mesh loaded upright) and the principal axes of the static part."""
    axes = [np.eye(3)]
    if len(static) >= 3:
        axes.append(pca_obb(static).axes)
    return np.concatenate(axes)


def noise_scale(points: np.ndarray, k: int = 12) -> float:
    """Per-coordinate noise of surface samples: median spread of each point's k neighbours along their
    least-spread direction (0 for exact samples of flat patches; curvature adds a little)."""
    k = min(k, len(points))
    if k < 5:
        return 0.0
    _, idx = cKDTree(points).query(points, k=k)
    nb = points[idx] - points[idx].mean(axis=1, keepdims=True)  # [N, k, 3]
    lam = np.linalg.eigvalsh(np.einsum("nki,nkj->nij", nb, nb) / (k - 3))[:, 0]
    return float(np.sqrt(max(np.median(lam), 0.0)))


def _subsample(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return points if len(points) <= n else points[rng.choice(len(points), n, replace=False)]


def _exactly(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:  # [n, 3]
    """n points of the cloud (repeats when it has fewer) so that frames stack into one array."""
    return points[rng.choice(len(points), n, replace=len(points) < n)]


# --- 1. discrete search ----------------------------------------------------------------------------------------
def discrete_search(data: _Data, settings: SearchSettings, joint_type: str = "auto") -> list[dict]:
    """The paper's OBB candidate search; returns the 84 candidates ranked by score (lowest first)."""
    rng = np.random.default_rng(settings.seed)
    box = pca_obb(data.rest)
    origins = candidate_origins(box)  # [7, 3]
    directions = np.stack([s * box.axes[k] for k in range(3) for s in (1.0, -1.0)])  # [6, 3]
    rest = _subsample(data.rest, settings.discrete_points, rng)
    targets = np.stack([_exactly(p, settings.discrete_points, rng) for p in data.frames])  # [Fm, m, 3]
    cap = settings.cap * data.size
    # Distinct candidates: 42 revolute (origin x direction) + 6 prismatic (direction only).
    rev = [(o, d) for o in range(7) for d in range(6)]
    revolute = np.array([True] * len(rev) + [False] * 6)
    axes = np.concatenate([directions[[d for _, d in rev]], directions])
    orig = np.concatenate([origins[[o for o, _ in rev]], np.repeat(box.centre[None], 6, 0)])
    upper = np.where(revolute, settings.max_angle, settings.max_slide * data.size)  # [C]
    C, Fm = len(axes), len(targets)

    def scores(amounts: np.ndarray) -> np.ndarray:  # amounts [C, K, Fm] -> [C, K, Fm], all frames at once
        K = amounts.shape[1]
        a = amounts.reshape(-1)
        R, t = _transforms(np.repeat(revolute, K * Fm), np.repeat(axes, K * Fm, 0), np.repeat(orig, K * Fm, 0), a)
        moved = _move(rest, R, t).reshape(C * K, Fm, len(rest), 3)
        return batched_chamfer_frames(moved, targets, cap).reshape(C, K, Fm)

    steps = settings.grid_steps
    grid = upper[:, None] * np.linspace(0.0, 1.0, steps + 1)[None]  # [C, K]
    g = scores(np.repeat(grid[:, :, None], Fm, axis=2))  # [C, K, Fm]
    best = g.argmin(axis=1)  # [C, Fm]
    step = upper / steps
    centre = np.take_along_axis(grid, best, axis=1)  # [C, Fm]
    lo = np.clip(centre - step[:, None], 0.0, None)
    hi = np.minimum(centre + step[:, None], upper[:, None])
    # Golden section inside the bracket around the best grid amount (per candidate and frame).
    r = (np.sqrt(5.0) - 1) / 2
    x1, x2 = hi - r * (hi - lo), lo + r * (hi - lo)
    f12 = scores(np.stack([x1, x2], axis=1))
    f1, f2 = f12[:, 0], f12[:, 1]
    for _ in range(settings.golden_steps):
        left = f1 < f2
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        nx1 = np.where(left, hi - r * (hi - lo), x2)
        nx2 = np.where(left, x1, lo + r * (hi - lo))
        new = np.where(left, nx1, nx2)
        fn = scores(new[:, None])[:, 0]
        f1, f2 = np.where(left, fn, f2), np.where(left, f1, fn)
        x1, x2 = nx1, nx2
    gbest = np.take_along_axis(g, best[:, None], axis=1)[:, 0]
    cand = np.stack([x1, x2, centre])
    vals = np.stack([f1, f2, gbest])
    k = vals.argmin(axis=0)
    amounts = np.take_along_axis(cand, k[None], 0)[0]  # [C, Fm]
    per_frame = np.take_along_axis(vals, k[None], 0)[0]
    total = per_frame.sum(axis=1)  # [C]

    out = []
    for c in range(len(rev)):
        out.append(_candidate("revolute", axes[c], orig[c], total[c], amounts[c], rev[c][0]))
    for d in range(6):
        for o in range(7):
            out.append(_candidate("prismatic", axes[len(rev) + d], origins[o], total[len(rev) + d],
                                  amounts[len(rev) + d], o))
    if joint_type != "auto":
        out = [c for c in out if c["type"] == joint_type]
    out.sort(key=lambda c: c["score"])
    for i, c in enumerate(out):
        c["rank"] = i + 1
    return out


def _candidate(jtype, axis, origin, score, amounts, origin_index) -> dict:
    names = ["centre", "+a0 face", "-a0 face", "+a1 face", "-a1 face", "+a2 face", "-a2 face"]
    return {"type": jtype, "axis": [float(v) for v in axis], "origin": [float(v) for v in origin],
            "origin_candidate": names[origin_index], "score": float(score),
            "amounts": [0.0] + [float(v) for v in amounts]}


# --- 2. refinement ---------------------------------------------------------------------------------------------
def _basis(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.array([1.0, 0, 0]) if abs(a[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(a, h)
    u /= np.linalg.norm(u)
    return u, np.cross(a, u)


def surface(points: np.ndarray, noise: float, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals [N, 3] from each point's k nearest neighbours, and the points [N, 3] projected onto
    those local planes when ``noise`` > 0 (removes noise across the surface without shrinking edges)."""
    k = min(k, len(points))
    _, idx = cKDTree(points).query(points, k=k)
    nb = points[idx]  # [N, k, 3]
    c = nb.mean(axis=1)
    d = nb - c[:, None]
    normals = np.linalg.eigh(np.einsum("nki,nkj->nij", d, d))[1][:, :, 0]
    if noise <= 0:
        return points, normals
    return points - ((points - c) * normals).sum(1, keepdims=True) * normals, normals


POINT_WEIGHT = 0.2  # point-to-point share next to point-to-plane (keeps flat parts well conditioned)


class _Problem:
    """Residuals of a joint hypothesis against the sequence: nearest neighbours between the moved rest part
    and each frame, both ways (chamfer pairs), plus tracked pairs. The k-d trees of the rest part and of
    every frame are built once; each evaluation only queries them with moved points."""

    def __init__(self, data: _Data, settings: SearchSettings, tracks: list | None, denoise: bool = True):
        rng = np.random.default_rng(settings.seed + 1)
        self.noisy = noisy = denoise and data.noise > 1e-4 * data.size
        self.size, self.cap = data.size, settings.cap * data.size
        self.floor = 1e-9 * data.size
        # Normals are needed by the chamfer refinement (and to denoise noisy clouds): built on first use.
        self._clouds = [data.rest] + list(data.frames)
        self._normals = None
        if noisy:
            smoothed = [surface(p, data.noise) for p in self._clouds]
            self._clouds = [p for p, _ in smoothed]
            self._normals = [n for _, n in smoothed]
        self.rest = self._clouds[0]
        self.rest_tree = cKDTree(self.rest)
        frames = self._clouds[1:]
        self.Fm = len(frames)
        self.fpts = np.concatenate(frames)  # [S, 3]
        self.frame_trees = [cKDTree(p) for p in frames]  # built once: only the moved rest points change
        self.rest_order = rng.permutation(len(self.rest))
        starts = np.cumsum([0] + [len(p) for p in frames])
        self.starts = starts
        self.frame_order = [starts[f] + rng.permutation(len(p)) for f, p in enumerate(frames)]
        self.tracks = None
        if tracks is not None:  # tracked pairs use the denoised points of both clouds
            rest_s = self.rest
            X = np.concatenate([rest_s[i] for i, _, _ in tracks])
            Y = np.concatenate([frames[f][j] for f, (_, j, _) in enumerate(tracks)])
            fi = np.concatenate([np.full(len(i), f) for f, (i, _, _) in enumerate(tracks)])
            self.tracks = (X, Y, fi)

    def _ensure_normals(self) -> None:
        if self._normals is None:
            self._normals = [surface(p, 0.0)[1] for p in self._clouds]
        self.rest_n = self._normals[0]
        self.fnrm = np.concatenate(self._normals[1:])

    def chamfer_pairs(self, R, t, n: int, normals: bool = True):
        """(X rest points, Y frame points, normals at Y in the frame, frame index) for n queries per frame and
        direction."""
        Fm = self.Fm
        rq = self.rest_order[:n]
        X = self.rest[rq]  # [n, 3]
        moved = np.einsum("fij,nj->fni", R, X) + t[:, None]  # [Fm, n, 3]
        i = np.concatenate([self.starts[f] + tree.query(moved[f])[1] for f, tree in enumerate(self.frame_trees)])
        fi_f = np.repeat(np.arange(Fm), len(X))
        fq = np.concatenate([o[:n] for o in self.frame_order])
        fi_b = np.concatenate([np.full(min(n, len(o)), f) for f, o in enumerate(self.frame_order)])
        Y = self.fpts[fq]
        back = np.einsum("pji,pj->pi", R[fi_b], Y - t[fi_b])  # inverse motion
        _, j = self.rest_tree.query(back)
        Xa = np.concatenate([np.tile(X, (Fm, 1)), self.rest[j]])
        Ya = np.concatenate([self.fpts[i], Y])
        if not normals:
            return Xa, Ya, None, np.concatenate([fi_f, fi_b])
        self._ensure_normals()
        # Normals of the rest part (moved) on both sides: a rest point of a drawer's front matched to a side
        # wall of the frame still measures the slide along its own normal (the wall's normal would not).
        Na = np.concatenate([np.einsum("fij,nj->fni", R, self.rest_n[rq]).reshape(-1, 3),
                             np.einsum("pij,pj->pi", R[fi_b], self.rest_n[j])])
        return Xa, Ya, Na, np.concatenate([fi_f, fi_b])

    def score(self, jtype: str, axis, origin, amounts, n: int) -> float:
        """Capped chamfer (both ways) plus capped tracked distances, summed over frames."""
        return sum(self.score_terms(jtype, axis, origin, amounts, n))

    def search_amounts(self, jtype: str, axis, origin, amounts, settings: SearchSettings, steps: int = 48):
        """Per-frame amounts by a 1-D grid over the whole range (both signs) for a fixed axis and origin,
        scored by the capped chamfer of a few points (plus tracks); a frame keeps its amount unless the grid
        finds a better one."""
        rng = np.random.default_rng(0)
        n = settings.discrete_points + settings.discrete_points // 2  # a coarse ranking: few points suffice
        upper = settings.max_angle if jtype == "revolute" else settings.max_slide * self.size
        grid = np.concatenate([np.linspace(-upper, upper, 2 * steps + 1)[:, None].repeat(self.Fm, 1),
                               np.asarray(amounts, float)[None]])  # [K, Fm]; the last row = current amounts
        rest = self.rest[self.rest_order[:n]]
        targets = np.stack([_exactly(self.fpts[o], n, rng) for o in self.frame_order])  # [Fm, n, 3]
        K = len(grid)
        B = K * self.Fm
        R, t = _transforms(np.full(B, jtype == "revolute"), np.repeat(np.asarray(axis, float)[None], B, 0),
                           np.repeat(np.asarray(origin, float)[None], B, 0), grid.reshape(-1))
        moved = _move(rest, R, t).reshape(K, self.Fm, len(rest), 3)
        sc = batched_chamfer_frames(moved, targets, self.cap)  # [K, Fm]
        if self.tracks is not None:  # tracked points see motions the chamfer cannot (a spinning knob)
            X, Y, fi = self.tracks
            Rk, tk = R.reshape(K, self.Fm, 3, 3)[:, fi], t.reshape(K, self.Fm, 3)[:, fi]  # [K, T, ...]
            d = np.minimum(np.linalg.norm(np.einsum("ktij,tj->kti", Rk, X) + tk - Y, axis=2), self.cap)
            counts = np.maximum(np.bincount(fi, minlength=self.Fm), 1)
            sc = sc + np.stack([np.bincount(fi, dk, self.Fm) for dk in d]) / counts
        best = sc.argmin(axis=0)
        return grid[best, np.arange(self.Fm)]

    def score_terms(self, jtype: str, axis, origin, amounts, n: int) -> tuple[float, float]:
        """(chamfer term, track term) of ``score``."""
        R, t = _frame_motions(jtype, axis, origin, amounts)
        X, Y, _, fi = self.chamfer_pairs(R, t, n, normals=False)
        d = np.minimum(np.linalg.norm(np.einsum("pij,pj->pi", R[fi], X) + t[fi] - Y, axis=1), self.cap)
        total = float((np.bincount(fi, d, self.Fm) / np.maximum(np.bincount(fi, minlength=self.Fm), 1)).sum())
        return total, (self.track_score(R, t) if self.tracks is not None else 0.0)

    def track_score(self, R, t) -> float:
        X, Y, fi = self.tracks
        d = np.minimum(np.linalg.norm(np.einsum("pij,pj->pi", R[fi], X) + t[fi] - Y, axis=1), self.cap)
        return float((np.bincount(fi, d, self.Fm) / np.maximum(np.bincount(fi, minlength=self.Fm), 1)).sum())


def _jacobian(rev: bool, a, o, q, R, t, X, fi, u, v):
    """Moved points T_f(X) [P, 3] and their derivatives [P, 3, n] over (axis 2, origin 2 if revolute,
    amounts Fm)."""
    ng = 4 if rev else 2
    Fm = len(q)
    P = len(X)
    moved = np.einsum("pij,pj->pi", R[fi], X) + t[fi]
    J = np.zeros((P, 3, ng + Fm))
    rows = np.arange(P)
    if rev:
        Rp = moved - o
        s, c = np.sin(q)[fi, None], np.cos(q)[fi, None]
        for k, e in enumerate((u, v)):
            J[:, :, k] = np.cross(s * e + (1 - c) * np.cross(a, e), Rp)
            J[:, :, 2 + k] = e - (R @ e)[fi]
        J[rows, :, ng + fi] = np.cross(a, Rp)
    else:
        J[:, :, 0] = q[fi, None] * u
        J[:, :, 1] = q[fi, None] * v
        J[rows, :, ng + fi] = a
    return moved, J


def refine(problem: _Problem, jtype: str, axis, origin, amounts, settings: SearchSettings,
           use_chamfer: bool = True, iterations: int | None = None, fix_axis: bool = False):
    """Levenberg-Marquardt on truncated-Huber weighted residuals over axis (2, unless ``fix_axis``), origin
    (2, revolute only) and per-frame amounts: first ``coarse_points`` queries per frame, then
    ``refine_points``. Returns axis, origin, amounts [Fm]."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    o = np.asarray(origin, float).copy()
    q = np.asarray(amounts, float).copy()
    rev = jtype == "revolute"
    ng = 4 if rev else 2
    n = ng + len(q)
    n_pts = settings.coarse_points
    fine_its = 0
    # Steps (radians, fractions of the size) that count as converged; on noisy points the nearest neighbours
    # keep changing a little, so finer steps would only spend time.
    tol = (1e-3, 1e-4) if problem.noisy else (1e-4, 1e-7)
    for it in range(settings.refine_iterations if iterations is None else iterations):
        u, v = _basis(a)
        R, t = _frame_motions(jtype, a, o, q)
        A = np.zeros((n, n))
        b = np.zeros(n)
        if use_chamfer:
            X, Y, N, fi = problem.chamfer_pairs(R, t, n_pts)
            moved, J = _jacobian(rev, a, o, q, R, t, X, fi, u, v)
            r = moved - Y
            d = np.linalg.norm(r, axis=1)
            s = robust_scale(d, problem.floor)
            d_pl = np.abs((N * r).sum(1))
            w = huber_weights(d_pl, 1.345 * robust_scale(d_pl, problem.floor)) * (d <= problem.cap)
            J_pl = np.einsum("pi,pin->pn", N, J) * np.sqrt(w)[:, None]
            r_pl = (N * r).sum(1) * np.sqrt(w)
            J_pt = (J * (POINT_WEIGHT * np.sqrt(w))[:, None, None]).reshape(-1, n)
            r_pt = (r * (POINT_WEIGHT * np.sqrt(w))[:, None]).reshape(-1)
            A += J_pl.T @ J_pl + J_pt.T @ J_pt
            b -= J_pl.T @ r_pl + J_pt.T @ r_pt
        if problem.tracks is not None:
            X, Y, fi = problem.tracks
            moved, J = _jacobian(rev, a, o, q, R, t, X, fi, u, v)
            r = moved - Y
            d = np.linalg.norm(r, axis=1)
            s = robust_scale(d, problem.floor)
            w = huber_weights(d, 1.345 * s) * (d <= min(3.0 * s, problem.cap))
            Jw = (J * np.sqrt(w)[:, None, None]).reshape(-1, n)
            A += Jw.T @ Jw
            b -= Jw.T @ (r * np.sqrt(w)[:, None]).reshape(-1)
        A += (1e-6 * np.diag(A).mean() + 1e-15) * np.eye(n) + 1e-6 * np.diag(np.diag(A))
        if fix_axis:
            delta = np.concatenate([[0.0, 0.0], np.linalg.solve(A[2:, 2:], b[2:])])
        else:
            delta = np.linalg.solve(A, b)
        turn = np.linalg.norm(delta[:2])
        if turn > 0.3:  # keep each step local: the linearisation holds for small turns
            delta *= 0.3 / turn
        a = a + delta[0] * u + delta[1] * v
        a /= np.linalg.norm(a)
        if rev:
            o = o + delta[2] * u + delta[3] * v
        q = q + delta[ng:]
        step = max(np.abs(delta[:2]).max(), np.abs(delta[2:]).max() / problem.size)
        if n_pts < settings.refine_points and (step < tol[0] or it >= settings.refine_iterations // 3):
            n_pts = settings.refine_points  # converged on few points: finish on more of them
            if use_chamfer:  # a frame's amount may sit in a local minimum (a drawer's walls slide freely)
                q = problem.search_amounts(jtype, a, o, q, settings)
        elif n_pts >= settings.refine_points:
            fine_its += 1
            if step < tol[1] or fine_its >= max(3, settings.refine_iterations // 6):
                break
    log.debug("refinement (%s): %d iterations", jtype, it + 1)
    return a, o, q


def _canonical(jtype: str, axis, origin, amounts, rest: np.ndarray):
    """Axis sign so that the largest motion is positive; origin = the axis point nearest the part centre."""
    axis, amounts = np.asarray(axis, float), np.asarray(amounts, float)
    if len(amounts) and amounts[np.argmax(np.abs(amounts))] < 0:
        axis, amounts = -axis, -amounts
    c = rest.mean(axis=0)
    if jtype == "revolute":
        origin = origin + axis * ((c - origin) @ axis)
    else:
        origin = c
    return axis, np.asarray(origin, float), amounts


# --- 3. correspondences ----------------------------------------------------------------------------------------
def _track_pairs(data: _Data, max_pairs: int, seed: int, min_pairs: int = 6) -> list | None:
    """Per frame (rest indices, frame indices, frame points) of points tracked from the rest frame; None when
    a frame has fewer than ``min_pairs``. At most ``max_pairs`` per frame (random) keep the fit fast."""
    if data.rest_ids is None:
        return None
    rng = np.random.default_rng(seed)
    out = []
    for pts, ids in zip(data.frames, data.frame_ids):
        common, i, j = np.intersect1d(data.rest_ids, ids, assume_unique=False, return_indices=True)
        keep = common >= 0
        i, j = i[keep], j[keep]
        if len(i) < min_pairs:
            return None
        if len(i) > max_pairs:
            k = rng.choice(len(i), max_pairs, replace=False)
            i, j = i[k], j[k]
        out.append((i, j, pts[j]))
    return out


def correspondence_fit(data: _Data, tracks: list, cap: float) -> tuple[dict, float, float]:
    """Per-frame robust Kabsch, then the hinge and slide that explain the rigid motions. Also returns the
    share of tracked pairs that the per-frame rigid fits explain (within the robust noise band) and the
    per-coordinate noise those pairs show."""
    fits = [robust_rigid_fit(data.rest[i], y, cap=cap, floor=1e-9 * data.size) for i, _, y in tracks]
    Rs = np.array([f[0] for f in fits])
    ts = np.array([f[1] for f in fits])
    w = np.concatenate([f[2] for f in fits])
    explained = float((w >= 0.999).mean())
    res = np.concatenate([np.linalg.norm(data.rest[i] @ R.T + t - y, axis=1)
                          for (i, _, y), R, t in zip(tracks, Rs, ts)])
    # per-coordinate noise of one point: a pair's residual norm is chi(3) distributed with 2 sigma^2 per axis
    noise = float(np.median(res[w >= 0.999])) / (1.538 * np.sqrt(2.0)) if explained > 0 else np.inf
    centre = data.rest.mean(axis=0)
    axis_r, origin_r, angles = revolute_from_transforms(Rs, ts, centre)
    slides = np.array([robust_translation_fit(data.rest[i], y, cap=cap, floor=1e-9 * data.size)[0]
                       for i, _, y in tracks])  # [Fm, 3]
    axis_p, amounts_p = prismatic_from_transforms(slides)
    return {"revolute": (axis_r, origin_r, angles), "prismatic": (axis_p, centre, amounts_p)}, explained, noise


# --- driver ----------------------------------------------------------------------------------------------------
def estimate_joint(seq: PointSequence, *, joint_type: str = "auto", refine_result: bool = True,
                   use_correspondences: bool = True, settings: SearchSettings | None = None) -> Joint:
    """Estimate the joint of ``seq.part_name`` from its point sequence (frame 0 = rest). ``joint_type``:
    "auto", "revolute" or "prismatic". ``refine_result=False`` returns the discrete search's best candidate."""
    settings = settings or SearchSettings()
    if joint_type not in JOINT_TYPE_CHOICES:
        raise InputError(f"joint type '{joint_type}' is not supported; use one of {', '.join(JOINT_TYPE_CHOICES)}")
    t0 = time.perf_counter()
    data = _prepare(seq, settings)
    ranked = discrete_search(data, settings, joint_type)
    types = ("revolute", "prismatic") if joint_type == "auto" else (joint_type,)
    best = ranked[0]
    tracks = (_track_pairs(data, 2 * settings.refine_points, settings.seed)
              if refine_result and use_correspondences else None)
    reliable, fit = False, None
    if tracks is not None:
        fit, explained, track_noise = correspondence_fit(data, tracks, settings.cap * data.size)
        # Tracks measure the noise directly (the spread around local planes overstates it on thin parts and
        # understates it on parts no larger than the noise).
        data.noise = track_noise if explained >= 0.5 else noise_scale(data.rest)
        # Tracks decide alone only on clean data; on noisy data the chamfer terms add far more points.
        reliable = explained >= settings.reliable_tracks and data.noise <= 1e-4 * data.size
    else:
        data.noise = noise_scale(data.rest)
    problem = _Problem(data, settings, tracks, denoise=refine_result)  # the discrete result is only scored
    n_score = settings.score_points
    contenders = []  # (label, type, axis, origin, amounts, snap group of object_axes or None)
    if not refine_result:
        contenders.append(("discrete OBB search", best["type"], np.array(best["axis"]), np.array(best["origin"]),
                           np.array(best["amounts"][1:]), None))
    else:
        starts = {jt: [] for jt in types}  # (label, axis, origin, amounts)
        if fit is not None:
            label = (f"correspondence fit (Kabsch + screw axis; tracks reliable: {explained:.0%} explained)"
                     if reliable else f"refined correspondence fit ({explained:.0%} of tracks explained)")
            for jt in types:
                starts[jt].append((label, *fit[jt]))
        if not reliable:
            for jt in types:
                c = next(c for c in ranked if c["type"] == jt)
                starts[jt].append(("refined OBB search", np.array(c["axis"]), np.array(c["origin"]),
                                   np.array(c["amounts"][1:])))
        for jt in types:
            # Noisy tracks and the chamfer can each mislead the other: every start takes a few refinement
            # steps, the one that then explains the frames best is refined to the end, and every start stays a
            # contender itself in case the refinement made it worse.
            tried = []
            for label, a0, o0, q0 in starts[jt]:
                if not reliable:
                    contenders.append((label.replace("refined ", "") + " (unrefined)", jt, a0, o0, q0, None))
                if len(starts[jt]) > 1:
                    a0, o0, q0 = refine(problem, jt, a0, o0, q0, settings, iterations=settings.probe_iterations)
                tried.append((problem.score(jt, a0, o0, q0, settings.coarse_points), label, a0, o0, q0))
            _, label, a0, o0, q0 = min(tried, key=lambda x: x[0])
            a, o, q = refine(problem, jt, a0, o0, q0, settings, use_chamfer=not reliable)
            contenders.append((label, jt, a, o, q, None))
            # (exact points pin the axis: only noisy ones leave room to prefer the object's own axes)
            snaps = (snap_axes(a, data.frame_axes, settings.snap_degrees)
                     if settings.snap_tolerance and problem.noisy else [])
            for group, axis_s in snaps:
                a_s, o_s, q_s = refine(problem, jt, axis_s, o, q, settings, use_chamfer=not reliable, fix_axis=True)
                contenders.append((label + SNAPPED[group], jt, a_s, o_s, q_s, group))
    scored = []
    for label, jt, a, o, q, group in contenders:
        c, tr = problem.score_terms(jt, a, o, q, n_score)
        scored.append({"method": label, "type": jt, "axis": a, "origin": o, "amounts": q, "score": c + tr,
                       "track_score": tr, "snap_group": group})
    scored = _occam(scored, settings.snap_tolerance)
    zero = problem.score("prismatic", np.array([1.0, 0, 0]), np.zeros(3), np.zeros(len(data.frames)), n_score)
    winner, why = _choose(scored, zero, settings, data.size, data.rest.mean(axis=0))
    axis, origin, amounts = _canonical(winner["type"], winner["axis"], winner["origin"], winner["amounts"], data.rest)
    moved = _max_displacement(winner["type"], axis, origin, amounts, data.rest)
    # Noise-aware: a fit to still, noisy frames moves the part by about noise / sqrt(points) per frame.
    least = max(1e-6 * data.size, 6.0 * data.noise / np.sqrt(min([len(data.rest)] + [len(p) for p in data.frames])))
    # The discrete search alone may end worse than no motion on noisy frames: only a refined estimate (or
    # noiseless frames) turns that into "no motion".
    worse = winner["score"] > zero if (refine_result or zero <= 1e-12 * data.size) else False
    if moved < least or worse:
        raise InputError(f"the part '{seq.part_name}' does not move in the point sequence (largest displacement "
                         f"{moved:.3g}, below {least:.3g} at the estimated noise {data.noise:.3g}; score "
                         f"{winner['score']:.3g} vs {zero:.3g} at rest); frames with no motion cannot reveal a "
                         "joint; check the part labels or the motion stage")
    all_amounts = np.concatenate([[0.0], amounts])
    ms = (time.perf_counter() - t0) * 1000
    if data.floaters:
        why += f"; {data.floaters} floating points ignored"
    log.info("joint search for '%s': %s %s (%s), %.0f ms", seq.part_name, winner["type"], winner["method"], why, ms)
    return Joint(type=winner["type"], axis=axis, origin=origin,
                 limits=(float(min(0.0, all_amounts.min())), float(all_amounts.max())), child=seq.part_name,
                 name=f"{seq.part_name}_joint" if seq.part_name else "joint", score=float(winner["score"]),
                 method=f"{winner['method']}: {why}", candidates=_listing(ranked, scored), amounts=all_amounts)


# method suffixes of snapped contenders, by group of ``object_axes``: the coordinate axes are preferred
SNAPPED = (", axis snapped to the object's frame", ", axis snapped to the static part's principal axes")


def snap_axes(axis: np.ndarray, frame_axes: np.ndarray, degrees: float) -> list[tuple[int, np.ndarray]]:
    """(group, direction) for each group of three directions in ``frame_axes`` (see ``object_axes``) with a
    direction within ``degrees`` of ``axis`` (sign matched) that is not ``axis`` itself: where it may snap."""
    out = []
    for g, group in enumerate(frame_axes.reshape(-1, 3, 3)):
        cos = group @ axis
        k = int(np.argmax(np.abs(cos)))
        c = abs(float(cos[k]))
        if np.cos(np.radians(degrees)) <= c <= 1.0 - 1e-12:
            out.append((g, group[k] * np.sign(cos[k])))
    return out


def _occam(scored: list[dict], tolerance: float) -> list[dict]:
    """Per joint type, a snapped contender wins over every free one that scores at most ``tolerance`` (a
    share) better: on noisy or sparse points two extra degrees of freedom always fit a little better, and the
    object's own axes are the likelier truth (its coordinate axes first: a principal axis of the static part
    only estimates them). Snapped contenders that do not qualify are dropped."""
    out = [s for s in scored if s["snap_group"] is None]
    for jtype in {s["type"] for s in scored}:
        best = min((s["score"] for s in out if s["type"] == jtype), default=np.inf)
        snapped = [s for s in scored if s["snap_group"] is not None and s["type"] == jtype
                   and s["score"] <= (1.0 + tolerance) * best]
        if snapped:
            win = min(snapped, key=lambda s: (s["snap_group"], s["score"]))
            out = [s for s in out if s["type"] != jtype or s["score"] > win["score"]] + [win]
    return out


def _max_displacement(jtype, axis, origin, amounts, rest) -> float:
    R, t = _frame_motions(jtype, axis, origin, amounts)
    return float(np.linalg.norm(_move(rest, R, t) - rest[None], axis=2).max()) if len(amounts) else 0.0


def _choose(scored: list[dict], zero: float, settings: SearchSettings, size: float,
            centre: np.ndarray) -> tuple[dict, str]:
    best = {}
    for s in scored:
        if s["type"] not in best or s["score"] < best[s["type"]]["score"]:
            best[s["type"]] = s
    if len(best) == 1:
        w = next(iter(best.values()))
        others = [s for s in scored if s is not w and s["type"] == w["type"]]
        why = f"score {w['score']:.4g}" + "".join(f" vs {o['score']:.4g} ({o['method']})" for o in others)
        return w, why
    r, p = best["revolute"], best["prismatic"]
    explained = settings.revolute_margin * max(zero - p["score"], 0.0)
    far = np.linalg.norm(np.cross(centre - r["origin"], r["axis"])) > 10 * size  # a hinge far away is a slide
    # Noise lets the extra freedom of a hinge explain a little more of any motion: it must explain clearly
    # more of the frames, or of the tracked points (a part spinning about its own symmetry axis shows its
    # motion only there).
    clearly = (r["score"] < (1 - settings.revolute_share) * p["score"]
               or r["track_score"] < (1 - settings.revolute_share) * p["track_score"])
    if r["score"] < p["score"] - explained and clearly and not far:
        w, why = r, (f"revolute score {r['score']:.4g} beats prismatic {p['score']:.4g} by more than "
                     f"{settings.revolute_margin:.0%} of the explained motion and {settings.revolute_share:.0%} of "
                     "the prismatic score (all, or of the tracked points)")
    else:
        w, why = p, f"prismatic score {p['score']:.4g}; revolute {r['score']:.4g} does not explain clearly more"
    others = [s for s in scored if s is not w and s["type"] == w["type"]]
    why += "".join(f"; {o['method']} scored {o['score']:.4g}" for o in others)
    return w, why


def _listing(ranked: list[dict], scored: list[dict]) -> list[dict]:
    final = [{"stage": "final", "method": s["method"], "type": s["type"], "axis": [float(v) for v in s["axis"]],
              "origin": [float(v) for v in s["origin"]], "score": float(s["score"])}
             for s in sorted(scored, key=lambda s: s["score"])]
    return final + [dict(c, stage="discrete") for c in ranked]
