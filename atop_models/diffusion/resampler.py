"""ImageDream's image-prompt projector (an IP-Adapter-Plus style perceiver resampler): learnt query
latents attend to the CLIP vision tokens and become ``num_queries`` context tokens for cross-attention.
Key names follow the original checkpoint (``latents``, ``proj_in``, ``layers.i.{0,1}``, ``proj_out``,
``norm_out``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    # keys .0 (LayerNorm), .1 and .3 (linears without bias)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class PerceiverAttention(nn.Module):
    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        self.heads = heads
        inner = dim_head * heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        # x: [B, T, D] image features; latents: [B, Q, D]
        x = self.norm1(x)
        latents = self.norm2(latents)
        b, q_len, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1)  # keys from image + latents

        def heads(t: torch.Tensor) -> torch.Tensor:  # [B, L, H*d] -> [B, H, L, d]
            return t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2)

        # softmax in float32 as the original does (its q, k scaling by d^-1/4 each equals SDPA's 1/sqrt(d))
        out = F.scaled_dot_product_attention(heads(q).float(), heads(k).float(), heads(v).float())
        out = out.to(latents.dtype).transpose(1, 2).reshape(b, q_len, -1)
        return self.to_out(out)


class Resampler(nn.Module):
    """``[B, T, embedding_dim]`` CLIP tokens -> ``[B, num_queries, output_dim]`` context tokens."""

    def __init__(self, dim: int = 1024, depth: int = 4, dim_head: int = 64, heads: int = 12,
                 num_queries: int = 16, embedding_dim: int = 1280, output_dim: int = 1024, ff_mult: int = 4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim ** 0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            [nn.ModuleList([PerceiverAttention(dim, dim_head, heads), _feed_forward(dim, ff_mult)])
             for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latents = self.latents.expand(x.shape[0], -1, -1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))
