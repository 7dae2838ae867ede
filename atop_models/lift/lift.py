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
from ..geometry.cameras import pixel_span
from ..geometry.joint_search import JOINT_TYPE_CHOICES, SearchSettings, object_axes, snap_axes
from ..progress import OnStep, no_progress
from ..render.gaussians import rasterize_gaussians, select_backend
from ..types import CameraRig, PartMesh, PointSequence
from .gaussians import MOTIONS, FrameGaussians, GaussianInit, init_gaussians
from .guidance import SDSGuidance, VideoGuidance
from .joint_hypotheses import (MAX_SLIDE_PER_FRAME, MAX_TURN_PER_FRAME, SUPERSAMPLE, JointHypothesis,
                               box_candidates, disagreeing_equals, distinct, prefer_slide, rank_hypotheses,
                               render_layer, seen_at_rest, seen_features, with_every_type)

log = logging.getLogger("atop")

Guidance = Union[VideoGuidance, SDSGuidance]
MAX_BAD_STEPS = 10  # consecutive non-finite steps before giving up
APPEARANCE_SHARE = 0.3  # video curriculum: share of the steps fitting appearance on the rest frame
TRACK_SHARE = 0.6  # share tracking the frames one at a time (the rest polishes random frame subsets)
TRACK_LR_START, TRACK_LR_END = 3.0, 0.1  # motion learning-rate factors over one frame's tracking window
POLISH_FRAMES = 2
# joint motion: the splat ranking's best PROBED hypotheses each take a few coarse steps (PROBE_SHARE of the
# steps), the best REFINED of those are refined in turn (the rest of TRACK_SHARE), then the best is kept
PROBED, REFINED = 8, 3
PROBE_SHARE = 0.16
PROBE_FRAMES = 3
# a refined hinge must explain the video this much better than the best refined slide (measured: drawers
# that a hinge mimicked were fitted up to 14% better by it, real hinges at least 28% better than by a slide)
HINGE_MARGIN = 0.15
# the kept joint's axis snaps to the object's frame (within the joint search's angle) when that explains the
# video within SNAP_TOLERANCE
SNAP_TOLERANCE = 0.01
INDISTINCT_SHARE = 0.01  # joints that disagree but explain the video within this share: the video cannot decide
# A part spanning fewer pixels than this cannot show its motion (measured on the dev set at 64 px: knobs and
# buttons 1.4-3.2 px across were lifted 32 deg off on average, parts 10 px across or more 4.2 deg)
MIN_PART_SPAN_PX = 8.0
# A joint's values may not jump between frames by more than the hypotheses' per-frame bound: a thin part
# turned about its centre line can look like one turned the other way, and a frame alone may fall there.
CONTINUITY_WEIGHT = 1.0
SEEN_DEPTH = 0.1  # a splatted point is seen where its depth is within this share of the part's radius
APPEARANCE_LR = {"features": 0.02, "scales": 0.02, "quats": 0.005, "opacity": 0.05}  # opacity: outline Gaussians fade


