"""The articulation pipeline without ComfyUI: the same stages the shipped workflow wires together.

rest-state views and part masks -> multi-view motion (sampled by the personalised model from the prompt, or
a given reference motion) -> per-frame Gaussians lifted from it -> joint by OBB axis search."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .geometry.cameras import imagedream_rig
from .lift.lift import LiftResult, lift_gaussians
from .render.masks import part_masks
from .render.raycast import render_views
from .types import CameraRig, Joint, MultiViewVideo, PartMesh

log = logging.getLogger("atop")


@dataclass
class ArticulateConfig:
    num_views: int = 4
    elevation: float = 15.0
    fov: float = 40.0
    distance: float = 2.0
    resolution: int = 256
    num_frames: int = 10
    steps: int = 50  # DDIM steps when the model samples the motion
    guidance_scale: float = 5.0
    seed: int = 0
    lift_iterations: int = 300
    lift_resolution: int = 64
    num_gaussians: int = 2000
    motion: str = "joint"  # the lift's motion model: joint, rigid or free
    joint_type: str = "auto"


@dataclass
class ArticulateResult:
    rig: CameraRig
    views: np.ndarray  # [V, H, W, 3] rest state
    masks: np.ndarray  # [V, H, W] visible pixels of the part
    video: MultiViewVideo
    motion_source: str  # "model" or a description of the given reference motion
    lift: LiftResult
    joint: Joint
    timings: dict = field(default_factory=dict)


def articulate(mesh: PartMesh, part: str, prompt: str, config: ArticulateConfig, *, model=None,
               reference: Optional[MultiViewVideo] = None, reference_label: str = "reference motion",
               on_stage: Callable[[str], None] = lambda stage: None) -> ArticulateResult:
    """Runs every stage for ``part``. With ``model`` (an inflated ImageDream with a trained motion module)
    the motion is sampled from ``prompt``; otherwise ``reference`` (a multi-view motion video rendered with
    the same cameras) is lifted with "video" guidance."""
    import time

    from .geometry.joint_search import estimate_joint

    if model is None and reference is None:
        raise ValueError("articulate needs a model to sample the motion, or a reference motion video")
    part = mesh.part_names[mesh.part_index(part)]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rig = reference.rig if reference is not None and model is None else imagedream_rig(
        num_views=config.num_views, elevation_deg=config.elevation, fov_deg=config.fov,
        distance=config.distance, resolution=config.resolution)
    on_stage("render")
    render = render_views(mesh, rig)
    moved = mesh.parts_moved_by(mesh.joint_for_part(part)) if mesh.joint_for_part(part) else [part]
    masks = part_masks(mesh, render, moved)
    timings["render"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if model is not None:
        from .diffusion.sampler import sample_video

        on_stage("sample")
        video = sample_video(model, render.rgb, prompt, rig, masks, num_frames=config.num_frames,
                             steps=config.steps, guidance_scale=config.guidance_scale, seed=config.seed)
        source = "model"
    else:
        video, source = reference, reference_label
    timings["motion"] = time.perf_counter() - t0

    from .lift.guidance import VideoGuidance

    t0 = time.perf_counter()
    on_stage("lift")
    guidance = VideoGuidance(video, rig, resolution=config.lift_resolution)
    lift = lift_gaussians(mesh, part, rig, guidance, iterations=config.lift_iterations,
                          num_gaussians=config.num_gaussians, motion=config.motion, seed=config.seed)
    timings["lift"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    on_stage("joint")
    joint = estimate_joint(lift.sequence, joint_type=config.joint_type)
    joint = joint.replace(child=part, parent=_parent_of(mesh, part), name=f"{part}_joint")
    timings["joint"] = time.perf_counter() - t0
    return ArticulateResult(rig=rig, views=render.rgb, masks=masks, video=video, motion_source=source, lift=lift,
                            joint=joint, timings=timings)


def _parent_of(mesh: PartMesh, part: str) -> Optional[str]:
    gt = mesh.joint_for_part(part)
    if gt is not None:
        return gt.parent
    static = [p for p in mesh.part_names if p != part]
    return static[0] if static else None
