"""The lifting loop: per-frame Gaussians on the mesh, optimised with Adam against a guidance (a video or
score distillation), returned as a point sequence (Gaussian means per frame, moving labels, track ids)."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import torch

from ..errors import DivergenceError, InputError
from ..progress import OnStep, no_progress
from ..render.gaussians import rasterize_gaussians, select_backend
from ..types import CameraRig, PartMesh, PointSequence
from .gaussians import FrameGaussians, GaussianInit, init_gaussians
from .guidance import SDSGuidance, VideoGuidance

log = logging.getLogger("atop")

Guidance = Union[VideoGuidance, SDSGuidance]
MAX_BAD_STEPS = 10  # consecutive non-finite steps before giving up
APPEARANCE_SHARE = 0.3  # video curriculum: share of the steps fitting appearance on the rest frame
TRACK_SHARE = 0.6  # share tracking the frames one at a time (the rest polishes random frame subsets)
TRACK_LR_START, TRACK_LR_END = 3.0, 0.1  # motion learning-rate factors over one frame's tracking window
POLISH_FRAMES = 2
APPEARANCE_LR = {"features": 0.02, "scales": 0.02, "quats": 0.005, "opacity": 0.05}  # opacity: outline Gaussians fade


def frame_schedule(iterations: int, num_frames: int, curriculum: bool) -> list[tuple[str, int, int, int]]:
    """Per step (phase, frame, window start, window length). Without a curriculum every step renders all
    frames ("all"). With one: "appearance" (rest frame only: features, scales, opacities), then "track"
    (frame f alone, its motion warm-started from the frames before; one frame per step keeps a step as
    cheap as a single-frame render), then "polish" (random frame subsets, every parameter)."""
    if not curriculum:
        return [("all", -1, 0, iterations)] * iterations
    moving = num_frames - 1
    n_app = max(1, int(round(APPEARANCE_SHARE * iterations)))
    per = max(1, int(TRACK_SHARE * iterations) // moving)
    plan = [("appearance", 0, 0, n_app)] * n_app
    for f in range(1, num_frames):
        plan += [("track", f, len(plan), per)] * per
    n_pol = max(iterations - len(plan), 0)
    plan += [("polish", -1, len(plan), n_pol)] * n_pol
    return plan[:iterations] if len(plan) >= iterations else plan


@dataclass
class LiftResult:
    sequence: PointSequence
    losses: list[float]  # one per iteration (NaN for skipped steps)
    previews: np.ndarray  # [K, H, W, 3] float32 0..1, one image per frame (views side by side)
    backend: str  # rasteriser used
    info: str  # backend choice and anything the user should know
    skipped_steps: int = 0
    seconds: float = 0.0
    gaussians: Optional[GaussianInit] = field(default=None, repr=False)


def _isometry_edges(rest: np.ndarray, k: int = 6) -> tuple[np.ndarray, np.ndarray]:  # [E, 2], [E]
    from scipy.spatial import cKDTree

    k = min(k + 1, len(rest))
    d, j = cKDTree(rest).query(rest, k=k)
    i = np.repeat(np.arange(len(rest)), k - 1)
    return np.stack([i, j[:, 1:].reshape(-1)], 1), d[:, 1:].reshape(-1)


def _motion_optimizer(model: FrameGaussians, learning_rate: float, part_radius: float) -> torch.optim.Adam:
    """Adam over the motion. Rigid: rotations step ``learning_rate`` radians, translations that times the
    part's radius (both then move the part's points by similar amounts); free offsets step in world units."""
    if model.rigid:
        groups = [{"params": [model.rotations], "lr": learning_rate},
                  {"params": [model.translations], "lr": learning_rate * part_radius}]
    else:
        groups = [{"params": [model.offsets], "lr": learning_rate}]
    for g in groups:
        g["base_lr"] = g["lr"]
    return torch.optim.Adam(groups, eps=1e-15)


def lift_gaussians(
    mesh: PartMesh, part_name: str, rig: CameraRig, guidance: Guidance, *,
    iterations: int = 300, learning_rate: float = 0.01, num_gaussians: int = 2000, moving_fraction: float = 0.5,
    rigid: bool = True, seed: int = 0, backend: str = "auto", vertices: Optional[np.ndarray] = None,
    curriculum: bool = True, frames_per_step: Optional[int] = None, isometry_weight: float = 10.0,
    device: Union[str, torch.device] = "cpu", dtype: torch.dtype = torch.float32,
    on_step: Optional[OnStep] = None,
) -> LiftResult:
    """Optimise per-frame Gaussians of ``mesh`` whose part ``part_name`` moves, against ``guidance``.

    ``num_gaussians`` are split between the moving part (``moving_fraction``) and the rest; ``vertices``
    gives the rest state when it differs from the mesh's own. With ``curriculum`` (video guidance only; see
    ``frame_schedule``) appearance is fitted on the rest frame, then each frame is tracked alone, starting
    from the motion of the frames before it extrapolated, then random subsets of ``frames_per_step`` frames
    (default 2) polish everything. At least one step per frame is needed for a full curriculum. ``isometry_weight``
    keeps the free (non-rigid) moving Gaussians' neighbour distances. Raises DivergenceError on NaN/Inf.
    """
    if iterations < 1:
        raise InputError(f"iterations must be at least 1, got {iterations}")
    if not 0.0 < moving_fraction < 1.0:
        raise InputError(f"moving_fraction must be between 0 and 1, got {moving_fraction}")
    if learning_rate <= 0 or not math.isfinite(learning_rate):
        raise InputError(f"learning_rate must be positive, got {learning_rate}")
    on_step = on_step or no_progress
    t0 = time.monotonic()
    torch.manual_seed(seed)
    F = guidance.num_frames
    if guidance.num_views != rig.num_views:
        raise InputError(f"the guidance has {guidance.num_views} views but {rig.num_views} cameras were given")
    num_moving = max(int(round(num_gaussians * moving_fraction)), 1)
    init = init_gaussians(mesh, part_name, num_gaussians - num_moving, num_moving, seed, vertices=vertices)
    if guidance.target == "rgb":
        features = torch.as_tensor(init.colors, dtype=dtype)
    else:
        features = torch.zeros(len(init.means), guidance.feature_dim, dtype=dtype)
    model = FrameGaussians(init, F, features, rigid=rigid, device=device, dtype=dtype)
    # Choose (and report) the rasteriser once; every render of the loop then uses that choice.
    backend, backend_info = select_backend(backend, torch.device(device))
    background = guidance.background.to(device=device, dtype=dtype)
    appearance_opt = torch.optim.Adam([
        {"params": [model.features], "lr": APPEARANCE_LR["features"]},
        {"params": [model.log_scales], "lr": APPEARANCE_LR["scales"]},
        {"params": [model.quats], "lr": APPEARANCE_LR["quats"]},
        {"params": [model.opacity_logits], "lr": APPEARANCE_LR["opacity"]},
    ], eps=1e-15)
    if not rigid and isometry_weight > 0:
        edges, rest_len = _isometry_edges(init.means[init.moving])
        edges = torch.as_tensor(edges, device=device)
        rest_len = torch.as_tensor(rest_len, dtype=dtype, device=device)
        spacing2 = rest_len.mean().clamp_min(1e-12) ** 2

    moving_rest = init.means[init.moving]
    part_radius = float(np.sqrt(((moving_rest - moving_rest.mean(0)) ** 2).sum(1).mean()))  # RMS, for step sizes
    use_curriculum = curriculum and guidance.supports_frame_subsets and F > 1
    plan = frame_schedule(iterations, F, use_curriculum)
    rng = np.random.default_rng(seed)
    scene_size = max(mesh.bbox_diagonal, 1e-6)
    centre = torch.as_tensor(mesh.vertices.mean(0), dtype=dtype, device=device)
    losses: list[float] = []
    skipped = bad_run = 0
    info = backend_info
    preview_every = max(iterations // 10, 1)
    motion_opt, window = None, None
    for step in range(iterations):
        phase, frame, start, length = plan[step]
        if (phase, frame) != window:  # a new tracking window: fresh Adam state, warm start by extrapolation
            window = (phase, frame)
            if phase == "track":
                if frame >= 2:
                    model.copy_frame(frame - 1, frame)
                motion_opt = _motion_optimizer(model, learning_rate, part_radius)
            elif phase in ("polish", "all"):
                motion_opt = _motion_optimizer(model, learning_rate, part_radius)
        if phase == "appearance":
            frames = [0]
        elif phase == "track":
            frames = [frame]
            # large steps first (the warm start may be off), small at the end of the frame's window
            factor = TRACK_LR_START * (TRACK_LR_END / TRACK_LR_START) ** ((step - start) / max(length - 1, 1))
            for g in motion_opt.param_groups:
                g["lr"] = g["base_lr"] * factor
        elif phase == "polish":
            k = min(frames_per_step or POLISH_FRAMES, F)
            frames = sorted(rng.choice(F, size=k, replace=False).tolist())
        else:
            frames = list(range(F))
        # tracking: the first half of a frame's window compares at half resolution (coarse to fine)
        level = 1 if phase == "track" and step - start < length // 2 and guidance.num_levels > 1 else 0
        width, height = guidance.size(level)
        means, quats = model.means()[frames], model.frame_quats()[frames]
        render = rasterize_gaussians(means, quats, model.log_scales, model.opacity_logits, model.features, rig,
                                     width, height, background=background, backend=backend)
        loss = guidance.loss(render.features, step, iterations, frames=frames if use_curriculum else None,
                             alpha=render.alpha, level=level)
        moving_frames = [f for f in frames if f > 0]
        if loss is not None and not rigid and isometry_weight > 0 and moving_frames:
            pts = model.means()[moving_frames][:, model.moving_idx]  # [F', M, 3]
            length_e = (pts[:, edges[:, 0]] - pts[:, edges[:, 1]]).norm(dim=-1)
            loss = loss + isometry_weight * ((length_e - rest_len) ** 2).mean() / spacing2
        appearance_opt.zero_grad(set_to_none=True)
        if motion_opt is not None:
            motion_opt.zero_grad(set_to_none=True)
        ok = loss is not None and bool(torch.isfinite(loss))
        if ok:
            loss.backward()
            ok = all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        if ok:
            if phase in ("appearance", "polish", "all"):
                appearance_opt.step()
            if phase in ("track", "polish", "all"):
                motion_opt.step()
            losses.append(float(loss.detach()))
            bad_run = 0
        else:
            skipped += 1
            bad_run += 1
            losses.append(float("nan"))
            log.warning("lift step %d: non-finite loss or gradient, step skipped", step)
            if bad_run >= MAX_BAD_STEPS:
                raise DivergenceError(f"the Gaussian lift diverged: {bad_run} consecutive steps produced NaN/Inf "
                                      f"(at step {step + 1} of {iterations}); lower the learning rate or the "
                                      "guidance scale")
        with torch.no_grad():
            moved = model.means()
            if not torch.isfinite(moved).all() or (moved - centre).norm(dim=-1).max() > 20 * scene_size:
                raise DivergenceError(f"the Gaussian lift diverged at step {step + 1} of {iterations}: the "
                                      "moving Gaussians left the scene (non-finite or far away); lower the "
                                      "learning rate")
        preview = None
        if ((step + 1) % preview_every == 0 or step + 1 == iterations) and level == 0:
            preview = guidance.preview(render.features.detach()[-1:], frames[-1:])[0]
        on_step(step + 1, iterations, preview)

    with torch.no_grad():
        means = model.means()
        final = rasterize_gaussians(means, model.frame_quats(), model.log_scales, model.opacity_logits,
                                    model.features, rig, guidance.width, guidance.height, background=background,
                                    backend=backend)
        previews = guidance.preview(final.features)
    points = means.double().cpu().numpy()
    N = points.shape[1]
    seq = PointSequence(points=points, moving=np.broadcast_to(init.moving, (F, N)).copy(),
                        track_ids=np.broadcast_to(np.arange(N), (F, N)).copy(), part_name=part_name,
                        source=f"gaussians ({'sds' if isinstance(guidance, SDSGuidance) else 'video'} guidance, "
                               f"{'rigid' if rigid else 'free'} motion)")
    if skipped:
        info += f"; {skipped} of {iterations} steps skipped (non-finite guidance)"
    seconds = time.monotonic() - t0
    log.info("lift: %d iterations, %d Gaussians (%d moving), %s, %.1f s", iterations, N, int(init.moving.sum()),
             info, seconds)
    return LiftResult(sequence=seq, losses=losses, previews=previews, backend=final.backend, info=info,
                      skipped_steps=skipped, seconds=seconds, gaussians=init)