def frame_schedule(iterations: int, num_frames: int, curriculum: bool,
                   joint: bool = False) -> list[tuple[str, int, int, int]]:
    """Per step (phase, frame or hypothesis, window start, window length). Without a curriculum every step
    renders all frames ("all"). With one: "appearance" (rest frame only: features, scales, opacities), then
    either "track" (frame f alone, its motion warm-started from the frames before; one frame per step keeps
    a step as cheap as a single-frame render) or, for ``joint`` motion, "probe" k (the k-th ranked joint
    hypothesis, a few coarse steps) and "hypothesis" k (the k-th best probed one, refined), then "polish"
    (random frame subsets, every parameter)."""
    if not curriculum:
        return [("all", -1, 0, iterations)] * iterations
    n_app = max(1, int(round(APPEARANCE_SHARE * iterations)))
    plan = [("appearance", 0, 0, n_app)] * n_app
    if joint:
        per = max(1, int(PROBE_SHARE * iterations) // PROBED)
        for k in range(PROBED):
            plan += [("probe", k, len(plan), per)] * per
        per = max(1, int((TRACK_SHARE - PROBE_SHARE) * iterations) // REFINED)
        for k in range(REFINED):
            plan += [("hypothesis", k, len(plan), per)] * per
    else:
        per = max(1, int(TRACK_SHARE * iterations) // (num_frames - 1))
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
    motion: str = "rigid"
    joint: Optional[JointHypothesis] = None  # the fitted joint motion (motion "joint"; score: video loss)
    hypotheses: list = field(default_factory=list)  # joint motion: the refined hypotheses, best first
    uncertain: bool = False  # the part is too small in the views, or (joint motion) joints that disagree
    # explain the video as well (see info)
    skipped_steps: int = 0
    seconds: float = 0.0
    gaussians: Optional[GaussianInit] = field(default=None, repr=False)


class _Progress:
    """One count for the loop's steps and its inner phases (each candidate of the joint ranking), reported
    through ``on_step(done, total, preview)`` so that progress (and the interrupt check the nodes attach to it)
    keeps moving through the whole lift."""

    def __init__(self, on_step: OnStep, total: int):
        self.on_step, self.total, self.done = on_step, total, 0

    def advance(self, preview=None) -> None:
        self.done = min(self.done + 1, self.total)
        self.on_step(self.done, self.total, preview)


def _isometry_edges(rest: np.ndarray, k: int = 6) -> tuple[np.ndarray, np.ndarray]:  # [E, 2], [E]
    from scipy.spatial import cKDTree

    k = min(k + 1, len(rest))
    d, j = cKDTree(rest).query(rest, k=k)
    i = np.repeat(np.arange(len(rest)), k - 1)
    return np.stack([i, j[:, 1:].reshape(-1)], 1), d[:, 1:].reshape(-1)


def _motion_optimizer(model: FrameGaussians, learning_rate: float, part_radius: float) -> torch.optim.Adam:
    """Adam over the motion. Rigid: rotations step ``learning_rate`` radians, translations that times the
    part's radius (both then move the part's points by similar amounts); joint: the axis direction and hinge
    angles likewise, slide lengths in part radii, the axis point three times faster (a hinge can lie outside
    the part's box, as a fridge door's does, and a slow axis point makes the angles overshoot instead);
    free offsets step in world units."""
    if model.rigid:
        groups = [{"params": [model.rotations], "lr": learning_rate},
                  {"params": [model.translations], "lr": learning_rate * part_radius}]
    elif model.motion == "joint":
        per_value = learning_rate * (part_radius if model.joint_type == "prismatic" else 1.0)
        groups = [{"params": [model.joint_axis], "lr": learning_rate},
                  {"params": [model.joint_origin], "lr": 3 * learning_rate * part_radius},
                  {"params": [model.joint_amounts], "lr": per_value}]
    else:
        groups = [{"params": [model.offsets], "lr": learning_rate}]
    for g in groups:
        g["base_lr"] = g["lr"]
    return torch.optim.Adam(groups, eps=1e-15)


def lift_gaussians(
    mesh: PartMesh, part_name: str, rig: CameraRig, guidance: Guidance, *,
    iterations: int = 300, learning_rate: float = 0.01, num_gaussians: int = 2000, moving_fraction: float = 0.5,
    motion: str = "rigid", joint_type: str = "auto", seed: int = 0, backend: str = "auto",
    vertices: Optional[np.ndarray] = None,
    curriculum: bool = True, frames_per_step: Optional[int] = None, isometry_weight: float = 10.0,
    device: Union[str, torch.device] = "cpu", dtype: torch.dtype = torch.float32,
    on_step: Optional[OnStep] = None,
) -> LiftResult:
    """Optimise per-frame Gaussians of ``mesh`` whose part ``part_name`` moves, against ``guidance``.

    ``num_gaussians`` are split between the moving part (``moving_fraction``) and the rest; ``vertices``
    gives the rest state when it differs from the mesh's own. ``motion``: "joint", "rigid" or "free" (see
    ``FrameGaussians``); ``joint_type`` ("auto", "revolute" or "prismatic") limits joint motion to that type,
    for when the user knows it and the video cannot show it. With ``curriculum`` (video guidance only; see
    ``frame_schedule``) appearance is fitted on the rest frame; then, for rigid and free motion, each frame
    is tracked alone, starting from the motion of the frames before it extrapolated; for joint motion, the
    bounding-box joint hypotheses are ranked against the video (``joint_hypotheses``), the best few refined
    in turn and the one that explains every frame best kept; then random subsets of ``frames_per_step``
    frames (default 2) polish everything. At least one step per frame is needed for a full curriculum.
    ``isometry_weight`` keeps the free moving Gaussians' neighbour distances. Raises DivergenceError on
    NaN/Inf.
    """
    if iterations < 1:
        raise InputError(f"iterations must be at least 1, got {iterations}")
    if not 0.0 < moving_fraction < 1.0:
        raise InputError(f"moving_fraction must be between 0 and 1, got {moving_fraction}")
    if learning_rate <= 0 or not math.isfinite(learning_rate):
        raise InputError(f"learning_rate must be positive, got {learning_rate}")
    if motion not in MOTIONS:
        raise InputError(f"unknown motion model '{motion}'; choose one of {', '.join(MOTIONS)}")
    if joint_type not in JOINT_TYPE_CHOICES:
        raise InputError(f"unknown joint type '{joint_type}'; choose one of {', '.join(JOINT_TYPE_CHOICES)}")
    if motion == "joint" and not (curriculum and guidance.supports_frame_subsets):
        raise InputError("joint motion ranks joint hypotheses against a video: it needs video guidance (with "
                         "the curriculum); with score distillation choose rigid or free motion")
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
    model = FrameGaussians(init, F, features, motion=motion, device=device, dtype=dtype)
    # Choose (and report) the rasteriser once; every render of the loop then uses that choice.
    backend, backend_info = select_backend(backend, torch.device(device))
    background = guidance.background.to(device=device, dtype=dtype)
    appearance_opt = torch.optim.Adam([
        {"params": [model.features], "lr": APPEARANCE_LR["features"]},
        {"params": [model.log_scales], "lr": APPEARANCE_LR["scales"]},
        {"params": [model.quats], "lr": APPEARANCE_LR["quats"]},
        {"params": [model.opacity_logits], "lr": APPEARANCE_LR["opacity"]},
    ], eps=1e-15)
    if motion == "free" and isometry_weight > 0:
        edges, rest_len = _isometry_edges(init.means[init.moving])
        edges = torch.as_tensor(edges, device=device)
        rest_len = torch.as_tensor(rest_len, dtype=dtype, device=device)
        spacing2 = rest_len.mean().clamp_min(1e-12) ** 2

    moving_rest = init.means[init.moving]
    part_radius = float(np.sqrt(((moving_rest - moving_rest.mean(0)) ** 2).sum(1).mean()))  # RMS, for step sizes
    use_curriculum = curriculum and guidance.supports_frame_subsets and F > 1
    plan = frame_schedule(iterations, F, use_curriculum, joint=motion == "joint")
    rng = np.random.default_rng(seed)
    scene_size = max(mesh.bbox_diagonal, 1e-6)
    centre = torch.as_tensor(mesh.vertices.mean(0), dtype=dtype, device=device)
    losses: list[float] = []
    skipped = bad_run = 0
    info = backend_info
    preview_every = max(iterations // 10, 1)
    motion_opt, window = None, None
    # the joint ranking scores every bounding-box candidate once: one progress unit each
    progress = _Progress(on_step, iterations + (len(box_candidates(moving_rest)) if motion == "joint" else 0))
    choice = (_JointChoice(model, guidance, rig, backend, background, object_axes(init.means[~init.moving]),
                           part_radius, joint_type, on_candidate=progress.advance) if motion == "joint" else None)
    for step in range(iterations):
        phase, frame, start, length = plan[step]
        if (phase, frame) != window:  # a new window: fresh Adam state, warm start
            if choice is not None:
                if window is not None:
                    choice.leave(window[0])
                choice.enter(phase, frame)
            window = (phase, frame)
            if phase in ("probe", "hypothesis"):
                motion_opt = _motion_optimizer(model, learning_rate, part_radius)
            elif phase == "track":
                if frame >= 2:
                    model.copy_frame(frame - 1, frame)
                motion_opt = _motion_optimizer(model, learning_rate, part_radius)
            elif phase in ("polish", "all"):
                if choice is not None and choice.snapped:
                    model.joint_axis.requires_grad_(False)  # the object's own axis stays; the rest polishes
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
        elif phase in ("probe", "hypothesis"):  # only the motion learns: the rest frame would teach it nothing
            k = min(PROBE_FRAMES if phase == "probe" else frames_per_step or POLISH_FRAMES, F - 1)
            frames = sorted((1 + rng.choice(F - 1, size=k, replace=False)).tolist())
        else:
            frames = list(range(F))
        # tracking: the first half of a window compares at half resolution (coarse to fine)
        coarse = phase == "probe" or (phase in ("track", "hypothesis") and step - start < length // 2)
        level = 1 if coarse and guidance.num_levels > 1 else 0
        width, height = guidance.size(level)
        means, quats = model.means()[frames], model.frame_quats()[frames]
        render = rasterize_gaussians(means, quats, model.log_scales, model.opacity_logits, model.features, rig,
                                     width, height, background=background, backend=backend)
        loss = guidance.loss(render.features, step, iterations, frames=frames if use_curriculum else None,
                             alpha=render.alpha, level=level)
        moving_frames = [f for f in frames if f > 0]
        if loss is not None and motion == "joint" and phase in ("probe", "hypothesis", "polish"):
            loss = loss + CONTINUITY_WEIGHT * model.joint_jumps(choice.max_step())
        if loss is not None and motion == "free" and isometry_weight > 0 and moving_frames:
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
            if phase in ("track", "probe", "hypothesis", "polish", "all"):
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
        progress.advance(preview)

    if choice is not None:
        if window is not None:
            choice.leave(window[0])
        info += "; " + choice.finish()  # (when the plan was too short to reach the polish phase)
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
                               f"{motion} motion)")
    if skipped:
        info += f"; {skipped} of {iterations} steps skipped (non-finite guidance)"
    # the part's size in the compared images (an RGB video at the guidance's size; latents encode the rig's)
    compared = guidance.width if guidance.target == "rgb" else rig.width
    span = pixel_span(rig, moving_rest) * compared / rig.width
    too_small = span < MIN_PART_SPAN_PX
    if too_small:
        needed = int(math.ceil(compared * MIN_PART_SPAN_PX / max(span, 1e-6)))
        log.warning("lift: part '%s' spans only %.1f px of the %d px views: too few to show its motion",
                    part_name, span, compared)
        info += (f"; UNCERTAIN: the part spans only {span:.1f} px of the {compared} px views, too few for its "
                 f"motion to show; lift at {needed} px or more, give the joint type if you know it, or check "
                 "the joint before use")
    seconds = time.monotonic() - t0
    log.info("lift: %d iterations, %d Gaussians (%d moving), %s, %.1f s", iterations, N, int(init.moving.sum()),
             info, seconds)
    joint = None
    if choice is not None:
        jtype, axis, origin, amounts = model.joint_state()
        joint = JointHypothesis(jtype, axis, origin, amounts, float(np.nanmean(losses[-10:])))
    return LiftResult(sequence=seq, losses=losses, previews=previews, backend=final.backend, info=info,
                      motion=motion, joint=joint, hypotheses=choice.refined if choice else [],
                      uncertain=too_small or bool(choice and choice.rivals()), skipped_steps=skipped,
                      seconds=seconds, gaussians=init)


class _JointChoice:
    """Which joint hypothesis the model follows in each window of a joint-motion plan: the splat ranking's
    best (``joint_hypotheses``) are probed in turn, the probes' best refined in turn, and the refined one
    with the lowest video loss over every frame is kept (then polished). Scores use the appearance fitted on
    the rest frame, which probes and refinements leave alone, so they compare like with like. Both joint types
    are always probed and refined, and a hinge is kept only when it is clearly better (``prefer_slide``)."""

    def __init__(self, model: FrameGaussians, guidance, rig: CameraRig, backend: str, background,
                 frame_axes: np.ndarray, part_radius: float, joint_type: str = "auto", on_candidate=None):
        self.model, self.guidance, self.rig, self.backend, self.background = model, guidance, rig, backend, background
        self.on_candidate = on_candidate  # called after each ranked candidate (progress)
        self.part_length = 2.0 * part_radius
        self.frame_axes = frame_axes  # [K, 3] the object's own directions (coordinate and principal axes)
        self.joint_type = joint_type  # "auto": both types compete
        self.snapped = self.warned = False
        self.chosen: Optional[JointHypothesis] = None  # the kept hypothesis before any snap
        self.ranked: list[JointHypothesis] = []
        self.probed: list[JointHypothesis] = []
        self.refined: list[JointHypothesis] = []
        self.to_refine: list[JointHypothesis] = []
        self.kept: Optional[JointHypothesis] = None

    def enter(self, phase: str, k: int) -> None:
        if phase == "probe":
            self._follow(self._ranking()[min(k, len(self.ranked) - 1)])
        elif phase == "hypothesis":
            if not self.to_refine:
                pool = distinct(self.probed or self._ranking(), self.part_length)
                self.to_refine = with_every_type(pool, REFINED)
            self._follow(self.to_refine[min(k, len(self.to_refine) - 1)])
        elif phase == "polish":
            self.finish()

    def leave(self, phase: str) -> None:
        if phase == "probe":
            self.probed.append(self._scored(level=1 if self.guidance.num_levels > 1 else 0))
        elif phase == "hypothesis":
            self.refined.append(self._scored(level=0))

    def finish(self) -> str:
        """Keeps the best refined hypothesis (or probed, or ranked: whatever the plan reached)."""
        if self.kept is None:
            pool = self.refined or self.probed or self._ranking()
            self.kept = self.chosen = prefer_slide(pool, HINGE_MARGIN)
            self.refined.sort(key=lambda h: h.score)
            self._follow(self.kept)
            self._snap()
            log.info("lift: joint motion %s, axis %s (video losses of the refined hypotheses: %s)", self.kept.type,
                     np.round(self.kept.axis, 3).tolist(), ", ".join(f"{h.type} {h.score:.4g}" for h in self.refined))
        rivals = self.rivals()
        if rivals and not self.warned:
            log.warning("lift: the video hardly shows the part's motion: other joints explain it as well")
            self.warned = True
        note = (f"joint motion: {self.kept.type} (best of {len(self.refined)} refined of {len(self.ranked)} "
                "bounding-box hypotheses" + (", axis snapped to the object's frame)" if self.snapped else ")"))
        if rivals:
            note += (f"; UNCERTAIN: {len(rivals)} other refined joint(s) ({', '.join(h.type for h in rivals)}) "
                     f"explain the video within {INDISTINCT_SHARE:.0%}: the part's motion barely changes the "
                     "images (a small part, or one turning about its own symmetry axis); render larger views, "
                     "give the joint type if you know it, or check the joint before use")
        return note

    def _snap(self) -> None:
        """Turns the kept joint's axis onto the nearest direction of the object's frame (about the axis point
        nearest the part) when the video is explained within SNAP_TOLERANCE as well: man-made joints follow
        their object's axes, and the free axis only bends a little toward what the pixels cannot resolve."""
        k = self.kept
        # (scores compare only at the refinements' full resolution)
        if not any(h is k for h in self.refined):
            return
        centre = self.model.rest[self.model.moving].mean(0).double().cpu().numpy()
        origin = k.origin + k.axis * float((centre - k.origin) @ k.axis)
        best = None
        for _, axis in snap_axes(k.axis, self.frame_axes, SearchSettings.snap_degrees):  # the coordinate axes first
            self._follow(JointHypothesis(k.type, axis, origin, k.amounts, k.score))
            snapped = self._scored(level=0)
            if snapped.score <= (1.0 + SNAP_TOLERANCE) * k.score:
                best = snapped
                break
        if best is not None:
            self.kept, self.snapped = best, True
        self._follow(self.kept)

    def max_step(self) -> float:
        """The largest joint-value change between frames that the hypotheses allow (radians or length)."""
        return MAX_TURN_PER_FRAME if self.model.joint_type == "revolute" else MAX_SLIDE_PER_FRAME * self.part_length

    def rivals(self) -> list[JointHypothesis]:
        """Refined hypotheses that disagree with the kept one but explain the video as well."""
        if self.chosen is None:
            return []
        return disagreeing_equals(self.chosen, [h for h in self.refined if h is not self.chosen], INDISTINCT_SHARE)

    def _follow(self, h: JointHypothesis) -> None:
        self.model.set_joint(h.type, h.axis, h.origin, h.amounts)

    def _ranking(self) -> list[JointHypothesis]:
        if not self.ranked:
            ranked = [h for h in _rank_joint_hypotheses(self.model, self.guidance, self.rig, self.background,
                                                        0.5 * self.part_length, self.on_candidate)
                      if self.joint_type in ("auto", h.type)]
            self.ranked = with_every_type(distinct(ranked, self.part_length), PROBED)
        return self.ranked

    def _scored(self, level: int) -> JointHypothesis:
        """The model's current joint motion, scored by the video loss over every frame at ``level``."""
        m, g = self.model, self.guidance
        width, height = g.size(level)
        with torch.no_grad():
            r = rasterize_gaussians(m.means(), m.frame_quats(), m.log_scales, m.opacity_logits, m.features, self.rig,
                                    width, height, background=self.background, backend=self.backend)
            loss = g.loss(r.features, 0, 1, alpha=r.alpha, level=level)
            if loss is not None:
                loss = loss + CONTINUITY_WEIGHT * m.joint_jumps(self.max_step())
        jtype, axis, origin, amounts = m.joint_state()
        return JointHypothesis(jtype, axis, origin, amounts, float(loss) if loss is not None else float("inf"))


def _rank_joint_hypotheses(model: FrameGaussians, guidance, rig: CameraRig, background,
                           part_radius: float, on_candidate=None) -> list[JointHypothesis]:
    """The bounding-box joint hypotheses ranked against the video at its coarse level (see
    ``joint_hypotheses``), with the appearance fitted so far."""
    level = 1 if guidance.num_levels > 1 else 0
    width, height = guidance.size(level)
    width, height = width * SUPERSAMPLE, height * SUPERSAMPLE  # the layers the splats go over
    frames, coverage = guidance.targets(level)
    static, moving = ~model.moving, model.moving
    with torch.no_grad():
        whole = render_layer(model.rest, model.quats, model.log_scales, model.opacity_logits, model.features, rig,
                             width, height, background)
        seen = seen_at_rest(model.rest, whole, rig, SEEN_DEPTH * part_radius)  # [V, N]
        layer = render_layer(model.rest[static], model.quats[static], model.log_scales[static],
                             model.opacity_logits[static], model.features[static], rig, width, height, background,
                             known=seen[:, static].any(0).to(model.rest.dtype))
        features = seen_features(model.rest[moving], model.features[moving], whole, rig, seen[:, moving])
        return rank_hypotheses(model.rest[moving], features, layer, rig, frames[1:],
                               None if coverage is None else coverage[1:], guidance.silhouette_weight,
                               on_candidate=on_candidate)
