"""Differentiable 3D Gaussian rasterisation of N-channel features (RGB or 4-channel latents).

Two backends with one set of rules (those of gsplat's "classic" mode):
- ``gsplat``: gsplat's CUDA ``rasterization``, imported lazily (CUDA devices only);
- ``torch``: a pure-torch rasteriser for the CPU and as the fallback when gsplat cannot build.

Rules shared by both: EWA projection of each 3D covariance with a pinhole camera, plus ``eps2d`` pixels^2 on
the 2D covariance diagonal (screen-space blur); pixel centres at (i + 0.5, j + 0.5); per pixel, Gaussians in
front-to-back depth order with alpha = min(0.999, opacity * exp(-0.5 * d^T conic d)); contributions below
1/255 are skipped and compositing stops before transmittance falls to 1e-4; the background fills the rest.

Gaussian parameters: ``means`` [B, N, 3] (B scenes, e.g. frames, each seen by every camera of the rig),
``quats`` [B, N, 4] (w, x, y, z; normalised here), ``log_scales`` [N, 3] or [B, N, 3], ``opacity_logits``
[N] or [B, N], ``features`` [N, C] or [B, N, C]. Cameras: a ``CameraRig`` (OpenGL c2w, vertical fov); the
image size is chosen per call, so one rig renders 32x32 latents and 256x256 RGB alike.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..errors import InputError
from ..types import CameraRig

log = logging.getLogger("atop")

BACKENDS = ("auto", "gsplat", "torch")
ALPHA_MIN = 1.0 / 255.0  # contributions below this are skipped
ALPHA_MAX = 0.999
T_MIN = 1e-4  # compositing stops before transmittance falls to this
EPS2D = 0.3  # pixels^2 added to the projected covariance
NEAR_PLANE = 0.01
# OpenGL camera axes (+y up, looking along -z) -> OpenCV axes (+y down, looking along +z)
_GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class GaussianRender:
    features: torch.Tensor  # [B, V, H, W, C]
    alpha: torch.Tensor  # [B, V, H, W] accumulated opacity
    backend: str  # "torch" | "gsplat"
    info: str  # how the backend was chosen, for logs and node outputs


def camera_matrices(rig: CameraRig, width: int, height: int, *, device=None,
                    dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera matrices in OpenCV axes [V, 4, 4] and pixel intrinsics [V, 3, 3] at width x height.

    The focal length follows the rig's vertical field of view, so any resolution sees the same frustum
    (for the rig's aspect ratio)."""
    c2w_cv = np.asarray(rig.c2w, dtype=np.float64) @ _GL_TO_CV  # [V, 4, 4]
    viewmats = np.linalg.inv(c2w_cv)
    f = 0.5 * height / math.tan(math.radians(rig.fov_deg) / 2)
    K = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    Ks = np.repeat(K[None], rig.num_views, axis=0)
    return (torch.as_tensor(viewmats, dtype=dtype, device=device),
            torch.as_tensor(Ks, dtype=dtype, device=device))


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:  # [..., 4] (w, x, y, z) -> [..., 3, 3]
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def rasterize_gaussians(
    means: torch.Tensor, quats: torch.Tensor, log_scales: torch.Tensor, opacity_logits: torch.Tensor,
    features: torch.Tensor, rig: CameraRig, width: int, height: int, *,
    background: Optional[torch.Tensor] = None, backend: str = "auto", eps2d: float = EPS2D,
) -> GaussianRender:
    """Render B scenes of N Gaussians in every view of ``rig`` at width x height; differentiable in all
    Gaussian parameters and the background. ``background``: [C] (default zeros)."""
    if means.dim() == 2:
        means = means[None]
    B, N, _ = means.shape
    quats = quats.expand(B, N, 4) if quats.dim() == 3 else quats[None].expand(B, N, 4)
    log_scales = log_scales.expand(B, N, 3) if log_scales.dim() == 3 else log_scales[None].expand(B, N, 3)
    opacity_logits = (opacity_logits if opacity_logits.dim() == 2 else opacity_logits[None]).expand(B, N)
    C = features.shape[-1]
    features = (features if features.dim() == 3 else features[None]).expand(B, N, C)
    if background is None:
        background = torch.zeros(C, dtype=means.dtype, device=means.device)
    if width < 1 or height < 1:
        raise InputError(f"render size must be positive, got {width}x{height}")
    name, info = select_backend(backend, means.device)
    viewmats, Ks = camera_matrices(rig, width, height, device=means.device, dtype=means.dtype)
    fn = _render_gsplat if name == "gsplat" else _render_torch
    out, alpha = fn(means, quats, log_scales.exp(), torch.sigmoid(opacity_logits), features, viewmats, Ks,
                    width, height, background, eps2d)
    return GaussianRender(features=out, alpha=alpha, backend=name, info=info)


