"""What the lifted Gaussians are fitted to.

- ``VideoGuidance``: a given multi-view video (``MultiViewVideo``): an RGB loss at a working resolution, or a
  latent loss when the video carries the model's latents.
- ``SDSGuidance``: score distillation with a multi-view video diffusion model, seen through the small
  ``NoisePredictor`` interface (classifier-free guidance, annealed timestep range, weight 1 - alpha_bar).

Both take renders laid out [F, V, H, W, C] (frames, views) and return a scalar loss, or None when the step
must be skipped (non-finite guidance).
"""
from __future__ import annotations

import logging
from typing import Optional, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as Fn

from ..errors import InputError
from ..types import CameraRig, MultiViewVideo

log = logging.getLogger("atop")

COVERAGE_THRESHOLD = 0.05  # a pixel further than this from the background colour shows the object


def check_rig_matches(video_rig: CameraRig, rig: CameraRig, atol: float = 1e-4) -> None:
    """InputError unless the video was made with the same cameras (pose and field of view; any size)."""
    problems = []
    if video_rig.num_views != rig.num_views:
        problems.append(f"{video_rig.num_views} views in the video, {rig.num_views} cameras")
    elif not np.allclose(video_rig.c2w, rig.c2w, atol=atol):
        worst = float(np.abs(np.asarray(video_rig.c2w) - np.asarray(rig.c2w)).max())
        problems.append(f"camera poses differ (largest matrix difference {worst:.3g})")
    if abs(video_rig.fov_deg - rig.fov_deg) > 1e-3:
        problems.append(f"field of view {video_rig.fov_deg:g} vs {rig.fov_deg:g} degrees")
    if abs(video_rig.width / video_rig.height - rig.width / rig.height) > 1e-6:
        problems.append("aspect ratios differ")
    if problems:
        raise InputError("the video's cameras do not match the cameras given for lifting: " + "; ".join(problems)
                         + "; pass the cameras the video was rendered or sampled with")


def _corner_background(images: torch.Tensor) -> torch.Tensor:  # [..., H, W, C] -> [C]
    """Median of the four corner pixels over all images: the background colour of a centred object."""
    corners = torch.stack([images[..., 0, 0, :], images[..., 0, -1, :], images[..., -1, 0, :],
                           images[..., -1, -1, :]], 0)
    return corners.reshape(-1, images.shape[-1]).median(0).values


