"""ImageDream's transformer pieces with the original key names: multi-view self-attention, decoupled
text/image cross-attention, GEGLU feed-forward, and the spatial transformer that hosts a motion module.

Token layout inside a transformer: ``x`` is ``[N, L, C]`` with ``N = groups * V`` images, the V views of a
group contiguous (a group is one sample at one frame). All attention uses PyTorch's
scaled-dot-product attention (flash / memory-efficient kernels on CUDA), scale ``1/sqrt(d_head)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 and cast back, as ImageDream does (stable in fp16/bf16)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight.float() if self.weight is not None else None,
                            self.bias.float() if self.bias is not None else None, self.eps).to(x.dtype)


def sdpa_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head attention on ``[B, Lq, H*d]`` queries and ``[B, Lk, H*d]`` keys/values -> ``[B, Lq, H*d]``."""
    b, lq, inner = q.shape
    d = inner // heads
    q = q.view(b, lq, heads, d).transpose(1, 2)  # [B, H, Lq, d]
    k = k.view(b, k.shape[1], heads, d).transpose(1, 2)
    v = v.view(b, v.shape[1], heads, d).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v)  # [B, H, Lq, d]
    return out.transpose(1, 2).reshape(b, lq, inner)


class CrossAttention(nn.Module):
    """Attention with ``to_q/to_k/to_v`` (no bias) and ``to_out.0``; with ``ip_dim > 0`` the last ``ip_dim``
    context tokens are image tokens attended through their own ``to_k_ip/to_v_ip`` (decoupled
    cross-attention), the two results summed with weight ``ip_weight``."""

    def __init__(self, query_dim: int, context_dim: Optional[int] = None, heads: int = 8, dim_head: int = 64,
                 ip_dim: int = 0, ip_weight: float = 1.0):
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads = heads
        self.ip_dim = ip_dim
        self.ip_weight = ip_weight
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))
        if ip_dim > 0:
            self.to_k_ip = nn.Linear(context_dim, inner, bias=False)
            self.to_v_ip = nn.Linear(context_dim, inner, bias=False)

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        # x: [B, L, C]; context: [B, T(+ip_dim), Dc] or None for self-attention
        q = self.to_q(x)
        context = x if context is None else context
        if self.ip_dim > 0 and context is not x:
            text, ip = context[:, : -self.ip_dim], context[:, -self.ip_dim:]
            out = sdpa_heads(q, self.to_k(text), self.to_v(text), self.heads)
            out = out + self.ip_weight * sdpa_heads(q, self.to_k_ip(ip), self.to_v_ip(ip), self.heads)
        else:
            out = sdpa_heads(q, self.to_k(context), self.to_v(context), self.heads)
        return self.to_out(out)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    """``net.0.proj`` (GEGLU, C -> 8C) and ``net.2`` (4C -> C)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class VideoContext:
    """What the motion modules need besides the tokens: the (batch, frame, view) layout of the images, the
    first-frame part masks, one per (batch, view) that moves, whether the last view of every frame is
    ImageDream's reference view (pixel mode: it does not move), and mask features computed once per
    forward pass (``film``: module id -> tensors)."""

    num_frames: int
    num_views: int
    mask: Optional[torch.Tensor] = None  # [B*Vm, 1, Hm, Wm] float 0..1, Vm = views that move
    reference_view: bool = False
    film: dict = field(default_factory=dict)

    @property
    def motion_views(self) -> int:
        return self.num_views - 1 if self.reference_view else self.num_views


class BasicTransformerBlock3D(nn.Module):
    """Multi-view self-attention (tokens of the V views of a group attend jointly), per-image decoupled
    cross-attention, GEGLU feed-forward, and an optional motion module (``motion``, added by inflation) after
    the self-attention or after the cross-attention (its ``position``)."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, ip_dim: int = 0):
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head, ip_dim=ip_dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.motion: Optional[nn.Module] = None

    def forward(self, x: torch.Tensor, context: torch.Tensor, video: VideoContext, hw: tuple[int, int]) -> torch.Tensor:
        # x: [N, L, C] with N = groups * V
        n, l, c = x.shape
        v = video.num_views
        x = x.reshape(n // v, v * l, c)  # [groups, V*L, C]: joint attention over the views
        x = self.attn1(self.norm1(x)) + x
        x = x.reshape(n, l, c)
        motion = self.motion
        if motion is not None and motion.position == "after_self_attention":
            x = motion(x, video, hw)
        x = self.attn2(self.norm2(x), context) + x
        if motion is not None and motion.position == "after_cross_attention":
            x = motion(x, video, hw)
        return self.ff(self.norm3(x)) + x


class SpatialTransformer3D(nn.Module):
    """``norm`` (GroupNorm eps 1e-6) -> linear ``proj_in`` -> transformer blocks -> linear ``proj_out``
    (zero-initialised), added to the input."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, context_dim: int, ip_dim: int = 0):
        super().__init__()
        self.norm = GroupNorm32(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, heads * dim_head)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock3D(heads * dim_head, heads, dim_head, context_dim, ip_dim) for _ in range(depth)])
        self.proj_out = nn.Linear(heads * dim_head, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, video: VideoContext) -> torch.Tensor:
        # x: [N, C, H, W]
        n, c, h, w = x.shape
        t = self.norm(x).flatten(2).transpose(1, 2)  # [N, HW, C]
        t = self.proj_in(t)
        for block in self.transformer_blocks:
            t = block(t, context, video, (h, w))
        t = self.proj_out(t)
        return x + t.transpose(1, 2).reshape(n, c, h, w)
