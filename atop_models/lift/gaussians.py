"""Per-frame 3D Gaussians of an object whose part moves.

Gaussian i is the same physical point in every frame (its track id is i). Frame 0 is the rest state and
stays fixed; static Gaussians never move; the moving part's Gaussians move per frame (``motion``):
- "free": one offset per Gaussian and frame;
- "rigid": one rotation and translation per frame, shared by the whole part, about its rest centroid;
- "joint": a 1-DoF joint shared by every frame (revolute or prismatic: axis, a point on the axis) and one
  joint value per frame, the fewest unknowns of all.
Appearance (features, scales, rotations, opacities) is shared by all frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..types import PartMesh

MIN_PART_POINTS = 16
SCALE_FACTOR = 0.6  # Gaussian width / local point spacing: covers the surface without bloating its outline
MIN_PART_AREA_FRACTION = 1e-4  # part area / bbox-diagonal^2 below this is too small to sample


@dataclass
class GaussianInit:
    """Rest-state Gaussians sampled on a mesh surface."""

    means: np.ndarray  # [N, 3] rest positions
    moving: np.ndarray  # [N] bool
    colors: np.ndarray  # [N, 3] surface colour 0..1
    scales: np.ndarray  # [N] isotropic initial scale (local point spacing)
    face_ids: np.ndarray  # [N]
    moving_parts: list[str]
    normals: np.ndarray | None = None  # [N, 3] unit surface normals (flat "surfel" Gaussians when given)


def moving_parts_for(mesh: PartMesh, part_name: str) -> list[str]:
    """The named part plus every part attached below it through the mesh's joints (when known)."""
    name = mesh.part_names[mesh.part_index(part_name)]
    joint = mesh.joint_for_part(name)
    return mesh.parts_moved_by(joint) if joint is not None else [name]


def _part_area(mesh: PartMesh, vertices: np.ndarray, names: list[str]) -> float:
    faces = mesh.faces[mesh.part_face_mask(names)]
    tri = vertices[faces]  # [F, 3, 3]
    return float(0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=-1).sum())


def gaussian_colors(mesh: PartMesh, points: np.ndarray, face_ids: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Unshaded display (sRGB) colour of the surface at sampled points [N, 3] (materials, textures, vertex
    colours: the renderer's own surface colours)."""
    from ..render.raycast import _linear_to_srgb, surface_colors

    bary = _barycentric(points, vertices[mesh.faces[face_ids]])
    return _linear_to_srgb(surface_colors(mesh, face_ids, bary)[:, :3].astype(np.float64))


def _barycentric(p: np.ndarray, tri: np.ndarray) -> np.ndarray:  # [N, 3], [N, 3, 3] -> [N, 3]
    v0, v1, v2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], p - tri[:, 0]
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-20, 1.0, den)
    b1 = (d11 * d20 - d01 * d21) / den
    b2 = (d00 * d21 - d01 * d20) / den
    return np.stack([1 - b1 - b2, b1, b2], -1)


def init_gaussians(mesh: PartMesh, part_name: str, num_static: int, num_moving: int, seed: int = 0,
                   vertices: np.ndarray | None = None) -> GaussianInit:
    """Gaussians at points sampled on the static and the moving parts (``vertices``: a posed rest state)."""
    from scipy.spatial import cKDTree

    from ..mesh.sampling import sample_surface

    verts = mesh.vertices if vertices is None else np.asarray(vertices, dtype=np.float64)
    moving_parts = moving_parts_for(mesh, part_name)
    static_parts = [p for p in mesh.part_names if p not in moving_parts]
    if num_moving < MIN_PART_POINTS:
        raise InputError(f"at least {MIN_PART_POINTS} Gaussians are needed on the moving part, got {num_moving}; "
                         "raise the number of Gaussians")
    diag2 = max(mesh.bbox_diagonal, 1e-12) ** 2
    area = _part_area(mesh, verts, moving_parts)
    if area / diag2 < MIN_PART_AREA_FRACTION:
        raise InputError(f"part '{part_name}' is too small to sample: its surface area is {area:.3g} "
                         f"({area / diag2:.2g} of the squared object diagonal, minimum {MIN_PART_AREA_FRACTION:g}); "
                         "choose a larger part or check the part labels")
    pts_m, fid_m = sample_surface(mesh, moving_parts, num_moving, seed, vertices=verts)
    if static_parts and num_static > 0 and _part_area(mesh, verts, static_parts) > 0:
        pts_s, fid_s = sample_surface(mesh, static_parts, num_static, seed + 1, vertices=verts)
    else:
        pts_s, fid_s = np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    means = np.concatenate([pts_s, pts_m]).astype(np.float64)
    face_ids = np.concatenate([fid_s, fid_m]).astype(np.int64)
    moving = np.concatenate([np.zeros(len(pts_s), bool), np.ones(len(pts_m), bool)])
    # scale ~ local spacing: mean distance to the 3 nearest other points of the same part
    scales = np.empty(len(means))
    for sel in (~moving, moving):
        if sel.sum() > 1:
            k = min(4, int(sel.sum()))
            d, _ = cKDTree(means[sel]).query(means[sel], k=k)
            scales[sel] = SCALE_FACTOR * d[:, 1:].mean(1)
        elif sel.any():
            scales[sel] = 0.01 * mesh.bbox_diagonal
    scales = np.clip(scales, 1e-4 * mesh.bbox_diagonal, 0.05 * mesh.bbox_diagonal)
    colors = gaussian_colors(mesh, means, face_ids, verts)
    tri = verts[mesh.faces[face_ids]]  # [N, 3, 3]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
    return GaussianInit(means=means, moving=moving, colors=colors, scales=scales, face_ids=face_ids,
                        moving_parts=moving_parts, normals=normals)


