"""Z-buffered point splatting: a fast, non-differentiable stand-in for the Gaussian rasteriser, for scoring
many candidate poses of a part at once (each point covers the 2x2 pixels around its projection). With
supersampling the points are splatted at a multiple of the resolution and each pixel averages its block, so
a point covers about one pixel and a thin part seen edge-on covers a fraction of a pixel, as in a render.

Points can be splatted over a ``Layer``: an image with a depth per pixel (e.g. the static part rendered
once by the rasteriser), so a candidate part pose is composited in front of or behind what does not move.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as Fn

from ..types import CameraRig
from .gaussians import NEAR_PLANE, camera_matrices


@dataclass
class Layer:
    features: torch.Tensor  # [V, H, W, C] what the pixel shows
    depth: torch.Tensor  # [V, H, W] camera depth of the surface shown (inf: background)
    cover: torch.Tensor  # [V, H, W] 0..1 opacity
    known: Optional[torch.Tensor] = None  # [V, H, W] share of what the pixel shows whose appearance is known


def camera_depth(points: torch.Tensor, rig: CameraRig) -> torch.Tensor:
    """Depth along each camera's viewing direction of world points [V, ..., 3] (one set per view)."""
    viewmats, _ = camera_matrices(rig, 1, 1, device=points.device, dtype=points.dtype)
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]  # [V, 3, 3], [V, 3]
    shape = points.shape
    flat = points.reshape(shape[0], -1, 3)
    z = torch.einsum("vj,vpj->vp", R[:, 2], flat) + t[:, 2, None]
    return z.reshape(shape[:-1])


def project(points: torch.Tensor, rig: CameraRig, width: int, height: int):
    """Pixel coordinates u, v and camera depth z [B, V, P] of B point sets ``points`` [B, P, 3] in every
    view of ``rig`` at width x height (points behind the near plane project as if on it)."""
    viewmats, Ks = camera_matrices(rig, width, height, device=points.device, dtype=points.dtype)
    cam = torch.einsum("vij,bpj->bvpi", viewmats[:, :3, :3], points) + viewmats[None, :, None, :3, 3]
    z = cam[..., 2]  # [B, V, P]
    zs = z.clamp_min(NEAR_PLANE)
    u = Ks[None, :, None, 0, 0] * cam[..., 0] / zs + Ks[None, :, None, 0, 2]
    v = Ks[None, :, None, 1, 1] * cam[..., 1] / zs + Ks[None, :, None, 1, 2]
    return u, v, z


def splat_points(points: torch.Tensor, features: torch.Tensor, rig: CameraRig, width: int, height: int, *,
                 under: Layer, supersample: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Splat B point sets ``points`` [B, P, 3] with ``features`` [P, C] into every view of ``rig`` over
    ``under``. Returns features [B, V, H, W, C] and cover [B, V, H, W] (1 where a point is nearest). With
    ``supersample`` s, ``under`` is at s times width x height, the points are splatted at that size, and the
    s x s blocks are averaged (the cover becomes the share of a pixel that points or ``under`` cover)."""
    s = supersample
    if s < 1 or tuple(under.depth.shape[-2:]) != (height * s, width * s):
        raise ValueError(f"the layer under the splats must be {width * s}x{height * s} ({s}x supersampling of "
                         f"{width}x{height}), got {under.depth.shape[-1]}x{under.depth.shape[-2]}")
    if s > 1:
        image, cover = splat_points(points, features, rig, width * s, height * s, under=under)
        B, V, C = image.shape[0], image.shape[1], image.shape[-1]
        image = Fn.avg_pool2d(image.movedim(-1, 2).reshape(B * V, C, height * s, width * s), s)
        cover = Fn.avg_pool2d(cover.reshape(B * V, 1, height * s, width * s), s)
        return image.reshape(B, V, C, height, width).movedim(2, -1), cover.reshape(B, V, height, width)
    B, P, _ = points.shape
    V = rig.num_views
    u, v, z = project(points, rig, width, height)
    x0, y0 = torch.floor(u - 0.5).long(), torch.floor(v - 0.5).long()  # the 2x2 pixel centres around (u, v)
    image = torch.arange(B * V, device=points.device).reshape(B, V, 1) * (height * width)
    pix, dep, pid = [], [], []
    point_ids = torch.arange(P, device=points.device).expand(B, V, P)
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = x0 + dx, y0 + dy
            ok = (x >= 0) & (x < width) & (y >= 0) & (y < height) & (z > NEAR_PLANE)
            pix.append((image + y * width + x)[ok])
            dep.append(z[ok])
            pid.append(point_ids[ok])
    pix, dep, pid = torch.cat(pix), torch.cat(dep), torch.cat(pid)
    base_depth = under.depth.reshape(1, V * height * width).expand(B, -1).reshape(-1)
    zbuf = base_depth.clone().scatter_reduce(0, pix, dep, "amin")
    front = dep <= zbuf.index_select(0, pix)
    C = features.shape[-1]
    out = under.features.reshape(1, V * height * width, C).expand(B, -1, -1).reshape(-1, C).clone()
    out[pix[front]] = features[pid[front]].to(out.dtype)
    cover = under.cover.reshape(1, -1).expand(B, -1).reshape(-1).clone()
    cover[pix[front]] = 1.0
    return out.reshape(B, V, height, width, C), cover.reshape(B, V, height, width)
