"""Reference clips -> training tensors for motion-module fine-tuning.

A clip is anything with ``frames`` [V, F, H, W, 3] (0..1, frame 0 = rest state), first-frame part ``masks``
[V, H, W], a ``prompt`` and cameras (``rig``: a CameraRig, or ``cameras``: a rig, [V, 4, 4] or [V, 16]); the
reference clips of ``training.clips`` are such objects. Each clip is encoded once (the frozen encoders never
change during training): VAE latents of every frame, text tokens of the prompt, CLIP tokens of each view's
first frame, camera vectors and masks.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError

log = logging.getLogger("atop")


@dataclass
class EncodedClip:
    """One clip ready for the UNet (images ordered (frame, view), views innermost)."""

    latents: torch.Tensor  # [F*V, 4, h, w] float32 scaled VAE latents (posterior mean)
    context: torch.Tensor  # [77, Dc] text tokens of the prompt
    image_tokens: torch.Tensor  # [V, T, De] CLIP tokens of each view's first frame
    camera: torch.Tensor  # [V, 16]
    mask: torch.Tensor  # [V, 1, H, W] 0..1
    num_views: int
    num_frames: int
    prompt: str
    name: str = ""


@dataclass
class TrainingSet:
    """Encoded clips plus the empty-prompt tokens used when the text condition is dropped."""

    clips: list[EncodedClip]
    empty_context: torch.Tensor  # [77, Dc]
    num_views: int
    num_frames: int
    fingerprint: str  # hash of the clips' pixels, masks, cameras and prompts
    notes: list[str]

    @property
    def prompts(self) -> list[str]:
        return sorted({c.prompt for c in self.clips})


def clip_name(clip, index: int) -> str:
    meta = getattr(clip, "meta", None) or {}
    return str(getattr(clip, "name", "") or meta.get("name", "") or f"clip {index}")


def clip_cameras(clip) -> np.ndarray:  # [V, 16]
    from ..diffusion.sampler import camera_vectors

    cams = getattr(clip, "rig", None)
    if cams is None:
        cams = getattr(clip, "cameras", None)
    if cams is None:
        raise InputError(f"clip {clip_name(clip, 0)!r} has no cameras (a 'rig' or 'cameras' attribute)")
    return np.asarray(camera_vectors(cams), np.float64)


def check_clip(clip, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames [V, F, H, W, 3], masks [V, H, W], cameras [V, 16]) of a clip, or an InputError naming every
    inconsistency (view counts of images, masks and cameras; shapes; frame count)."""
    name = clip_name(clip, index)
    frames = np.asarray(clip.frames, np.float32)
    masks = np.asarray(clip.masks, np.float32)
    cams = clip_cameras(clip)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise InputError(f"clip {name!r}: frames must be [views, frames, H, W, 3], got {list(frames.shape)}")
    v, f, h, w = frames.shape[:4]
    problems = []
    if masks.ndim != 3:
        problems.append(f"masks must be [views, H, W], got {list(masks.shape)}")
    elif masks.shape[0] != v:
        problems.append(f"{v} views of images but {masks.shape[0]} masks")
    elif masks.shape[1:] != (h, w):
        problems.append(f"masks are {masks.shape[2]}x{masks.shape[1]} px but images {w}x{h} px")
    if cams.shape[0] != v:
        problems.append(f"{v} views of images but {cams.shape[0]} cameras")
    if f < 2:
        problems.append(f"{f} frame; a motion clip needs at least 2")
    if problems:
        raise InputError(f"clip {name!r}: {'; '.join(problems)}; re-render the clip or fix its folder")
    return frames, masks, cams


