"""Joint estimation from a point sequence: the paper's discrete OBB search, then continuous refinement, and
(when points are tracked across frames) a closed-form correspondence fit.

1. Discrete search (the paper): PCA box of the part's rest points; 7 origins (centre, 6 face centres) x 6
   directions (3 box axes and their negations) x {revolute, prismatic}. For each candidate and frame the
   amount is found by a 1-D search over opening amounts (>= 0: a grid, then golden section); the score is
   the chamfer distance between the moved rest part and that frame's part points, summed over frames.
   Prismatic candidates do not depend on the origin, so each direction is evaluated once and listed for
   the 7 origins. The search compares small random subsets of points (``discrete_points``).
2. Refinement (beyond the paper): from the best revolute and best prismatic candidates, Gauss-Newton on
   the capped chamfer residuals (articulated ICP: nearest neighbours both ways, re-found every iteration,
   truncated-Huber weights) over the axis direction (2 angles), the origin (2 offsets perpendicular to the
   axis) and every frame's amount.
3. Correspondences (when ``track_ids`` exist): a robust per-frame rigid fit (Kabsch) of tracked points,
   screw-axis extraction, then the same Gauss-Newton on the tracked pairs.
The final joint is the contender with the lowest capped chamfer score on the same points; "auto" type
prefers prismatic unless a revolute joint explains clearly more of the motion (it can always mimic a
slide with a far axis). Distances are capped at ``cap`` x object size so outliers cost a bounded amount.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError
from ..types import Joint, PointSequence
from .chamfer import batched_chamfer
from .obb import candidate_origins, pca_obb
from .screw import huber_weights, prismatic_from_transforms, revolute_from_transforms, robust_rigid_fit, robust_scale

log = logging.getLogger("atop")

MIN_PART_POINTS = 8
JOINT_TYPE_CHOICES = ("auto", "revolute", "prismatic")


@dataclass
class SearchSettings:
    discrete_points: int = 32  # points per frame compared by the discrete search
    refine_points: int = 384  # query points per frame and direction in refinement and final scoring
    grid_steps: int = 12  # coarse amounts in [0, max] before golden section
    golden_steps: int = 7
    max_angle: float = np.pi  # revolute search range (radians)
    max_slide: float = 1.0  # prismatic search range, as a fraction of the object size
    cap: float = 0.05  # distance cap, fraction of the object size
    refine_iterations: int = 25
    revolute_margin: float = 0.02  # share of the explained motion a revolute joint must gain over a slide
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


# --- input --------------------------------------------------------------------------------------------------
@dataclass
class _Data:
    rest: np.ndarray  # [M0, 3] moving-part points at rest (frame 0)
    frames: list  # F-1 arrays [Mf, 3] (frames 1..F-1)
    rest_ids: np.ndarray | None  # [M0] track ids
    frame_ids: list | None
    size: float  # object size (bounding-box diagonal of frame 0)


def _prepare(seq: PointSequence) -> _Data:
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
    return _Data(rest=pts[0][moving[0]], frames=[pts[f][moving[f]] for f in range(1, F)],
                 rest_ids=None if ids is None else ids[0][moving[0]],
                 frame_ids=None if ids is None else [ids[f][moving[f]] for f in range(1, F)], size=size)


def _subsample(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return points if len(points) <= n else points[rng.choice(len(points), n, replace=False)]


# --- 1. discrete search ----------------------------------------------------------------------------------------
def discrete_search(data: _Data, settings: SearchSettings, joint_type: str = "auto") -> list[dict]:
    """The paper's OBB candidate search; returns the 84 candidates ranked by score (lowest first)."""
    rng = np.random.default_rng(settings.seed)
    box = pca_obb(data.rest)
    origins = candidate_origins(box)  # [7, 3]
    directions = np.stack([s * box.axes[k] for k in range(3) for s in (1.0, -1.0)])  # [6, 3]
    rest = _subsample(data.rest, settings.discrete_points, rng)
    targets = [_subsample(p, settings.discrete_points, rng) for p in data.frames]
    cap = settings.cap * data.size
    # Distinct candidates: 42 revolute (origin x direction) + 6 prismatic (direction only).
    rev = [(o, d) for o in range(7) for d in range(6)]
    revolute = np.array([True] * len(rev) + [False] * 6)
    axes = np.concatenate([directions[[d for _, d in rev]], directions])
    orig = np.concatenate([origins[[o for o, _ in rev]], np.repeat(box.centre[None], 6, 0)])
    upper = np.where(revolute, settings.max_angle, settings.max_slide * data.size)  # [C]
    C, Fm = len(axes), len(targets)

    def scores(amounts: np.ndarray) -> np.ndarray:  # amounts [C, K, Fm] -> [C, K, Fm]
        K = amounts.shape[1]
        out = np.empty_like(amounts)
        for f in range(Fm):
            a = amounts[:, :, f].reshape(-1)
            R, t = _transforms(np.repeat(revolute, K), np.repeat(axes, K, 0), np.repeat(orig, K, 0), a)
            out[:, :, f] = batched_chamfer(_move(rest, R, t), targets[f], cap).reshape(C, K)
        return out

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
    f1, f2 = scores(x1[:, None]) [:, 0], scores(x2[:, None])[:, 0]
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