SURFEL_FLATNESS = 0.1  # thickness / width of a surface Gaussian


def quats_z_to(normals: np.ndarray) -> np.ndarray:  # [N, 3] unit -> [N, 4] (w, x, y, z)
    """Rotations taking +z to each normal (the shortest arc; 180 degrees about x for -z)."""
    n = np.asarray(normals, dtype=np.float64)
    q = np.stack([1.0 + n[:, 2], -n[:, 1], n[:, 0], np.zeros(len(n))], -1)
    flip = q[:, 0] < 1e-8
    q[flip] = [0.0, 1.0, 0.0, 0.0]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def axis_angle_to_matrix(v: torch.Tensor) -> torch.Tensor:  # [..., 3] -> [..., 3, 3]
    """Rodrigues' formula, smooth at zero (series for small angles)."""
    theta2 = (v * v).sum(-1, keepdim=True)[..., None]  # [..., 1, 1]
    theta = torch.sqrt(theta2.clamp_min(1e-20))
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-20))
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(K)
    return eye + a * K + b * (K @ K)


def axis_angle_to_quat(v: torch.Tensor) -> torch.Tensor:  # [..., 3] -> [..., 4] (w, x, y, z)
    theta2 = (v * v).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(1e-20))
    small = theta2 < 1e-8
    half_sinc = torch.where(small, 0.5 - theta2 / 48, torch.sin(theta / 2) / theta)  # sin(t/2) / t
    return torch.cat([torch.cos(theta / 2), half_sinc * v], -1)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # [..., 4] x [..., 4]
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


MOTIONS = ("joint", "rigid", "free")
JOINT_MOTION_TYPES = ("revolute", "prismatic")