# --- backend choice ---------------------------------------------------------------------------------------
_GSPLAT_STATUS: dict[str, Optional[str]] = {}  # device string -> None (works) or the reason it does not


def gsplat_unavailable_reason(device: torch.device) -> Optional[str]:
    """None when gsplat imports and renders a smoke scene on ``device``; otherwise why not (cached)."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"gsplat needs a CUDA device, the tensors are on {device}"
    key = str(device)
    if key not in _GSPLAT_STATUS:
        try:
            import gsplat  # noqa: F401  (lazy: building its CUDA code can take minutes the first time)

            m = torch.zeros(1, 1, 3, device=device)
            m[..., 2] = 2.0
            q = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]], device=device)
            rig_v = torch.eye(4, device=device)[None]
            K = torch.tensor([[[8.0, 0, 4], [0, 8.0, 4], [0, 0, 1]]], device=device)
            _render_gsplat(m, q, torch.full((1, 1, 3), 0.1, device=device), torch.ones(1, 1, device=device),
                           torch.ones(1, 1, 3, device=device), rig_v, K, 8, 8, torch.zeros(3, device=device),
                           EPS2D)
            _GSPLAT_STATUS[key] = None
        except Exception as exc:  # any import/build/runtime failure means: use the torch rasteriser
            _GSPLAT_STATUS[key] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return _GSPLAT_STATUS[key]


def select_backend(backend: str, device) -> tuple[str, str]:
    """(backend name, info sentence). "auto" prefers gsplat on CUDA and reports any fallback."""
    if backend not in BACKENDS:
        raise InputError(f"unknown rasteriser backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return "torch", "torch rasteriser (requested)"
    reason = gsplat_unavailable_reason(device)
    if backend == "gsplat":
        if reason is not None:
            raise InputError(f"the gsplat rasteriser is unavailable ({reason}); choose backend 'torch' or "
                             "'auto', or run on a CUDA device with gsplat installed")
        return "gsplat", "gsplat rasteriser (requested)"
    if reason is None:
        return "gsplat", "gsplat rasteriser (auto: CUDA device, gsplat works)"
    info = f"torch rasteriser (auto: {reason})"
    log.info("Gaussian rasteriser: %s", info)
    return "torch", info


# --- gsplat ---------------------------------------------------------------------------------------------
def _render_gsplat(means, quats, scales, opacities, features, viewmats, Ks, width, height, background, eps2d):
    from gsplat import rasterization

    colors, alphas = [], []
    V = viewmats.shape[0]
    for b in range(means.shape[0]):
        col, alp, _ = rasterization(
            means[b], quats[b], scales[b], opacities[b], features[b], viewmats, Ks, width, height,
            near_plane=NEAR_PLANE, eps2d=eps2d, packed=False, rasterize_mode="classic",
            backgrounds=background[None].expand(V, -1).contiguous(),
        )
        colors.append(col)  # [V, H, W, C]
        alphas.append(alp[..., 0])  # [V, H, W]
    return torch.stack(colors), torch.stack(alphas)


# --- torch ----------------------------------------------------------------------------------------------
def _project(means, quats, scales, viewmats, Ks, width, height, eps2d):
    """EWA projection. Returns means2d [B, V, N, 2], conics (a, b, c) [B, V, N, 3], cov2d diagonal
    [B, V, N, 2], depth [B, V, N], valid [B, V, N]."""
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]  # [V, 3, 3], [V, 3]
    cam = torch.einsum("vij,bnj->bvni", R, means) + t[None, :, None]  # [B, V, N, 3]
    x, y, z = cam.unbind(-1)
    zs = z.clamp_min(NEAR_PLANE)  # keeps culled Gaussians finite
    fx, fy = Ks[:, 0, 0][None, :, None], Ks[:, 1, 1][None, :, None]  # [1, V, 1]
    cx, cy = Ks[:, 0, 2][None, :, None], Ks[:, 1, 2][None, :, None]
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)
    # The Jacobian uses directions clamped a little beyond the frustum (as gsplat does), which keeps
    # Gaussians far outside the image from getting huge footprints.
    lim_x = 1.3 * (0.5 * width) / fx
    lim_y = 1.3 * (0.5 * height) / fy
    tx = torch.maximum(torch.minimum(x / zs, lim_x), -lim_x)
    ty = torch.maximum(torch.minimum(y / zs, lim_y), -lim_y)
    zero = torch.zeros_like(zs)
    J = torch.stack([fx / zs, zero, -fx * tx / zs, zero, fy / zs, -fy * ty / zs], -1).reshape(*zs.shape, 2, 3)
    Rg = quat_to_rotmat(quats)  # [B, N, 3, 3]
    M = Rg * scales[..., None, :]  # R S
    cov3 = M @ M.transpose(-1, -2)  # [B, N, 3, 3] world covariance
    cov_cam = torch.einsum("vij,bnjk,vlk->bvnil", R, cov3, R)  # [B, V, N, 3, 3]
    cov2 = J @ cov_cam @ J.transpose(-1, -2)  # [B, V, N, 2, 2]
    a = cov2[..., 0, 0] + eps2d
    b = cov2[..., 0, 1]
    c = cov2[..., 1, 1] + eps2d
    det = a * c - b * b
    valid = (z > NEAR_PLANE) & (det > 0)
    det = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)
    return means2d, conics, torch.stack([a, c], -1), z, valid


def _render_torch(means, quats, scales, opacities, features, viewmats, Ks, width, height, background, eps2d):
    B, N, C = features.shape
    V = viewmats.shape[0]
    H, W = height, width
    means2d, conics, cov_diag, depth, valid = _project(means, quats, scales, viewmats, Ks, W, H, eps2d)
    S = B * V  # one "camera" per (scene, view)
    means2d, conics = means2d.reshape(S, N, 2), conics.reshape(S, N, 3)
    op = opacities[:, None].expand(B, V, N).reshape(S, N)
    m2d_flat, con_flat, op_flat = means2d.reshape(-1, 2), conics.reshape(-1, 3), op.reshape(-1)

    with torch.no_grad():
        # Where opacity * exp(-m^2 / 2) drops below 1/255 (Mahalanobis radius m), the Gaussian is skipped;
        # the ellipse's bounding box at that radius bounds the pixels it can touch.
        m2 = 2.0 * torch.log((op * 255.0).clamp_min(1.0))
        keep = valid.reshape(S, N) & (m2 > 0)
        ext = (m2[..., None] * cov_diag.reshape(S, N, 2)).sqrt()  # [S, N, 2] half-extent in pixels
        lo = torch.ceil(means2d - ext - 0.5)
        hi = torch.floor(means2d + ext - 0.5)
        lo[..., 0].clamp_(min=0)
        lo[..., 1].clamp_(min=0)
        hi[..., 0].clamp_(max=W - 1)
        hi[..., 1].clamp_(max=H - 1)
        size = (hi - lo + 1).clamp_min(0)
        size = torch.where(keep[..., None] & torch.isfinite(size), size, torch.zeros_like(size)).long()
        counts = (size[..., 0] * size[..., 1]).reshape(-1)  # [S*N]
        gid = torch.repeat_interleave(torch.arange(S * N, device=means.device), counts)  # pair -> (s, n)
        start = torch.cumsum(counts, 0) - counts
        local = torch.arange(gid.numel(), device=means.device) - start.index_select(0, gid)
        bw = size[..., 0].reshape(-1).clamp_min(1).index_select(0, gid)
        lo_l = lo.long()
        px = lo_l[..., 0].reshape(-1).index_select(0, gid) + local % bw
        py = lo_l[..., 1].reshape(-1).index_select(0, gid) + local // bw
        s_idx = gid // N
        pix = s_idx * (H * W) + py * W + px  # global pixel id

        # which pairs survive the 1/255 cut (computed without autograd), then front-to-back order
        centres = torch.stack([px, py], -1).to(means2d.dtype) + 0.5  # [P, 2]
        alpha0, power0 = _pair_alpha(m2d_flat, con_flat, op_flat, gid, centres)
        idx = torch.nonzero((alpha0 >= ALPHA_MIN) & (power0 >= 0)).squeeze(1)
        rank = torch.empty((S, N), dtype=torch.long, device=means.device)
        order_d = torch.argsort(depth.reshape(S, N), dim=1)
        rank.scatter_(1, order_d, torch.arange(N, device=means.device).expand(S, N).contiguous())
        key = pix.index_select(0, idx) * N + rank.reshape(-1).index_select(0, gid.index_select(0, idx))
        idx = idx.index_select(0, torch.argsort(key))
        pix_s, gid_s, centres_s = pix.index_select(0, idx), gid.index_select(0, idx), centres.index_select(0, idx)
    alpha_s, _ = _pair_alpha(m2d_flat, con_flat, op_flat, gid_s, centres_s)  # [P'] with autograd
    # transmittance in front of each pair: exclusive product of (1 - alpha) within its pixel, computed as a
    # segmented cumulative sum of logs (float64: the running sum spans every pixel)
    log1m = torch.log1p(-alpha_s).double()
    incl = torch.cumsum(log1m, 0)
    excl = incl - log1m
    with torch.no_grad():
        _, seg_counts = torch.unique_consecutive(pix_s, return_counts=True)
        seg_start = torch.cumsum(seg_counts, 0) - seg_counts
        seg_of = torch.repeat_interleave(torch.arange(seg_counts.numel(), device=means.device), seg_counts)
    T = torch.exp(excl - excl[seg_start][seg_of]).to(alpha_s.dtype)
    with torch.no_grad():
        live = (T * (1.0 - alpha_s)) > T_MIN  # compositing stops before T falls to T_MIN
    weight = torch.where(live, alpha_s * T, torch.zeros_like(T))  # [P']

    feats = features[:, None].expand(B, V, N, C).reshape(S * N, C).index_select(0, gid_s)  # [P', C]
    out = torch.zeros(S * H * W, C, dtype=features.dtype, device=features.device)
    out = out.index_add(0, pix_s, weight[:, None] * feats)
    acc = torch.zeros(S * H * W, dtype=weight.dtype, device=weight.device).index_add(0, pix_s, weight)
    out = out + (1.0 - acc)[:, None] * background.to(out.dtype)
    return out.reshape(B, V, H, W, C), acc.reshape(B, V, H, W)


def _pair_alpha(means2d, conics, opacities, gid, centres):
    """alpha [P] and Mahalanobis power [P] of Gaussian ``gid`` at pixel centres [P, 2]."""
    d = means2d.index_select(0, gid) - centres
    con = conics.index_select(0, gid)
    power = 0.5 * (con[:, 0] * d[:, 0] ** 2 + con[:, 2] * d[:, 1] ** 2) + con[:, 1] * d[:, 0] * d[:, 1]
    alpha = (opacities.index_select(0, gid) * torch.exp(-power)).clamp_max(ALPHA_MAX)
    return alpha, power
