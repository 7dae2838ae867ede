"""Joint hypotheses for the moving part of a lift, ranked against a video.

The candidates are the paper's, taken from the part's oriented bounding box: hinges along each principal
axis through the box centre and through the centres of the four faces parallel to that axis (the two faces
across it give the centre line again), and slides along each axis. For every candidate the joint values of
the frames are found on a grid, as the cheapest path that starts at rest and moves at most a set amount
per frame (a motion is continuous: a grey slab turned half a turn about its centre line looks like the slab
at rest, but cannot be reached in one frame), then on a finer grid around that path. Each pose is scored
by splatting the part's Gaussians over the static part's render and comparing with the video frame. Splats
are coarse but cheap (thousands of poses in seconds on a CPU): the ranking only decides where the gradient
refinement of the lift starts.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as Fn
from scipy.spatial import cKDTree

from ..geometry.joint_search import _rodrigues
from ..geometry.obb import candidate_origins, pca_obb
from ..render.gaussians import NEAR_PLANE, rasterize_gaussians
from ..render.splat import Layer, camera_depth, project, splat_points
from ..types import CameraRig

log = logging.getLogger("atop")

ANGLE_STEP = math.radians(6.0)  # coarse grid of hinge angles over a full turn
SLIDE_STEPS = 60  # coarse grid of slide lengths over +-SLIDE_REACH part lengths
SLIDE_REACH = 1.5
MAX_TURN_PER_FRAME = math.radians(36.0)  # continuity of the grid path (a quarter turn in 2.5 frames)
MAX_SLIDE_PER_FRAME = 0.35  # part lengths
FINE_STEPS = 5  # values of the finer grid, spanning one coarse step either side of the best
# Splats and video frames are compared blurred (Gaussian, this sigma in pixels): a thin part's edges match
# only at its exact pose, so unblurred errors drop in a basin narrower than the grid step and the grid path
# can miss it (a dishwasher door's path then turned it the wrong way)
BLUR_PX = 0.7
# The splats are made at this multiple of the ranking's size and averaged back (``splat_points``): whole-pixel
# splats made a thin part seen edge-on 2-3 pixels thick, so a drop-down door opened flat (PartNet-Mobility
# 46408) fitted worse than a wrong pose that kept it upright, and a tray slid out from under a table top
# (32052) worse than hinges
SUPERSAMPLE = 2


@dataclass
class JointHypothesis:
    type: str  # "revolute" | "prismatic"
    axis: np.ndarray  # [3] unit
    origin: np.ndarray  # [3] a point on the axis
    amounts: np.ndarray  # [F-1] joint value of frames 1.. (radians or length)
    score: float  # summed per-frame error of the best values (lower is better)


def box_candidates(rest_moving: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(type, axis, origin) of the bounding-box candidates of a part's rest points [M, 3]."""
    box = pca_obb(rest_moving)
    out = []
    for k in range(3):
        axis = box.axes[k]
        for origin in candidate_origins(box):
            if np.linalg.norm(origin - box.centre) > 0 and abs(np.dot(origin - box.centre, axis)) > 1e-9:
                continue  # a face across the axis: the same hinge line as the centre's
            out.append(("revolute", axis, origin))
        out.append(("prismatic", axis, box.centre))
    return out


def render_layer(means, quats, log_scales, opacity_logits, features, rig: CameraRig, width: int, height: int,
                 background: torch.Tensor, known=None) -> Layer:
    """Gaussians rendered once, with the depth of the surface each pixel shows (the rendered mean position,
    alpha-weighted, seen from that pixel's camera) and, given ``known`` [P] (1 for a Gaussian whose
    appearance is known), the known share of what each pixel shows."""
    C = features.shape[-1]
    extra = [means] + ([known[:, None].to(features)] if known is not None else [])
    feats = torch.cat([features] + extra, -1)
    bg = torch.cat([background.to(features), features.new_zeros(feats.shape[-1] - C)])
    r = rasterize_gaussians(means[None], quats[None], log_scales, opacity_logits, feats, rig, width, height,
                            background=bg, backend="torch")
    image, alpha = r.features[0], r.alpha[0]  # [V, H, W, C+3(+1)], [V, H, W]
    position = image[..., C:C + 3] / alpha[..., None].clamp_min(1e-6)
    depth = camera_depth(position, rig)
    depth = torch.where(alpha > 0.5, depth, torch.full_like(depth, float("inf")))
    share = None if known is None else torch.where(alpha > 1e-6, image[..., C + 3] / alpha.clamp_min(1e-6), 1.0)
    return Layer(features=image[..., :C], depth=depth, cover=alpha, known=share)