class FrameGaussians(nn.Module):
    """Learnable per-frame Gaussians. ``means()`` [F, N, 3], ``quats()`` [F, N, 4]; frame 0 is the rest."""

    def __init__(self, init: GaussianInit, num_frames: int, features: torch.Tensor, *, motion: str = "rigid",
                 opacity: float = 0.9, device=None, dtype=torch.float32):
        super().__init__()
        if num_frames < 2:
            raise InputError(f"lifting needs at least 2 frames (rest + motion), got {num_frames}")
        if motion not in MOTIONS:
            raise InputError(f"unknown motion model '{motion}'; choose one of {', '.join(MOTIONS)}")
        kw = dict(device=device, dtype=dtype)
        self.num_frames, self.motion = num_frames, motion
        self.rigid = motion == "rigid"
        self.register_buffer("rest", torch.as_tensor(init.means, **kw))  # [N, 3]
        self.register_buffer("moving", torch.as_tensor(init.moving, device=device))  # [N] bool
        self.register_buffer("moving_idx", torch.nonzero(self.moving).squeeze(1))  # [M]
        self.register_buffer("pivot", self.rest[self.moving_idx].mean(0))  # [3]
        n, m = len(init.means), int(init.moving.sum())
        self.features = nn.Parameter(features.to(**kw).clone())  # [N, C]
        log_s = torch.as_tensor(np.log(init.scales), **kw)[:, None].repeat(1, 3)
        if init.normals is not None:
            # flat discs in the surface: a thick blob would widen the silhouette beyond the mesh's
            log_s[:, 2] += math.log(SURFEL_FLATNESS)
            quats = torch.as_tensor(quats_z_to(init.normals), **kw)
        else:
            quats = torch.tensor([1.0, 0.0, 0.0, 0.0], **kw).repeat(n, 1)
        self.log_scales = nn.Parameter(log_s)
        self.quats = nn.Parameter(quats)
        self.opacity_logits = nn.Parameter(torch.full((n,), math.log(opacity / (1 - opacity)), **kw))
        if motion == "rigid":
            self.rotations = nn.Parameter(torch.zeros(num_frames - 1, 3, **kw))  # axis-angle per frame
            self.translations = nn.Parameter(torch.zeros(num_frames - 1, 3, **kw))
        elif motion == "joint":
            self.joint_type = "revolute"
            self.joint_axis = nn.Parameter(torch.tensor([0.0, 0.0, 1.0], **kw))  # normalised where used
            self.joint_origin = nn.Parameter(self.pivot.clone())
            self.joint_amounts = nn.Parameter(torch.zeros(num_frames - 1, **kw))  # radians or length, per frame
        else:
            self.offsets = nn.Parameter(torch.zeros(num_frames - 1, m, 3, **kw))

    def motion_parameters(self) -> list[nn.Parameter]:
        if self.motion == "joint":
            return [self.joint_axis, self.joint_origin, self.joint_amounts]
        return [self.rotations, self.translations] if self.rigid else [self.offsets]

    def set_joint(self, joint_type: str, axis, origin, amounts) -> None:
        """Sets the joint motion (``motion="joint"``): type, axis [3], a point on it [3], values [F-1]."""
        if joint_type not in JOINT_MOTION_TYPES:
            raise InputError(f"joint type must be one of {', '.join(JOINT_MOTION_TYPES)}, got {joint_type!r}")
        with torch.no_grad():
            self.joint_type = joint_type
            self.joint_axis.copy_(torch.as_tensor(np.asarray(axis, dtype=np.float64)))
            self.joint_origin.copy_(torch.as_tensor(np.asarray(origin, dtype=np.float64)))
            self.joint_amounts.copy_(torch.as_tensor(np.asarray(amounts, dtype=np.float64)))

    def joint_state(self) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        """(type, unit axis, origin, values [F-1]) of the joint motion."""
        a = self.joint_axis.detach().double().cpu().numpy()
        return (self.joint_type, a / max(np.linalg.norm(a), 1e-12), self.joint_origin.detach().double().cpu().numpy(),
                self.joint_amounts.detach().double().cpu().numpy())

    def _joint_rotations(self) -> torch.Tensor:  # [F-1, 3] axis-angle of each frame (zero for a slide)
        axis = self.joint_axis / self.joint_axis.norm().clamp_min(1e-12)
        if self.joint_type == "prismatic":
            return torch.zeros(self.num_frames - 1, 3, dtype=axis.dtype, device=axis.device)
        return self.joint_amounts[:, None] * axis

    def joint_jumps(self, max_step: float) -> torch.Tensor:
        """How far the joint values jump beyond ``max_step`` between consecutive frames (the rest frame is
        0): mean of (excess / max_step)^2, zero for a continuous motion."""
        values = torch.cat([self.joint_amounts.new_zeros(1), self.joint_amounts])
        excess = ((values[1:] - values[:-1]).abs() - max_step).clamp_min(0.0) / max_step
        return (excess ** 2).mean()

    def appearance_parameters(self) -> list[nn.Parameter]:
        return [self.features, self.log_scales, self.quats, self.opacity_logits]

    def means(self) -> torch.Tensor:  # [F, N, 3]
        F = self.num_frames
        out = self.rest[None].repeat(F, 1, 1)
        rest_m = self.rest[self.moving_idx]  # [M, 3]
        if self.rigid:
            R = axis_angle_to_matrix(self.rotations)  # [F-1, 3, 3]
            moved = (rest_m - self.pivot) @ R.transpose(-1, -2) + self.pivot + self.translations[:, None]
        elif self.motion == "joint":
            axis = self.joint_axis / self.joint_axis.norm().clamp_min(1e-12)
            if self.joint_type == "prismatic":
                moved = rest_m[None] + self.joint_amounts[:, None, None] * axis
            else:
                R = axis_angle_to_matrix(self._joint_rotations())
                moved = (rest_m - self.joint_origin) @ R.transpose(-1, -2) + self.joint_origin
        else:
            moved = rest_m[None] + self.offsets
        idx = self.moving_idx[None, :, None].expand(F - 1, -1, 3)
        return torch.cat([out[:1], out[1:].scatter(1, idx, moved)], 0)

    def frame_quats(self) -> torch.Tensor:  # [F, N, 4]
        F = self.num_frames
        q = self.quats[None].repeat(F, 1, 1)
        if self.motion == "free":
            return q
        rq = axis_angle_to_quat(self.rotations if self.rigid else self._joint_rotations())  # [F-1, 4]
        qm = quat_multiply(rq[:, None], self.quats[self.moving_idx][None])  # [F-1, M, 4]
        idx = self.moving_idx[None, :, None].expand(F - 1, -1, 4)
        return torch.cat([q[:1], q[1:].scatter(1, idx, qm)], 0)

    def copy_frame(self, src: int, dst: int, extrapolate: bool = True) -> None:
        """Start frame ``dst``'s motion from frame ``src`` (frames count from 0 = rest), continuing the
        motion from the frame before ``src`` when ``extrapolate``: the warm start of a motion curriculum."""
        with torch.no_grad():
            for p in self.motion_parameters()[2:] if self.motion == "joint" else self.motion_parameters():
                prev = p[src - 2] if src >= 2 else torch.zeros_like(p[0])
                cur = p[src - 1] if src >= 1 else torch.zeros_like(p[0])
                p[dst - 1] = 2 * cur - prev if extrapolate else cur
