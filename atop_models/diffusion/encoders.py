"""Conditioning and latents for ImageDream: text tokens (OpenCLIP ViT-H's text tower through its penultimate
layer, then the final LayerNorm, 77 tokens; token ids as open_clip makes them), image tokens (CLIP vision
penultimate-layer hidden states, no post-LayerNorm, 257 x 1280 for ViT-H/14) with ImageDream's preprocessing,
and the SD autoencoder (latents scaled by 0.18215). RGBA images are composited on grey before CLIP and the
VAE."""
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


# Text towers ImageDream can read, by width: the layer count of OpenCLIP's complete tower. Stable Diffusion
# 2.1's text_encoder is that tower without its last block (23 of 24 layers), so its last hidden state is the
# penultimate one ImageDream uses; a complete tower is read at its penultimate layer. The tiny test tower
# (width 64) stands for SD-2.1's layout with 2 layers, its complete form having 3.
FULL_TEXT_TOWER_LAYERS = {1024: 24, 64: 3}
PAD_ID = 0  # open_clip pads with 0 (the id of "!"), as SD-2.1's tokenizer does with its pad token "!"


def text_output_layer(config) -> str:
    """"last" (the SD-2.1 layout: the tower already ends at OpenCLIP's penultimate layer) or "penultimate"
    (a complete tower) for a ``CLIPTextConfig``; ValueError for any other layout."""
    full = FULL_TEXT_TOWER_LAYERS.get(int(config.hidden_size))
    layers = int(config.num_hidden_layers)
    if full is None or layers not in (full - 1, full):
        known = ", ".join(f"{n - 1} or {n} layers of width {w}" for w, n in FULL_TEXT_TOWER_LAYERS.items())
        raise ValueError(f"a text encoder of {layers} layers of width {config.hidden_size} is not OpenCLIP ViT-H/14's "
                         f"text tower (known: {known}); ImageDream reads that tower's penultimate layer")
    return "last" if layers == full - 1 else "penultimate"


def tokenize(tokenizer, prompts: Sequence[str]) -> torch.Tensor:  # [B, 77] int64
    """Token ids as open_clip makes them: start token, the prompt's BPE tokens (an "!" in the text is the
    word "!", id 256 in CLIP's vocabulary, not the padding token that Hugging Face tokenizers match), end
    token, padded with 0 to the tokenizer's length (77). Over-long prompts keep the end token last and are
    truncated with a warning."""
    max_len = tokenizer.model_max_length
    if not 2 < max_len <= 1024:
        max_len = 77
    out = torch.full((len(prompts), max_len), PAD_ID, dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids = tokenizer(prompt, add_special_tokens=True, split_special_tokens=True)["input_ids"]
        if len(ids) > max_len:
            log.warning("prompt is %d tokens long; the text encoder reads %d, the rest is dropped: %r",
                        len(ids), max_len, prompt)
            ids = ids[: max_len - 1] + ids[-1:]
        out[i, : len(ids)] = torch.as_tensor(ids)
    return out


@torch.no_grad()
def encode_text(text_encoder, tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """Prompts -> [B, 77, D] text tokens (ImageDream's context): OpenCLIP's penultimate layer, then the final
    LayerNorm, whichever layout the tower has (``text_output_layer``)."""
    device = next(text_encoder.parameters()).device
    ids = tokenize(tokenizer, prompts).to(device)
    if text_output_layer(text_encoder.config) == "last":
        return text_encoder(input_ids=ids).last_hidden_state
    hidden = text_encoder(input_ids=ids, output_hidden_states=True).hidden_states[-2]
    return getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)  # transformers 4 / 5 layouts


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