def seen_at_rest(points: torch.Tensor, layer: Layer, rig: CameraRig, tolerance: float) -> torch.Tensor:
    """[V, P] whether each point [P, 3] is the surface that ``layer`` (the whole object rendered at rest)
    shows in each view: inside the image, its depth within ``tolerance`` of the layer's."""
    V, H, W = layer.depth.shape
    x, y, z = _pixels(points, rig, W, H)
    inside = (x >= 0) & (x < W) & (y >= 0) & (y < H) & (z > NEAR_PLANE)
    views = torch.arange(V, device=points.device)[:, None]
    depth = layer.depth[views, y.clamp(0, H - 1), x.clamp(0, W - 1)]
    return inside & (z <= depth + tolerance)


def _pixels(points: torch.Tensor, rig: CameraRig, width: int, height: int):
    """The pixel column and row [V, P] (long) and camera depth [V, P] of points [P, 3] in every view."""
    u, v, z = project(points[None], rig, width, height)
    return u[0].floor().long(), v[0].floor().long(), z[0]


def seen_features(points: torch.Tensor, features: torch.Tensor, layer: Layer, rig: CameraRig,
                  seen: torch.Tensor) -> torch.Tensor:
    """Features [P, C] for splatting the points [P, 3]: what ``layer`` (the whole object rendered at rest)
    shows where each point is the visible surface (``seen`` [V, P], from ``seen_at_rest``), averaged over the
    views that see it; a point that no view sees takes its nearest seen neighbour's (and when no point is seen
    at all, every point keeps its Gaussian's feature, with a warning). A Gaussian's own feature
    is no colour of its own: overlapping Gaussians are fitted only as a blend, and single ones drift far from
    it (a plain grey door fits as speckles of black, white and blue)."""
    V, H, W = layer.depth.shape
    count = seen.sum(0)  # [P]
    if not bool((count > 0).any()):
        log.warning("joint ranking: no point of the moving part is visible at rest in any view; its splats use "
                    "the Gaussians' own fitted colours")
        return features
    x, y, _ = _pixels(points, rig, W, H)
    shown = layer.features[torch.arange(V, device=points.device)[:, None], y.clamp(0, H - 1), x.clamp(0, W - 1)]
    out = (shown * seen[..., None]).sum(0) / count.clamp_min(1)[:, None]
    hidden = count == 0
    if bool(hidden.any()):
        # (a k-d tree: a distance matrix of a large part's Gaussians would not fit in memory)
        seen_pts = points[~hidden].detach().double().cpu().numpy()
        _, nearest = cKDTree(seen_pts).query(points[hidden].detach().double().cpu().numpy())
        nearest = torch.as_tensor(nearest, device=points.device)
        out[hidden] = out[~hidden][nearest]
    return out.to(features.dtype)


