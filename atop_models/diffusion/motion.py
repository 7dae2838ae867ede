"""The controllable motion module that inflates ImageDream to multi-view video (DESIGN.md section 5).

One module per transformer block, stored as the block's new ``motion`` sub-module (keys
``...transformer_blocks.0.motion.*``), applied after the cross-attention. Images are laid out
``(batch, frame, view)`` with views innermost. For every pixel token of every frame:

    h = LayerNorm(x)
    h = (1 + scale(mask)) * h + shift(mask)       # two 2-layer per-pixel MLPs of the first-frame part mask
    h = h + frame_encoding(frame index)            # sinusoidal, so frames are told apart
    q = to_q(h) for every frame; k, v = to_k/to_v(h) of the FIRST frame of the same view
    x = x + to_out(attention(q, k, v))             # to_out zero-initialised: identity before training
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .attention import BasicTransformerBlock3D, VideoContext, sdpa_heads

MOTION_MODULE_VERSION = 1


@dataclass
class MotionConfig:
    """Settings of the motion modules (stored in the UNet config and in motion-module files)."""

    film_hidden: int = 64  # hidden width of the mask MLPs
    version: int = MOTION_MODULE_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "MotionConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown motion-module settings: {sorted(unknown)}")
        return cls(**d)


def frame_encoding(num_frames: int, dim: int, device, dtype) -> torch.Tensor:  # [F, dim]
    """Sinusoidal frame-index encoding ([sin, cos] halves, periods up to 10000 frames)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    angles = torch.arange(num_frames, device=device, dtype=torch.float32)[:, None] * freqs[None]
    enc = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        enc = F.pad(enc, (0, 1))
    return enc.to(dtype)


class MotionModule(nn.Module):
    def __init__(self, dim: int, heads: int, config: MotionConfig):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        hid = config.film_hidden
        self.film_scale = nn.Sequential(nn.Linear(1, hid), nn.SiLU(), nn.Linear(hid, dim))
        self.film_shift = nn.Sequential(nn.Linear(1, hid), nn.SiLU(), nn.Linear(hid, dim))
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Fresh state: PyTorch's default uniform init (drawn from ``generator`` when given, so fresh modules
        are reproducible), LayerNorm identity, and a zero output projection (the module then adds nothing)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                bound = 1.0 / module.in_features ** 0.5
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 2 * bound - bound)
                if module.bias is not None:
                    module.bias.copy_(torch.rand(module.bias.shape, generator=generator) * 2 * bound - bound)
        self.norm.reset_parameters()
        nn.init.zeros_(self.to_out[0].weight)
        nn.init.zeros_(self.to_out[0].bias)

    def forward(self, x: torch.Tensor, video: VideoContext, hw: tuple[int, int]) -> torch.Tensor:
        # x: [B*F*V, L, C] with L = h*w, views innermost
        n, l, c = x.shape
        f, v = video.num_frames, video.num_views
        b = n // (f * v)
        h = self.norm(x).reshape(b, f, v, l, c)
        if video.mask is not None:
            m = F.interpolate(video.mask.to(x.dtype), size=hw, mode="area")  # [B*V, 1, h, w]
        else:
            m = x.new_zeros(b * v, 1, hw[0], hw[1])  # no mask: every pixel reads as "not the part"
        m = m.reshape(b, 1, v, l, 1)
        h = (1 + self.film_scale(m)) * h + self.film_shift(m)
        h = h + frame_encoding(f, c, x.device, x.dtype)[None, :, None, None, :]
        h = h.permute(0, 2, 1, 3, 4)  # [B, V, F, L, C]
        q = self.to_q(h).reshape(b * v, f * l, c)  # queries of every frame
        first = h[:, :, 0].reshape(b * v, l, c)  # keys/values from the first frame of the same view
        out = sdpa_heads(q, self.to_k(first), self.to_v(first), self.heads)  # [B*V, F*L, C]
        out = out.reshape(b, v, f, l, c).permute(0, 2, 1, 3, 4).reshape(n, l, c)
        return x + self.to_out(out)


def transformer_blocks(unet: nn.Module) -> list[BasicTransformerBlock3D]:
    return [m for m in unet.modules() if isinstance(m, BasicTransformerBlock3D)]


def attach_motion_modules(unet: nn.Module, config: MotionConfig, seed: int = 0) -> int:
    """Adds a fresh motion module to every transformer block that has none (initialised from ``seed``, so
    the same base model always gets the same fresh modules); returns how many were added."""
    added = 0
    gen = torch.Generator().manual_seed(seed)
    for block in transformer_blocks(unet):
        if block.motion is None:
            ref = block.attn1.to_q.weight
            module = MotionModule(ref.shape[0], block.attn1.heads, config)
            if ref.device.type != "meta":
                module.reset_parameters(gen)
            block.motion = module.to(device=ref.device, dtype=ref.dtype)
            added += 1
    return added


def is_motion_key(key: str) -> bool:
    return ".motion." in key


def query_projection_keys(names: Iterable[str]) -> list[str]:
    """Parameter names of the attention query projections (the optional extra trainable set)."""
    return [k for k in names if k.endswith(("attn1.to_q.weight", "attn2.to_q.weight"))]


def set_trainable(unet: nn.Module, train_query_projections: bool = False) -> list[str]:
    """Freezes everything except the motion modules (and, optionally, the attention query projections);
    returns the names of the trainable parameters."""
    names = dict(unet.named_parameters())
    extra = set(query_projection_keys(names)) if train_query_projections else set()
    trainable = []
    for name, p in names.items():
        p.requires_grad_(is_motion_key(name) or name in extra)
        if p.requires_grad:
            trainable.append(name)
    return trainable
