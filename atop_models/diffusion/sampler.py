"""Sampling multi-view motion from the inflated ImageDream: DDIM with classifier-free guidance.

Conditioning (``encode_conditioning``): text tokens of the prompt and of the negative prompt, per-view CLIP
image tokens of the rest-state views (zeros for the unconditional branch, which still pass through the
resampler inside the UNet), the ImageDream camera vectors and the first-frame part masks; in ImageDream's
pixel mode also the VAE latent of the image prompt (view 0), given as a reference view to every frame (zeros
for the unconditional branch). RGBA views are composited on grey before the VAE and CLIP. The guidance batch
is ordered [unconditional, conditional]; each half holds F frames x V views (views innermost).

Frame 0: with ``first_frame="input"`` (the paper variant's default) its latents are replaced at every step by
the rest-state latents noised to the current level, so the sampled motion starts from the given views; with
``"generate"`` (the release variant's default) every frame is sampled from noise and the rest state enters
through the CLIP tokens only. ``"auto"`` picks the motion variant's default."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..errors import InputError
from ..progress import OnStep, no_progress
from ..types import CameraRig, MultiViewVideo
from .encoders import composite_rgba, encode_image_tokens, encode_text, vae_decode, vae_encode

log = logging.getLogger("atop")

FIRST_FRAME_CHOICES = ("auto", "input", "generate")


@dataclass
class MotionConditioning:
    """Encoded conditions for one object (batch 1). Index 0 of the guidance axis is unconditional."""

    context: torch.Tensor  # [2, 77, Dc] text tokens (negative/empty, prompt)
    image_tokens: torch.Tensor  # [2*V, T, De] CLIP tokens (zeros, rest-state views)
    camera: torch.Tensor  # [V, 16]
    mask: Optional[torch.Tensor]  # [2*V, 1, H, W] first-frame part masks (same in both halves)
    first_latents: Optional[torch.Tensor]  # [V, 4, h, w] scaled VAE latents of the rest-state views
    reference_latent: Optional[torch.Tensor] = None  # [1, 4, h, w] image prompt's latent (pixel mode only)
    prompt: str = ""
    negative_prompt: str = ""

    @property
    def num_views(self) -> int:
        return int(self.camera.shape[0])


def _views_array(views) -> np.ndarray:  # [V, H, W, 3|4] float32 0..1
    arr = views.detach().cpu().float().numpy() if isinstance(views, torch.Tensor) else np.asarray(views, np.float32)
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise InputError(f"views must be images [V, H, W, 3], got shape {list(arr.shape)}")
    return arr


def camera_vectors(cameras) -> np.ndarray:  # [V, 16]
    if isinstance(cameras, CameraRig):
        return cameras.model_camera_vectors()
    arr = np.asarray(cameras, np.float64)
    if arr.ndim == 3 and arr.shape[1:] == (4, 4):
        from ..geometry.cameras import imagedream_camera_vector

        return imagedream_camera_vector(arr)
    if arr.ndim != 2 or arr.shape[1] != 16:
        raise InputError(f"cameras must be a camera rig, [V, 4, 4] matrices or [V, 16] vectors; got {list(arr.shape)}")
    return arr


@torch.no_grad()
def encode_conditioning(model, views, prompt: str, cameras, masks=None, negative_prompt: str = "",
                        encode_first_frame: bool = True, generator: Optional[torch.Generator] = None
                        ) -> MotionConditioning:
    """Encodes the rest-state ``views`` [V, H, W, 3] (0..1), ``cameras`` (rig, [V, 4, 4] or [V, 16]), the
    first-frame part ``masks`` [V, H, W] (optional) and the prompts for :func:`sample_motion`."""
    arr = _views_array(views)
    v = arr.shape[0]
    cams = camera_vectors(cameras)
    problems = []
    if cams.shape[0] != v:
        problems.append(f"{cams.shape[0]} cameras")
    if masks is not None and np.shape(masks)[0] != v:
        problems.append(f"{np.shape(masks)[0]} masks")
    if problems:
        raise InputError(f"{v} views but {' and '.join(problems)}; give one camera and one mask per view")
    device, dtype = model.device, model.dtype
    context = encode_text(model.text_encoder, model.tokenizer, [negative_prompt or "", prompt]).to(dtype)
    tokens = encode_image_tokens(model.image_encoder, model.image_processor, arr).to(dtype)  # [V, T, De]
    image_tokens = torch.cat([torch.zeros_like(tokens), tokens])
    mask_t = None
    if masks is not None:
        m = masks.detach().float() if isinstance(masks, torch.Tensor) else torch.as_tensor(np.asarray(masks, np.float32))
        if m.ndim != 3:
            raise InputError(f"masks must be [V, H, W], got shape {list(m.shape)}")
        mask_t = m[:, None].to(device, dtype).repeat(2, 1, 1, 1)
    pixel = getattr(model, "reference_view", "none") == "pixel"
    first = reference = None
    if encode_first_frame or pixel:
        latents = rest_latents(model, arr if encode_first_frame else arr[:1], generator)
        first = latents if encode_first_frame else None
        reference = latents[:1] if pixel else None
    return MotionConditioning(context=context, image_tokens=image_tokens,
                              camera=torch.as_tensor(cams, dtype=torch.float32).to(device, dtype), mask=mask_t,
                              first_latents=first, reference_latent=reference, prompt=prompt,
                              negative_prompt=negative_prompt)


def rest_latents(model, views: np.ndarray, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Scaled VAE latents (posterior mean) of rest-state views [V, H, W, 3|4] (0..1; RGBA composited on grey),
    resized to the model's image size: [V, 4, h, w] float32."""
    size = model.image_size
    rgb = torch.from_numpy(np.ascontiguousarray(composite_rgba(views))).permute(0, 3, 1, 2)
    if rgb.shape[-2:] != (size, size):
        rgb = torch.nn.functional.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
    return vae_encode(model.vae, rgb.clamp(0, 1), generator=generator, sample=False).float()