class VideoGuidance:
    """Fit renders to a given multi-view video, every frame and view (frame 0 fits the appearance)."""

    supports_frame_subsets = True

    def __init__(self, video: MultiViewVideo, rig: CameraRig, *, target: str = "auto", resolution: int = 64,
                 silhouette_weight: float = 10.0, device=None, dtype=torch.float32):
        check_rig_matches(video.rig, rig)
        if target not in ("auto", "rgb", "latent"):
            raise InputError(f"video guidance target must be auto, rgb or latent, got {target!r}")
        if target == "auto":
            target = "latent" if video.latents is not None else "rgb"
        if target == "latent" and video.latents is None:
            raise InputError("latent video guidance needs a video that carries latents; this one has only "
                             "frames: use target 'rgb'")
        self.target, self.num_frames, self.num_views = target, video.num_frames, video.num_views
        if target == "latent":
            lat = torch.as_tensor(np.asarray(video.latents), dtype=dtype, device=device)  # [V, F, 4, h, w]
            self.frames = lat.permute(1, 0, 3, 4, 2).contiguous()  # [F, V, h, w, 4]
            self.coverage = None
        else:
            if resolution < 8:
                raise InputError(f"the working resolution must be at least 8 pixels, got {resolution}")
            rgb = torch.as_tensor(np.asarray(video.frames), dtype=dtype, device=device)  # [V, F, H, W, 3]
            V, F, H, W, _ = rgb.shape
            h, w = resolution, max(1, round(resolution * W / H))
            x = rgb.reshape(V * F, H, W, 3).permute(0, 3, 1, 2)
            # object coverage: pixels that differ from the background colour, at the video's own resolution
            bg = _corner_background(rgb)
            cov = ((rgb - bg).abs().amax(-1) > COVERAGE_THRESHOLD).to(dtype).reshape(V * F, 1, H, W)
            x = Fn.interpolate(x, size=(h, w), mode="area") if (h, w) != (H, W) else x
            cov = Fn.interpolate(cov, size=(h, w), mode="area") if (h, w) != (H, W) else cov
            self.frames = x.permute(0, 2, 3, 1).reshape(V, F, h, w, 3).transpose(0, 1).contiguous()
            self.coverage = cov.reshape(V, F, h, w).transpose(0, 1).contiguous()  # [F, V, h, w]
        self.height, self.width, self.feature_dim = self.frames.shape[2], self.frames.shape[3], self.frames.shape[4]
        self.background = _corner_background(self.frames)  # [C]
        self.silhouette_weight = float(silhouette_weight) if target == "rgb" else 0.0
        # half-resolution copy (area average) for coarse steps: cheaper, and a wider basin for the motion
        self.num_levels = 2 if min(self.height, self.width) >= 48 else 1
        self._coarse = None
        if self.num_levels > 1:
            half = lambda x: Fn.avg_pool2d(x, 2, ceil_mode=True)  # noqa: E731  [B, C, H, W]
            Fr, V, h, w, C = self.frames.shape
            fr = half(self.frames.reshape(Fr * V, h, w, C).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            cov = None if self.coverage is None else half(self.coverage.reshape(Fr * V, 1, h, w))
            self._coarse = (fr.reshape(Fr, V, *fr.shape[1:]).contiguous(),
                            None if cov is None else cov.reshape(Fr, V, *cov.shape[2:]).contiguous())

    def size(self, level: int = 0) -> tuple[int, int]:
        """(width, height) of the renders compared at ``level`` (0: working resolution, 1: half)."""
        if level == 0 or self._coarse is None:
            return self.width, self.height
        return self._coarse[0].shape[3], self._coarse[0].shape[2]

    def targets(self, level: int = 0) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The video at ``level``: frames [F, V, H, W, C] and object coverage [F, V, H, W] (RGB only)."""
        return (self.frames, self.coverage) if level == 0 or self._coarse is None else self._coarse

    def loss(self, render: torch.Tensor, step: int, total: int, frames: Optional[Sequence[int]] = None,
             alpha: Optional[torch.Tensor] = None, level: int = 0) -> Optional[torch.Tensor]:
        """Mean squared error over the given frames ([F', V, H, W, C] renders of ``frames``), plus (RGB
        target, ``alpha`` [F', V, H, W] given) ``silhouette_weight`` x the squared error between the rendered
        opacity and the video's object coverage. The silhouette does not depend on shading, which a
        Gaussian's single colour cannot follow as a part turns (the video's lighting is view dependent)."""
        sel = slice(None) if frames is None else list(frames)
        target, coverage = self.targets(level)
        loss = ((render - target[sel]) ** 2).mean()
        if alpha is not None and coverage is not None and self.silhouette_weight > 0:
            loss = loss + self.silhouette_weight * ((alpha - coverage[sel]) ** 2).mean()
        return loss

    def preview(self, render: torch.Tensor, frames: Optional[Sequence[int]] = None) -> np.ndarray:
        """[F', 2H, V*W, 3]: each render above its target frame."""
        target = self.frames if frames is None else self.frames[list(frames)]
        both = torch.cat([render, target.to(render)], dim=2)  # [F', V, 2H, W, C]
        return _tile_views(both, self.target)


class NoisePredictor(Protocol):
    """What score distillation needs from a multi-view video diffusion model (conditioning already bound).

    ``__call__(noisy, t)`` takes noisy latents [F, V, 4, h, w] and an integer timestep and returns the
    (unconditional, conditional) noise predictions, each [F, V, 4, h, w]."""

    alphas_cumprod: torch.Tensor  # [T]
    latent_size: int
    num_frames: int
    num_views: int

    def __call__(self, noisy: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]: ...


def annealed_range(step: int, total: int, t_start: float, t_min: float, t_max: float) -> tuple[float, float]:
    """Timestep fractions (low, high) at ``step``: both start at ``t_start`` and move linearly to
    (``t_min``, ``t_max``) over the run (threestudio's min/max_step_percent schedules)."""
    s = min(max(step / max(total - 1, 1), 0.0), 1.0)
    lo = t_start + (t_min - t_start) * s
    hi = t_start + (t_max - t_start) * s
    return min(lo, hi), max(lo, hi)


class SDSGuidance:
    """Score distillation: grad = (1 - alpha_bar_t) * (eps_cfg - noise) on the rendered latents."""

    supports_frame_subsets = False  # the model denoises all frames jointly
    target = "latent"
    feature_dim = 4

    def __init__(self, predictor: NoisePredictor, *, guidance_scale: float = 5.0, t_min: float = 0.02,
                 t_max: float = 0.50, t_start: float = 0.98, seed: int = 0, background: Optional[torch.Tensor] = None):
        if not 0.0 <= t_min <= t_max <= 1.0 or not 0.0 <= t_start <= 1.0:
            raise InputError(f"timestep fractions must satisfy 0 <= t_min <= t_max <= 1 and 0 <= t_start <= 1, got "
                             f"t_min={t_min}, t_max={t_max}, t_start={t_start}")
        self.predictor = predictor
        self.guidance_scale, self.t_min, self.t_max, self.t_start = guidance_scale, t_min, t_max, t_start
        self.num_frames, self.num_views = predictor.num_frames, predictor.num_views
        self.height = self.width = predictor.latent_size
        self.generator = torch.Generator().manual_seed(seed)
        self.background = torch.zeros(4) if background is None else background
        self.last_timestep = -1

    def sample_timestep(self, step: int, total: int) -> int:
        T = int(self.predictor.alphas_cumprod.shape[0])
        lo, hi = annealed_range(step, total, self.t_start, self.t_min, self.t_max)
        a, b = max(int(lo * T), 1), max(min(int(hi * T), T - 1), 1)
        return int(torch.randint(a, b + 1, (1,), generator=self.generator).item())

    num_levels = 1

    def size(self, level: int = 0) -> tuple[int, int]:
        return self.width, self.height

    def loss(self, render: torch.Tensor, step: int, total: int, frames: Optional[Sequence[int]] = None,
             alpha: Optional[torch.Tensor] = None, level: int = 0) -> Optional[torch.Tensor]:
        if frames is not None and list(frames) != list(range(self.num_frames)):
            raise ValueError("score distillation needs every frame in each step")
        z = render.permute(0, 1, 4, 2, 3)  # [F, V, 4, h, w]
        t = self.sample_timestep(step, total)
        self.last_timestep = t
        ab = self.predictor.alphas_cumprod[t].to(z)
        with torch.no_grad():
            noise = torch.randn(z.shape, generator=self.generator).to(z)
            noisy = ab.sqrt() * z + (1 - ab).sqrt() * noise
            eps_u, eps_c = self.predictor(noisy.detach(), t)
            eps = eps_u + self.guidance_scale * (eps_c - eps_u)
            grad = (1 - ab) * (eps.to(z) - noise)
        if not torch.isfinite(grad).all():
            return None
        # d(loss)/dz = grad / F: the usual SDS surrogate 0.5 * ||z - sg(z - grad)||^2, per frame
        return 0.5 * ((z - (z - grad).detach()) ** 2).sum() / z.shape[0]

    def preview(self, render: torch.Tensor, frames: Optional[Sequence[int]] = None) -> np.ndarray:
        return _tile_views(render, "latent")  # [F', H, V*W, 3]


def _tile_views(x: torch.Tensor, target: str) -> np.ndarray:
    """[F, V, H, W, C] -> [F, H, V*W, 3] float32 0..1. Latents are shown as false colour (channels 0-2
    mapped from -1..1), not decoded."""
    x = x.detach().float().cpu()
    F, V, H, W, C = x.shape
    img = x[..., :3] if target == "rgb" else (x[..., :3] + 1.0) / 2.0
    img = img.permute(0, 2, 1, 3, 4).reshape(F, H, V * W, img.shape[-1])
    return img.clamp(0, 1).numpy().astype(np.float32)



class ModelNoisePredictor:
    """``NoisePredictor`` over a loaded inflated ImageDream (``diffusion.bundle.MVModel``), conditioned on a
    prompt, the rest-state views (CLIP image tokens per view), the first-frame part masks and the cameras, and
    in ImageDream's pixel mode (``model.reference_view == "pixel"``) the latent of the rest-state view 0 as a
    reference view. The unconditional branch uses the negative prompt, zero image tokens and a zero reference
    latent (same masks and cameras)."""

    def __init__(self, model, rig: CameraRig, prompt: str, rest_images: np.ndarray, part_masks: Optional[np.ndarray],
                 num_frames: int, negative_prompt: str = ""):
        from ..diffusion.encoders import encode_image_tokens, encode_text

        if not any(".motion." in k for k, _ in model.unet.named_parameters()):
            raise InputError("score distillation needs a model with a motion module; load the model with a "
                             "motion module attached")
        self.model, self.num_frames, self.num_views = model, num_frames, rig.num_views
        self.latent_size = model.latent_size
        self.device, self.dtype = model.device, model.dtype
        self.alphas_cumprod = self._alphas(model)
        text = encode_text(model.text_encoder, model.tokenizer, [prompt, negative_prompt]).to(self.dtype)
        self.text_cond, self.text_uncond = text[:1], text[1:]  # [1, T, D]
        tokens = encode_image_tokens(model.image_encoder, model.image_processor, rest_images).to(self.dtype)
        self.image_cond, self.image_uncond = tokens, torch.zeros_like(tokens)  # [V, T', D']
        self.camera = torch.as_tensor(rig.model_camera_vectors(), dtype=self.dtype, device=self.device)  # [V, 16]
        self.mask = None if part_masks is None else torch.as_tensor(
            np.asarray(part_masks, np.float32), device=self.device)[None]  # [1, V, H, W]
        self.reference = None
        if getattr(model, "reference_view", "none") == "pixel":
            from ..diffusion.sampler import rest_latents

            ref = rest_latents(model, np.asarray(rest_images)[:1]).to(self.device, self.dtype)  # [1, 4, h, w]
            self.reference = torch.cat([torch.zeros_like(ref), ref])

    @staticmethod
    def _alphas(model) -> torch.Tensor:
        from ..diffusion.schedule import alphas_cumprod

        return alphas_cumprod(model.scheduler_config)

    @torch.no_grad()
    def __call__(self, noisy: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        F, V = noisy.shape[:2]
        x = noisy.reshape(F * V, *noisy.shape[2:]).to(self.device, self.dtype)  # (frame, view), views innermost
        x = torch.cat([x, x])  # [uncond, cond] as a batch of 2
        context = torch.cat([self.text_uncond, self.text_cond])  # [2, T, D]
        images = torch.cat([self.image_uncond, self.image_cond])  # [2V, T', D']
        mask = None if self.mask is None else self.mask.expand(2, -1, -1, -1)
        kw = dict(num_views=V, num_frames=F, mask=mask)
        if self.reference is None:
            eps = self.model.unet(x, t, context, self.camera, image_tokens=images, **kw)
        else:
            eps = self.model.unet.forward_with_reference_view(x, t, context, self.camera, images, self.reference, **kw)
        eps = eps.float().reshape(2, F, V, *noisy.shape[2:]).to(noisy.device)
        return eps[0], eps[1]
