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

import numpy as np
import torch

from ..geometry.joint_search import _rodrigues
from ..geometry.obb import candidate_origins, pca_obb
from ..render.gaussians import rasterize_gaussians
from ..render.splat import Layer, camera_depth, splat_points
from ..types import CameraRig

log = logging.getLogger("atop")

ANGLE_STEP = math.radians(6.0)  # coarse grid of hinge angles over a full turn
SLIDE_STEPS = 60  # coarse grid of slide lengths over +-SLIDE_REACH part lengths
SLIDE_REACH = 1.5
MAX_TURN_PER_FRAME = math.radians(36.0)  # continuity of the grid path (a quarter turn in 2.5 frames)
MAX_SLIDE_PER_FRAME = 0.35  # part lengths
FINE_STEPS = 5  # values of the finer grid, spanning one coarse step either side of the best


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


def static_layer(means, quats, log_scales, opacity_logits, features, rig: CameraRig, width: int, height: int,
                 background: torch.Tensor) -> Layer:
    """The static Gaussians rendered once, with the depth of the surface each pixel shows (the rendered mean
    position, alpha-weighted, seen from that pixel's camera)."""
    C = features.shape[-1]
    feats = torch.cat([features, means], -1)
    bg = torch.cat([background.to(features), torch.zeros(3, dtype=features.dtype, device=features.device)])
    r = rasterize_gaussians(means[None], quats[None], log_scales, opacity_logits, feats, rig, width, height,
                            background=bg, backend="torch")
    image, alpha = r.features[0], r.alpha[0]  # [V, H, W, C+3], [V, H, W]
    position = image[..., C:] / alpha[..., None].clamp_min(1e-6)
    depth = camera_depth(position, rig)
    depth = torch.where(alpha > 0.5, depth, torch.full_like(depth, float("inf")))
    return Layer(features=image[..., :C], depth=depth, cover=alpha)


def _poses(jtype: str, axis: np.ndarray, origin: np.ndarray, values: np.ndarray, rest: torch.Tensor) -> torch.Tensor:
    """The part's rest points [M, 3] moved by the joint to each of ``values`` [Q]: [Q, M, 3]."""
    a = torch.as_tensor(axis, dtype=rest.dtype, device=rest.device)
    if jtype == "prismatic":
        return rest[None] + torch.as_tensor(values, dtype=rest.dtype, device=rest.device)[:, None, None] * a
    R = torch.as_tensor(_rodrigues(np.repeat(axis[None], len(values), 0), values), dtype=rest.dtype,
                        device=rest.device)
    o = torch.as_tensor(origin, dtype=rest.dtype, device=rest.device)
    return torch.einsum("qij,mj->qmi", R, rest - o) + o


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
                    targets: torch.Tensor, coverage, silhouette_weight: float) -> list[JointHypothesis]:
    """Every box candidate with its best value per frame, best first. ``targets`` [F-1, V, H, W, C] are the
    moving frames at the layer's size, ``coverage`` [F-1, V, H, W] their object coverage (or None)."""
    V, H, W = layer.depth.shape
    rest_np = rest_moving.detach().double().cpu().numpy()
    box = pca_obb(rest_np)

    def errors(jtype, axis, origin, values) -> torch.Tensor:  # [Q, F-1]
        pts = _poses(jtype, axis, origin, values, rest_moving)
        img, cover = splat_points(pts, moving_features, rig, W, H, under=layer)
        err = ((img[:, None] - targets[None]) ** 2).mean((2, 3, 4, 5))
        if coverage is not None and silhouette_weight > 0:
            err = err + silhouette_weight * ((cover[:, None] - coverage[None]) ** 2).mean((2, 3, 4))
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
