"""Conditioning and latents for ImageDream: text tokens (OpenCLIP ViT-H text tower as ``CLIPTextModel``, 77
tokens, last hidden state after the final LayerNorm), image tokens (CLIP vision penultimate-layer hidden
states, no post-LayerNorm, 257 x 1280 for ViT-H/14) with ImageDream's preprocessing, and the SD
autoencoder (latents scaled by 0.18215)."""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
import torch

log = logging.getLogger("atop")


def composite_rgba(images: np.ndarray | torch.Tensor, background: float | Sequence[float] = 0.5) -> np.ndarray:
    """[B, H, W, 3|4] float 0..1 -> [B, H, W, 3]: alpha composited over a flat background colour (ImageDream
    composites RGBA inputs on grey)."""
    arr = images.detach().cpu().float().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if arr.shape[-1] == 3:
        return arr
    if arr.shape[-1] != 4:
        raise ValueError(f"images must have 3 or 4 channels, got {arr.shape[-1]}")
    bg = np.broadcast_to(np.asarray(background, np.float32), (3,))
    alpha = arr[..., 3:4]
    return arr[..., :3] * alpha + bg * (1 - alpha)


def _processor_settings(processor) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(shortest side, crop size, mean, std) from a ``CLIPImageProcessor`` (its serialised settings, which
    are plain across transformers versions)."""
    cfg = processor.to_dict()
    size, crop = cfg.get("size", 224), cfg.get("crop_size", 224)
    if isinstance(size, dict):
        size = size.get("shortest_edge") or size.get("height")
    if isinstance(crop, dict):
        crop = crop.get("height")
    return (int(size), int(crop), np.asarray(cfg["image_mean"], np.float32),
            np.asarray(cfg["image_std"], np.float32))


def clip_pixel_values(processor, images: np.ndarray | torch.Tensor) -> torch.Tensor:  # [B, 3, S, S]
    """ImageDream's CLIP preprocessing (OpenCLIP's): 8-bit RGB, shortest side resized to the encoder's size
    with PIL bicubic, centre crop, scaled to 0..1, normalised with CLIP's mean and std. The sizes, mean and
    std come from ``processor`` (the model's ``CLIPImageProcessor`` settings); the resizing is done here with
    PIL so that it does not depend on the image-processor backend."""
    from PIL import Image

    short, crop, mean, std = _processor_settings(processor)
    rgb = composite_rgba(images)  # [B, H, W, 3]
    out = []
    for img in (np.clip(rgb, 0.0, 1.0) * 255.0).round().astype(np.uint8):
        h, w = img.shape[:2]
        nh, nw = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
        pil = Image.fromarray(img).resize((nw, nh), Image.BICUBIC)
        top, left = int(round((nh - crop) / 2.0)), int(round((nw - crop) / 2.0))
        arr = np.asarray(pil, np.float32)[top:top + crop, left:left + crop] / 255.0  # [S, S, 3]
        out.append((arr - mean) / std)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def encode_image_tokens(image_encoder, processor, images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3|4] float 0..1 -> [B, T, D] penultimate-layer CLIP tokens (the image prompt)."""
    device = next(image_encoder.parameters()).device
    dtype = next(image_encoder.parameters()).dtype
    pixels = clip_pixel_values(processor, images).to(device, dtype)
    out = image_encoder(pixel_values=pixels, output_hidden_states=True)
    return out.hidden_states[-2]


def tokenize(tokenizer, prompts: Sequence[str]) -> torch.Tensor:  # [B, 77] int64
    """Token ids padded to the tokenizer's length (77); over-long prompts are truncated with a warning."""
    max_len = tokenizer.model_max_length
    full = tokenizer(list(prompts), padding=False, truncation=False)["input_ids"]
    for prompt, ids in zip(prompts, full):
        if len(ids) > max_len:
            log.warning("prompt is %d tokens long; the text encoder reads %d, the rest is dropped: %r",
                        len(ids), max_len, prompt)
    return tokenizer(list(prompts), padding="max_length", max_length=max_len, truncation=True,
                     return_tensors="pt")["input_ids"]


@torch.no_grad()
def encode_text(text_encoder, tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """Prompts -> [B, 77, D] text tokens (ImageDream's context)."""
    device = next(text_encoder.parameters()).device
    ids = tokenize(tokenizer, prompts).to(device)
    return text_encoder(input_ids=ids).last_hidden_state


def vae_encode(vae, images: torch.Tensor, generator: Optional[torch.Generator] = None, sample: bool = True,
               chunk: int = 8) -> torch.Tensor:
    """[B, 3, H, W] in 0..1 -> scaled latents [B, 4, H/8, W/8] (a sample of the posterior, or its mean)."""
    dtype = next(vae.parameters()).dtype
    device = next(vae.parameters()).device
    out = []
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].to(device, dtype) * 2 - 1
        dist = vae.encode(x).latent_dist
        out.append(dist.sample(generator) if sample else dist.mode())
    return torch.cat(out) * vae.config.scaling_factor


def vae_decode(vae, latents: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """Scaled latents [B, 4, h, w] -> images [B, 3, 8h, 8w] in 0..1, decoded ``chunk`` at a time."""
    dtype = next(vae.parameters()).dtype
    device = next(vae.parameters()).device
    out = []
    for start in range(0, latents.shape[0], chunk):
        z = latents[start:start + chunk].to(device, dtype) / vae.config.scaling_factor
        out.append(((vae.decode(z).sample + 1) / 2).clamp(0, 1))
    return torch.cat(out)