def _guided_eps(unet, x: torch.Tensor, t: torch.Tensor, cond: MotionConditioning, frames: int,
                guidance_scale: float) -> torch.Tensor:
    """Noise prediction for latents x [F*V, 4, h, w] with classifier-free guidance."""
    v = cond.num_views
    ref = cond.reference_latent

    def predict(x, context, tokens, mask, reference):
        kw = dict(num_views=v, num_frames=frames, mask=mask)
        if reference is None:
            return unet(x, t, context, cond.camera, image_tokens=tokens, **kw)
        return unet.forward_with_reference_view(x, t, context, cond.camera, tokens, reference.to(x), **kw)

    if guidance_scale == 1.0:  # the unconditional half does not change the result
        return predict(x, cond.context[1:], cond.image_tokens[v:], None if cond.mask is None else cond.mask[v:], ref)
    eps = predict(torch.cat([x, x]), cond.context, cond.image_tokens, cond.mask,
                  None if ref is None else torch.cat([torch.zeros_like(ref), ref]))
    uncond, c = eps.float().chunk(2)
    return uncond + guidance_scale * (c - uncond)


def resolve_first_frame(model, first_frame: str) -> str:
    """"input" or "generate" for a choice that may be "auto" (the motion variant's default)."""
    if first_frame not in FIRST_FRAME_CHOICES:
        raise InputError(f"first_frame must be one of {', '.join(FIRST_FRAME_CHOICES)}, got {first_frame!r}")
    if first_frame != "auto":
        return first_frame
    from .motion import DEFAULT_VARIANT, VARIANTS, motion_variant

    return VARIANTS[motion_variant(model.unet) or DEFAULT_VARIANT].first_frame


