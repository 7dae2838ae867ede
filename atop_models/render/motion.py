"""Multi-view renders of a part moving along its joint: ground-truth motion videos (reference clips, the
"video" guidance of the lift, benchmarks)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from ..mesh.articulate import joint_values_for_fraction, posed_vertices
from ..progress import OnStep
from ..types import CameraRig, Joint, MultiViewVideo, PartMesh
from .masks import part_masks
from .raycast import render_views


def opening_values(joint: Joint, num_frames: int, fraction: float = 1.0) -> np.ndarray:  # [F]
    """Joint values from rest (frame 0) to ``fraction`` of the opening range, evenly spaced."""
    if num_frames < 2:
        raise InputError(f"a motion needs at least 2 frames, got {num_frames}")
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"the opening fraction must be in (0, 1], got {fraction}")
    return np.asarray(joint_values_for_fraction(joint, np.linspace(0.0, fraction, num_frames)), dtype=np.float64)


def render_joint_motion(mesh: PartMesh, joint: Joint, values: np.ndarray, rig: CameraRig, *,
                        background=(1.0, 1.0, 1.0), prompt: str = "", on_step: Optional[OnStep] = None
                        ) -> MultiViewVideo:
    """Renders ``mesh`` with ``joint`` at each of ``values`` [F] from every camera of ``rig`` (``on_step``
    after each frame).

    Returns frames [V, F, H, W, 3] and the first frame's visible part masks [V, H, W] (the joint's child
    and everything attached below it)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    moved = mesh.parts_moved_by(joint)
    # The given joint replaces any joint of the mesh that moves the same part (e.g. an estimated one).
    joints = [joint] + [j for j in mesh.joints if j.child != joint.child]
    frames, masks = [], None
    for f, value in enumerate(values):
        verts = posed_vertices(mesh, {joint.child: float(value)}, joints) if value != 0.0 else mesh.vertices
        render = render_views(mesh, rig, background=background, vertices=verts)
        frames.append(render.rgb)
        if f == 0:
            masks = part_masks(mesh, render, moved)
        if on_step is not None:
            on_step(f + 1, len(values), None)
    video = np.stack(frames, axis=1).astype(np.float32)  # [V, F, H, W, 3]
    return MultiViewVideo(frames=video, rig=rig, prompt=prompt, part_masks=masks)