def _poses(jtype: str, axis: np.ndarray, origin: np.ndarray, values: np.ndarray, rest: torch.Tensor) -> torch.Tensor:
    """The part's rest points [M, 3] moved by the joint to each of ``values`` [Q]: [Q, M, 3]."""
    a = torch.as_tensor(axis, dtype=rest.dtype, device=rest.device)
    if jtype == "prismatic":
        return rest[None] + torch.as_tensor(values, dtype=rest.dtype, device=rest.device)[:, None, None] * a
    R = torch.as_tensor(_rodrigues(np.repeat(axis[None], len(values), 0), values), dtype=rest.dtype,
                        device=rest.device)
    o = torch.as_tensor(origin, dtype=rest.dtype, device=rest.device)
    return torch.einsum("qij,mj->qmi", R, rest - o) + o


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``images`` [..., H, W] (edges replicated)."""
    r = max(int(math.ceil(2 * sigma)), 1)
    t = torch.arange(-r, r + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-t ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    H, W = images.shape[-2:]
    x = images.reshape(-1, 1, H, W)
    x = Fn.conv2d(Fn.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = Fn.conv2d(Fn.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x.reshape(images.shape)


def continuous_path(errors: torch.Tensor, values: np.ndarray, max_step: float) -> np.ndarray:
    """Grid values [F-1] minimising the summed ``errors`` [Q, F-1] over paths that start at 0 (the rest
    frame) and change by at most ``max_step`` from frame to frame (dynamic programming)."""
    err = errors.double().cpu().numpy()
    reach = np.abs(values[:, None] - values[None, :]) <= max_step + 1e-12  # [Q, Q] allowed moves
    cost = np.where(np.abs(values) <= max_step + 1e-12, err[:, 0], np.inf)
    back = []
    for f in range(1, err.shape[1]):
        options = np.where(reach, cost[None, :], np.inf)  # [to, from]
        prev = options.argmin(1)
        back.append(prev)
        cost = options[np.arange(len(values)), prev] + err[:, f]
    path = [int(np.argmin(cost))]
    for prev in reversed(back):
        path.append(int(prev[path[-1]]))
    return values[np.array(path[::-1])]


def rank_hypotheses(rest_moving: torch.Tensor, moving_features: torch.Tensor, layer: Layer, rig: CameraRig,
                    targets: torch.Tensor, coverage, silhouette_weight: float,
                    on_candidate: Optional[Callable[[], None]] = None) -> list[JointHypothesis]:
    """Every box candidate with its best value per frame, best first. ``targets`` [F-1, V, H, W, C] are the
    moving frames, ``coverage`` [F-1, V, H, W] their object coverage (or None). Pixels
    that show what the layer does not know (``layer.known``: surface hidden at rest, such as the inside a
    door uncovers) do not count: their appearance was never seen, and a wrong guess there would favour poses
    that keep them covered. A layer at a multiple of the targets' size is splatted over supersampled (see
    ``splat_points``). ``on_candidate`` is called after each candidate (progress and interrupt checks)."""
    V, H, W = targets.shape[1:4]
    supersample = max(layer.depth.shape[-1] // W, 1)  # (``splat_points`` checks the layer's size)
    targets = blur(targets.movedim(-1, -3), BLUR_PX)  # [F-1, V, C, H, W]
    coverage = None if coverage is None else blur(coverage, BLUR_PX)
    layer_known = layer.known if layer.known is not None else torch.ones_like(layer.cover)
    under = Layer(torch.cat([layer.features, layer_known[..., None]], -1), layer.depth, layer.cover)
    moving_features = torch.cat([moving_features, moving_features.new_ones(len(moving_features), 1)], -1)
    rest_np = rest_moving.detach().double().cpu().numpy()
    box = pca_obb(rest_np)

    def errors(jtype, axis, origin, values) -> torch.Tensor:  # [Q, F-1]
        pts = _poses(jtype, axis, origin, values, rest_moving)
        img, cover = splat_points(pts, moving_features, rig, W, H, under=under, supersample=supersample)
        img = img.movedim(-1, -3)  # [Q, V, C+1, H, W]
        known = img[:, :, -1:]  # 1 where the moving part or a known surface shows
        # An unknown surface is taken to look as the video shows it: the composite blurs to
        # blur(known * img) + blur((1 - known) * target), with blur(known * target) ~ blur(known) * blur(target)
        # (exact where known is locally constant; one blur per pose instead of one per pose and frame)
        shown, share = blur(known * img[:, :, :-1], BLUR_PX), blur(known, BLUR_PX)
        err = (shown[:, None] - share[:, None] * targets[None]).square().mean((2, 3, 4, 5))
        if coverage is not None and silhouette_weight > 0:
            err = err + silhouette_weight * ((blur(cover, BLUR_PX)[:, None] - coverage[None]) ** 2).mean((2, 3, 4))
        return err

    out = []
    with torch.no_grad():
        for jtype, axis, origin in box_candidates(rest_np):
            if jtype == "revolute":
                step, max_step = ANGLE_STEP, MAX_TURN_PER_FRAME
                values = np.arange(-math.pi, math.pi + 1e-9, step)
            else:
                length = 2.0 * float(np.abs((rest_np - box.centre) @ axis).max())
                step, max_step = 2 * SLIDE_REACH * length / SLIDE_STEPS, MAX_SLIDE_PER_FRAME * length
                values = np.linspace(-SLIDE_REACH * length, SLIDE_REACH * length, SLIDE_STEPS + 1)
            best = continuous_path(errors(jtype, axis, origin, values), values, max_step)  # [F-1]
            # finer values around each frame's best, scored against every frame, one batch for all frames
            fine = (best[:, None] + np.linspace(-step, step, FINE_STEPS)[None]).reshape(-1)
            err_f = errors(jtype, axis, origin, fine)  # [(F-1) * FINE_STEPS, F-1]
            nf = len(best)
            own = err_f.reshape(nf, FINE_STEPS, nf)[torch.arange(nf), :, torch.arange(nf)]  # [F-1, FINE_STEPS]
            pick = own.argmin(1)
            amounts = fine.reshape(nf, FINE_STEPS)[np.arange(nf), pick.cpu().numpy()]
            score = float(own.min(1).values.sum())
            out.append(JointHypothesis(jtype, np.asarray(axis, np.float64), np.asarray(origin, np.float64),
                                       amounts, score))
            if on_candidate is not None:
                on_candidate()
    out.sort(key=lambda h: h.score)
    log.info("joint hypotheses: %s", "; ".join(f"{h.type} axis {np.round(h.axis, 2).tolist()} score {h.score:.4g}"
                                               for h in out[:4]))
    return out


def with_every_type(hypotheses: list[JointHypothesis], n: int) -> list[JointHypothesis]:
    """The ``n`` best of ``hypotheses`` (lowest score first), where the best of each joint type is always
    among them: a slide and a hinge can look alike in a few coarse frames, and the finer stages that tell them
    apart can only choose between what they are given."""
    ranked = sorted(hypotheses, key=lambda h: h.score)
    chosen = ranked[:n]
    for jtype in ("revolute", "prismatic"):
        best = next((h for h in ranked if h.type == jtype), None)
        if best is not None and all(h.type != jtype for h in chosen) and chosen:
            chosen[-1] = best  # the worst pick gives way
    return sorted(chosen, key=lambda h: h.score)


def distinct(hypotheses: list[JointHypothesis], part_length: float, angle_deg: float = 10.0,
             share: float = 0.2) -> list[JointHypothesis]:
    """``hypotheses`` best first, without those that repeat a better one: the same type, an axis within
    ``angle_deg``, and (hinges) a line within ``share`` of ``part_length``. A thin door's hinges through its
    centre and through its two broad faces are one line; refining all three would crowd out the others."""
    cos = math.cos(math.radians(angle_deg))
    kept: list[JointHypothesis] = []
    for h in sorted(hypotheses, key=lambda h: h.score):
        def same(k: JointHypothesis) -> bool:
            if k.type != h.type or abs(float(np.dot(k.axis, h.axis))) < cos:
                return False
            if h.type == "prismatic":
                return True
            gap = h.origin - k.origin
            return float(np.linalg.norm(gap - np.dot(gap, k.axis) * k.axis)) < share * part_length
        if not any(same(k) for k in kept):
            kept.append(h)
    return kept


def prefer_slide(hypotheses: list[JointHypothesis], margin: float) -> JointHypothesis:
    """The best hypothesis, where a hinge must beat the best slide's score by the share ``margin``: a hinge
    whose axis and origin are free can bend toward any motion a little (a drawer pulled out is nearly a turn
    about a far line), so only a clearly better fit shows a real hinge."""
    best = {}
    for h in hypotheses:
        if h.type not in best or h.score < best[h.type].score:
            best[h.type] = h
    hinge, slide = best.get("revolute"), best.get("prismatic")
    if hinge is None or slide is None:
        return hinge or slide
    return hinge if hinge.score < (1.0 - margin) * slide.score else slide


def disagreeing_equals(kept: JointHypothesis, hypotheses: list[JointHypothesis], share: float,
                       angle_deg: float = 10.0) -> list[JointHypothesis]:
    """The hypotheses that disagree with ``kept`` (another type, or an axis more than ``angle_deg`` apart)
    yet explain the video as well, within the share ``share`` of its score: the video cannot tell them apart
    (a part too small to see move, or one turning about its own symmetry axis)."""
    cos = math.cos(math.radians(angle_deg))
    return [h for h in hypotheses
            if (h.type != kept.type or abs(float(np.dot(h.axis, kept.axis))) < cos)
            and abs(h.score - kept.score) <= share * abs(kept.score)]