@torch.no_grad()
def sample_motion(model, cond: MotionConditioning, num_frames: int = 10, steps: int = 50,
                  guidance_scale: float = 5.0, eta: float = 0.0, seed: int = 0, first_frame: str = "auto",
                  on_step: OnStep = no_progress, preview_every: int = 5) -> torch.Tensor:
    """DDIM sampling of F frames x V views; returns scaled latents [V, F, 4, h, w] (float32).

    ``first_frame``: "input" keeps frame 0 on the rest-state latents (see module doc), "generate" samples it
    too, "auto" follows the motion variant. ``on_step(step, steps, preview)`` gets, every ``preview_every``
    steps, the decoded current estimate of view 0 at the last frame ([H, W, 3] float 0..1)."""
    if num_frames < 1 or steps < 1:
        raise InputError(f"num_frames and steps must be at least 1 (got {num_frames}, {steps})")
    first_frame = resolve_first_frame(model, first_frame)
    if first_frame == "input" and cond.first_latents is None:
        raise InputError("first_frame='input' needs the rest-state latents (encode_conditioning(encode_first_frame=True))")
    unet = model.unet
    v, f, s = cond.num_views, num_frames, model.latent_size
    device = model.device
    scheduler = model.make_scheduler()
    scheduler.set_timesteps(steps, device=device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    x = torch.randn(f, v, 4, s, s, generator=gen).to(device) * scheduler.init_noise_sigma  # [F, V, 4, h, w]
    first = None if first_frame != "input" else cond.first_latents.to(device, torch.float32)
    for i, t in enumerate(scheduler.timesteps):
        if first is not None:
            noise = torch.randn(first.shape, generator=gen).to(device)
            x[0] = scheduler.add_noise(first, noise, t.reshape(1))
        eps = _guided_eps(unet, x.reshape(f * v, 4, s, s), t, cond, f, guidance_scale)
        out = scheduler.step(eps, t, x.reshape(f * v, 4, s, s), eta=eta, generator=gen if eta > 0 else None)
        x = out.prev_sample.reshape(f, v, 4, s, s).float()
        preview = None
        if preview_every and ((i + 1) % preview_every == 0 or i + 1 == steps):
            x0 = out.pred_original_sample.reshape(f, v, 4, s, s)[-1, :1]
            preview = vae_decode(model.vae, x0)[0].permute(1, 2, 0).float().cpu().numpy()
        on_step(i + 1, steps, preview)
    if first is not None:
        x[0] = first
    if not torch.isfinite(x).all():
        raise InputError("sampling produced NaN/Inf values; try fp32 or bf16 instead of fp16")
    return x.permute(1, 0, 2, 3, 4).contiguous()  # [V, F, 4, h, w]


@torch.no_grad()
def decode_video(model, latents: torch.Tensor, chunk: int = 8) -> np.ndarray:
    """Scaled latents [V, F, 4, h, w] -> frames [V, F, H, W, 3] float32 0..1 (decoded ``chunk`` at a time)."""
    v, f = latents.shape[:2]
    images = vae_decode(model.vae, latents.reshape(v * f, *latents.shape[2:]), chunk=chunk)
    return images.permute(0, 2, 3, 1).float().cpu().numpy().reshape(v, f, *images.shape[2:], 3)


def sample_video(model, views, prompt: str, rig: CameraRig, masks=None, negative_prompt: str = "",
                 num_frames: int = 10, steps: int = 50, guidance_scale: float = 5.0, eta: float = 0.0,
                 seed: int = 0, first_frame: str = "auto", on_step: OnStep = no_progress,
                 decode_chunk: int = 8) -> MultiViewVideo:
    """The whole sampling job: encode, sample, decode; returns the multi-view video."""
    first_frame = resolve_first_frame(model, first_frame)
    cond = encode_conditioning(model, views, prompt, rig, masks, negative_prompt,
                               encode_first_frame=first_frame == "input")
    latents = sample_motion(model, cond, num_frames, steps, guidance_scale, eta, seed, first_frame, on_step)
    frames = decode_video(model, latents, decode_chunk)
    part_masks = None if masks is None else np.asarray(
        masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else masks, np.float32)
    return MultiViewVideo(frames=frames, rig=rig, prompt=prompt, latents=latents.cpu().numpy(), part_masks=part_masks)


def video_grid(frames: np.ndarray) -> np.ndarray:
    """[V, F, H, W, 3] -> one image [V*H, F*W, 3]: a row per view, a column per frame."""
    v, f, h, w, c = frames.shape
    return frames.transpose(0, 2, 1, 3, 4).reshape(v * h, f * w, c)