def estimate_normals(points: np.ndarray, tree: cKDTree, k: int = 10) -> np.ndarray:  # [N, 3]
    """Unit normals from the smallest principal direction of each point's k nearest neighbours."""
    _, idx = tree.query(points, k=min(k, len(points)))
    nb = tree.data[idx]  # [N, k, 3]
    nb = nb - nb.mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", nb, nb)
    return np.linalg.eigh(cov)[1][:, :, 0]


class _Pairs:
    """Point pairs (rest x, frame y) whose residual T_f(x) - y the refinement minimises: re-found by nearest
    neighbours both ways (chamfer), or fixed by tracks (correspondences). Rest normals give point-to-plane
    residuals, which let a part slide along its own surface toward the solution (point-to-point ICP crawls)."""

    def __init__(self, data: _Data, settings: SearchSettings, tracks: list | None = None):
        rng = np.random.default_rng(settings.seed + 1)
        self.data, self.tracks = data, tracks
        self.rest_tree = cKDTree(data.rest)
        self.rest_normals = estimate_normals(data.rest, self.rest_tree)
        self.frame_trees = [cKDTree(p) for p in data.frames]
        n = settings.refine_points
        self.rest_q = rng.permutation(len(data.rest))[:n]  # indices into rest
        self.frame_q = [_subsample(p, n, rng) for p in data.frames]
        self.cap = settings.cap * data.size
        self.coarse = False  # use a quarter of the query points (early iterations)
        if tracks is not None:
            self.track_normals = [self.rest_normals[i] for i, _ in tracks]

    def get(self, f: int, R: np.ndarray, t: np.ndarray):
        """Pairs for frame f under motion (R, t): rest points X, frame points Y, rest normals at X."""
        if self.tracks is not None:
            i, Y = self.tracks[f]
            return self.data.rest[i], Y, self.track_normals[f]
        rq = self.rest_q[: max(16, len(self.rest_q) // 4)] if self.coarse else self.rest_q
        fq = self.frame_q[f][: max(16, len(self.frame_q[f]) // 4)] if self.coarse else self.frame_q[f]
        X = self.data.rest[rq]
        _, i = self.frame_trees[f].query(X @ R.T + t)
        _, j = self.rest_tree.query((fq - t) @ R)  # inverse motion
        return (np.concatenate([X, self.data.rest[j]]), np.concatenate([self.data.frames[f][i], fq]),
                np.concatenate([self.rest_normals[rq], self.rest_normals[j]]))

    def score(self, jtype: str, axis, origin, amounts) -> float:
        """Capped chamfer summed over frames (same points for every contender)."""
        total = 0.0
        X = self.data.rest[self.rest_q]
        for f in range(len(self.frame_trees)):
            R, t = joint_motion(jtype, axis, origin, amounts[f])
            d1, _ = self.frame_trees[f].query(X @ R.T + t)
            d2, _ = self.rest_tree.query((self.frame_q[f] - t) @ R)
            total += float(np.minimum(d1, self.cap).mean() + np.minimum(d2, self.cap).mean())
        return total


POINT_WEIGHT = 0.2  # point-to-point share next to point-to-plane (keeps flat parts well conditioned)


def refine(pairs: _Pairs, jtype: str, axis, origin, amounts, iterations: int = 25):
    """Gauss-Newton (lightly damped) on truncated-Huber weighted point-to-plane + point-to-point residuals
    over axis (2), origin (2, revolute only) and per-frame amounts. Returns axis, origin, amounts [F-1]."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    o = np.asarray(origin, float).copy()
    q = np.asarray(amounts, float).copy()
    Fm = len(q)
    rev = jtype == "revolute"
    ng = 4 if rev else 2
    n = ng + Fm
    floor = 1e-9 * pairs.data.size
    pairs.coarse = pairs.tracks is None
    fine_its = 0
    for it in range(iterations):
        u, v = _basis(a)
        rows_J, rows_r, rows_n = [], [], []
        for f in range(Fm):
            R, t = joint_motion(jtype, a, o, q[f])
            X, Y, N = pairs.get(f, R, t)
            moved = X @ R.T + t
            J = np.zeros((len(X), 3, n))
            if rev:
                Rp = moved - o
                s, c = np.sin(q[f]), np.cos(q[f])
                for k, e in enumerate((u, v)):
                    J[:, :, k] = np.cross(s * e + (1 - c) * np.cross(a, e), Rp)
                    J[:, :, 2 + k] = e - R @ e
                J[:, :, ng + f] = np.cross(a, Rp)
            else:
                J[:, :, 0] = q[f] * u
                J[:, :, 1] = q[f] * v
                J[:, :, ng + f] = a
            rows_J.append(J)
            rows_r.append(moved - Y)
            rows_n.append(N @ R.T)
        J = np.concatenate(rows_J)  # [P, 3, n]
        r = np.concatenate(rows_r)  # [P, 3]
        nrm = np.concatenate(rows_n)  # [P, 3] moved normals
        d = np.linalg.norm(r, axis=1)
        sw = np.sqrt(huber_weights(d, 1.345 * robust_scale(d, floor)) * (d <= pairs.cap))  # [P]
        J_pl = np.einsum("pi,pin->pn", nrm, J) * sw[:, None]
        r_pl = (nrm * r).sum(1) * sw
        J_pt = (J * (POINT_WEIGHT * sw)[:, None, None]).reshape(-1, n)
        r_pt = (r * (POINT_WEIGHT * sw)[:, None]).reshape(-1)
        A = J_pl.T @ J_pl + J_pt.T @ J_pt
        b = -(J_pl.T @ r_pl + J_pt.T @ r_pt)
        A += (1e-9 * np.trace(A) / n + 1e-15) * np.eye(n)
        delta = np.linalg.solve(A, b)
        turn = np.linalg.norm(delta[:2])
        if turn > 0.3:  # keep each step local: the linearisation holds for small turns
            delta *= 0.3 / turn
        a = a + delta[0] * u + delta[1] * v
        a /= np.linalg.norm(a)
        if rev:
            o = o + delta[2] * u + delta[3] * v
        q = q + delta[ng:]
        step = np.abs(delta).max()
        if pairs.coarse and (step < 1e-5 or it >= iterations // 2):
            pairs.coarse = False  # converged on a quarter of the points: finish on all of them
        elif not pairs.coarse:
            fine_its += 1
            if step < 1e-10 or fine_its >= max(4, iterations // 3):
                break
    pairs.coarse = False
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
    """Per frame (rest indices, frame points) of points tracked from the rest frame; None when a frame has
    fewer than ``min_pairs``. At most ``max_pairs`` per frame (random) keep the fit fast."""
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
        out.append((i, pts[j]))
    return out


def correspondence_fit(data: _Data, tracks: list, cap: float) -> dict:
    """Per-frame robust Kabsch, then the hinge and slide that explain the rigid motions."""
    fits = [robust_rigid_fit(data.rest[i], y, cap=cap) for i, y in tracks]
    Rs = np.array([f[0] for f in fits])
    ts = np.array([f[1] for f in fits])
    centre = data.rest.mean(axis=0)
    axis_r, origin_r, angles = revolute_from_transforms(Rs, ts, centre)
    axis_p, slides = prismatic_from_transforms(ts)
    return {"revolute": (axis_r, origin_r, angles), "prismatic": (axis_p, centre, slides)}


# --- driver ----------------------------------------------------------------------------------------------------
def estimate_joint(seq: PointSequence, *, joint_type: str = "auto", refine_result: bool = True,
                   use_correspondences: bool = True, settings: SearchSettings | None = None) -> Joint:
    """Estimate the joint of ``seq.part_name`` from its point sequence (frame 0 = rest). ``joint_type``:
    "auto", "revolute" or "prismatic". ``refine_result=False`` returns the discrete search's best candidate."""
    settings = settings or SearchSettings()
    if joint_type not in JOINT_TYPE_CHOICES:
        raise InputError(f"joint type '{joint_type}' is not supported; use one of {', '.join(JOINT_TYPE_CHOICES)}")
    t0 = time.perf_counter()
    data = _prepare(seq)
    ranked = discrete_search(data, settings, joint_type)
    pairs = _Pairs(data, settings)
    zero = pairs.score("prismatic", np.array([1.0, 0, 0]), np.zeros(3), np.zeros(len(data.frames)))
    best = ranked[0]
    contenders = []  # (label, type, axis, origin, amounts)
    contenders.append(("discrete OBB search", best["type"], np.array(best["axis"]), np.array(best["origin"]),
                       np.array(best["amounts"][1:])))
    if refine_result:
        contenders = []
        types = ("revolute", "prismatic") if joint_type == "auto" else (joint_type,)
        for jt in types:
            c = next(c for c in ranked if c["type"] == jt)
            if c["score"] > 2.0 * best["score"] + 1e-12:
                continue  # this type explains the motion far worse than the other: not worth refining
            a, o, q = refine(pairs, jt, c["axis"], c["origin"], c["amounts"][1:], settings.refine_iterations)
            contenders.append(("refined OBB search", jt, a, o, q))
        tracks = _track_pairs(data, 2 * settings.refine_points, settings.seed) if use_correspondences else None
        if tracks is not None:
            fit = correspondence_fit(data, tracks, settings.cap * data.size)
            fixed = _Pairs(data, settings, tracks=tracks)
            for jt in types:
                a, o, q = fit[jt]
                a, o, q = refine(fixed, jt, a, o, q, settings.refine_iterations)
                contenders.append(("correspondence fit (Kabsch + screw axis)", jt, a, o, q))
    scored = []
    for label, jt, a, o, q in contenders:
        s = pairs.score(jt, a, o, q)
        scored.append({"method": label, "type": jt, "axis": a, "origin": o, "amounts": q, "score": s})
    winner, why = _choose(scored, zero, settings, data.size, data.rest.mean(axis=0))
    axis, origin, amounts = _canonical(winner["type"], winner["axis"], winner["origin"], winner["amounts"], data.rest)
    moved = _max_displacement(winner["type"], axis, origin, amounts, data.rest)
    no_gain = refine_result and zero > 0 and zero - winner["score"] < 0.01 * zero
    if moved < 1e-6 * data.size or no_gain:
        raise InputError(f"the part '{seq.part_name}' does not move in the point sequence (largest displacement "
                         f"{moved:.3g}, chamfer to the rest state {zero:.3g}); frames with no motion cannot "
                         "reveal a joint; check the part labels or the motion stage")
    all_amounts = np.concatenate([[0.0], amounts])
    ms = (time.perf_counter() - t0) * 1000
    log.info("joint search for '%s': %s %s (%s), %.0f ms", seq.part_name, winner["type"], winner["method"], why, ms)
    return Joint(type=winner["type"], axis=axis, origin=origin,
                 limits=(float(min(0.0, all_amounts.min())), float(all_amounts.max())), child=seq.part_name,
                 name=f"{seq.part_name}_joint" if seq.part_name else "joint", score=float(winner["score"]),
                 method=f"{winner['method']}: {why}", candidates=_listing(ranked, scored), amounts=all_amounts)


def _max_displacement(jtype, axis, origin, amounts, rest) -> float:
    out = 0.0
    for qv in amounts:
        R, t = joint_motion(jtype, axis, origin, qv)
        out = max(out, float(np.linalg.norm(rest @ R.T + t - rest, axis=1).max()))
    return out


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
    gain = settings.revolute_margin * max(zero - p["score"], 0.0)
    far = np.linalg.norm(np.cross(centre - r["origin"], r["axis"])) > 10 * size  # a hinge far away is a slide
    if r["score"] < p["score"] - gain and not far:
        w, why = r, (f"revolute score {r['score']:.4g} beats prismatic {p['score']:.4g} by more than "
                     f"{settings.revolute_margin:.0%} of the explained motion")
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