def fingerprint(arrays: Sequence[np.ndarray], texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    for t in texts:
        h.update(t.encode("utf-8"))
    return h.hexdigest()[:16]


@torch.no_grad()
def encode_training_set(model, clips: Sequence, expected_views: int | None = None) -> TrainingSet:
    """Encodes every clip with the model's frozen VAE and encoders (on the model's device). All clips must
    share one view and frame count (they are stacked into batches). Images of another size than the model's
    are resized (noted). Over-long prompts are truncated by the tokenizer with a logged warning."""
    from ..diffusion.encoders import encode_image_tokens, encode_text, vae_encode

    if not clips:
        raise InputError("no training clips; give a folder with at least one reference clip")
    checked = [check_clip(c, i) for i, c in enumerate(clips)]
    views = sorted({fr.shape[0] for fr, _, _ in checked})
    frames_n = sorted({fr.shape[1] for fr, _, _ in checked})
    if len(views) > 1:
        raise InputError(f"clips have different view counts {views}; render every clip with the same camera rig")
    if len(frames_n) > 1:
        raise InputError(f"clips have different frame counts {frames_n}; render every clip with the same "
                         "number of frames")
    v, f = views[0], frames_n[0]
    if expected_views is not None and v != expected_views:
        raise InputError(f"the clips have {v} views but the model works with {expected_views}; render the clips "
                         f"with {expected_views} views")
    notes: list[str] = []
    size = model.image_size
    device, dtype = model.device, model.dtype
    encoded = []
    for i, (clip, (frames, masks, cams)) in enumerate(zip(clips, checked)):
        if frames.shape[2:4] != (size, size):
            note = f"clip {clip_name(clip, i)!r}: frames of {frames.shape[3]}x{frames.shape[2]} px resized to " \
                   f"the model's {size}x{size}"
            log.info(note)
            notes.append(note)
        rgb = torch.from_numpy(frames.transpose(1, 0, 4, 2, 3).reshape(f * v, 3, *frames.shape[2:4]))  # (frame, view)
        if rgb.shape[-2:] != (size, size):
            rgb = torch.nn.functional.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True,
                                                  align_corners=False)
        # Posterior mean: the cached latents then do not depend on a random draw.
        latents = vae_encode(model.vae, rgb.clamp(0, 1), sample=False).float()
        context = encode_text(model.text_encoder, model.tokenizer, [clip.prompt])[0].to(dtype)
        tokens = encode_image_tokens(model.image_encoder, model.image_processor, frames[:, 0]).to(dtype)
        mask = torch.from_numpy(masks)[:, None]  # [V, 1, H, W]
        if mask.shape[-2:] != (size, size):
            mask = torch.nn.functional.interpolate(mask, size=(size, size), mode="area")
        encoded.append(EncodedClip(
            latents=latents.to(device), context=context, image_tokens=tokens,
            camera=torch.as_tensor(cams, dtype=torch.float32).to(device, dtype),
            mask=mask.to(device, dtype), num_views=v, num_frames=f,
            prompt=clip.prompt, name=clip_name(clip, i)))
    empty = encode_text(model.text_encoder, model.tokenizer, [""])[0].to(dtype)
    fp = fingerprint([a for c in checked for a in c], [c.prompt for c in clips])
    return TrainingSet(clips=encoded, empty_context=empty, num_views=v, num_frames=f, fingerprint=fp, notes=notes)


def make_batch(data: TrainingSet, indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """Stacks clips into one UNet batch: latents [B*F*V, 4, h, w] ordered (batch, frame, view), text
    [B, 77, Dc], image tokens [B*V, T, De], cameras [B*F*V, 16], masks [B*V, 1, H, W], and the rest-state
    latents of view 0 [B, 4, h, w] (the reference view of ImageDream's pixel mode)."""
    clips = [data.clips[i] for i in indices]
    f, v = data.num_frames, data.num_views
    cams = torch.stack([c.camera for c in clips])  # [B, V, 16]
    return {
        "latents": torch.cat([c.latents for c in clips]),
        "context": torch.stack([c.context for c in clips]),
        "image_tokens": torch.cat([c.image_tokens for c in clips]),
        "camera": cams[:, None].expand(len(clips), f, v, cams.shape[-1]).reshape(-1, cams.shape[-1]),
        "mask": torch.cat([c.mask for c in clips]),
        "reference": torch.stack([c.latents[0] for c in clips]),
    }
