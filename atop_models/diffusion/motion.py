"""The controllable motion modules that inflate ImageDream to multi-view video (DESIGN.md section 5).

One module per transformer block, stored as the block's new ``motion`` sub-module (keys
``...transformer_blocks.0.motion.*``). Images are laid out ``(batch, frame, view)`` with views innermost. Two
variants exist; both add nothing before training (zero-initialised output projection):

``paper`` (the ATOP paper's text and figure), after the cross-attention::

    h = LayerNorm(x)
    h = (1 + scale(mask)) * h + shift(mask)       # two 2-layer per-pixel MLPs of the first-frame part mask
    h = h + frame_encoding(frame index)            # sinusoidal, so frames are told apart
    q = to_q(h) for every frame; k, v = to_k/to_v(h) of the FIRST frame of the same view
    x = x + to_out(attention(q, k, v))

``release`` (ATOP's once-published stage-1 code), between the multi-view self-attention and the
cross-attention::

    h = LayerNorm(x)                               # the block's own "norm_temp"
    m = per-view standardised mask (zero mean, unit std), nearest-resized to the latent grid
    scale, shift = conv3x3 -> BatchNorm -> ReLU -> conv3x3 (m)
    h = (1 + scale) * h + shift
    x = x + to_out(attention over the frames of each view at each latent position (q, k, v from every frame))

In ImageDream's pixel mode (a reference view appended as the last view of every frame) the modules leave
the reference view untouched: it has no motion.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .attention import BasicTransformerBlock3D, VideoContext, sdpa_heads

MOTION_MODULE_VERSION = 2
MOTION_VARIANTS = ("paper", "release")
# Chosen by the learning proof (tests/unit/test_motion_learning.py; figures in the README).
DEFAULT_VARIANT = "release"
AFTER_SELF_ATTENTION, AFTER_CROSS_ATTENTION = "after_self_attention", "after_cross_attention"
QUERY_PROJECTIONS = ("attn1.to_q.weight", "attn2.to_q.weight")


@dataclass(frozen=True)
class VariantTraits:
    """What a variant fixes besides its module: where the module sits, how sampling treats frame 0, what
    condition dropout removes, and which base weights train with the modules."""

    position: str
    first_frame: str  # sampling default: "input" (frame 0 is the rest state) | "generate" (from noise)
    drop_image_tokens: bool  # condition dropout also zeroes the CLIP tokens (else the prompt only)
    extra_trainable: tuple[str, ...]  # suffixes of base weights that train too


VARIANTS: dict[str, VariantTraits] = {
    "paper": VariantTraits(AFTER_CROSS_ATTENTION, "input", True, ()),
    "release": VariantTraits(AFTER_SELF_ATTENTION, "generate", False,
                             QUERY_PROJECTIONS + ("attn2.to_k_ip.weight", "attn2.to_v_ip.weight")),
}


@dataclass
class MotionConfig:
    """Settings of the motion modules (stored in the UNet config and in motion-module files)."""

    variant: str = DEFAULT_VARIANT
    film_hidden: int = 64  # hidden width of the paper variant's mask MLPs
    version: int = MOTION_MODULE_VERSION

    def __post_init__(self):
        if self.variant not in MOTION_VARIANTS:
            raise ValueError(f"unknown motion-module variant {self.variant!r}; known: {', '.join(MOTION_VARIANTS)}")

    @property
    def traits(self) -> VariantTraits:
        return VARIANTS[self.variant]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "MotionConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown motion-module settings: {sorted(unknown)}")
        if d and "variant" not in d:
            d["variant"] = "paper"  # files of version 1 predate the variants: all of them are the paper's
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


class _MotionModuleBase(nn.Module):
    position = AFTER_CROSS_ATTENTION

    def __init__(self, heads: int):
        super().__init__()
        self.heads = heads

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Fresh state: PyTorch's default uniform init of linear and conv layers (drawn from ``generator`` when
        given, so fresh modules are reproducible), identity norms, and a zero output projection (the module
        then adds nothing)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                bound = 1.0 / module.weight[0].numel() ** 0.5
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 2 * bound - bound)
                if module.bias is not None:
                    module.bias.copy_(torch.rand(module.bias.shape, generator=generator) * 2 * bound - bound)
            elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
                module.reset_parameters()
        nn.init.zeros_(self.to_out[0].weight)
        nn.init.zeros_(self.to_out[0].bias)

    def forward(self, x: torch.Tensor, video: VideoContext, hw: tuple[int, int]) -> torch.Tensor:
        # x: [B*F*V, L, C], views innermost; a reference view (the last) passes unchanged
        if not video.reference_view:
            return self.move(x, video, hw, video.num_views)
        n, l, c = x.shape
        v = video.num_views
        x = x.reshape(n // v, v, l, c)
        moved = self.move(x[:, :-1].reshape(-1, l, c), video, hw, v - 1)
        return torch.cat([moved.reshape(n // v, v - 1, l, c), x[:, -1:]], dim=1).reshape(n, l, c)

    def move(self, x: torch.Tensor, video: VideoContext, hw: tuple[int, int], v: int) -> torch.Tensor:
        raise NotImplementedError


def _masks(video: VideoContext, b: int, v: int, hw: tuple[int, int], like: torch.Tensor, mode: str) -> torch.Tensor:
    """The first-frame part masks at the latent grid ``hw``: [B*V, 1, h, w] (zeros when none were given)."""
    if video.mask is None:
        return like.new_zeros(b * v, 1, hw[0], hw[1])
    return F.interpolate(video.mask.to(like.dtype), size=hw, mode=mode)


class PaperMotionModule(_MotionModuleBase):
    position = AFTER_CROSS_ATTENTION

    def __init__(self, dim: int, heads: int, config: MotionConfig):
        super().__init__(heads)
        self.norm = nn.LayerNorm(dim)
        hid = config.film_hidden
        self.film_scale = nn.Sequential(nn.Linear(1, hid), nn.SiLU(), nn.Linear(hid, dim))
        self.film_shift = nn.Sequential(nn.Linear(1, hid), nn.SiLU(), nn.Linear(hid, dim))
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))
        self.reset_parameters()

    def move(self, x: torch.Tensor, video: VideoContext, hw: tuple[int, int], v: int) -> torch.Tensor:
        n, l, c = x.shape
        f = video.num_frames
        b = n // (f * v)
        h = self.norm(x).reshape(b, f, v, l, c)
        m = _masks(video, b, v, hw, x, "area").reshape(b, 1, v, l, 1)  # no mask: every pixel "not the part"
        h = (1 + self.film_scale(m)) * h + self.film_shift(m)
        h = h + frame_encoding(f, c, x.device, x.dtype)[None, :, None, None, :]
        h = h.permute(0, 2, 1, 3, 4)  # [B, V, F, L, C]
        q = self.to_q(h).reshape(b * v, f * l, c)  # queries of every frame
        first = h[:, :, 0].reshape(b * v, l, c)  # keys/values from the first frame of the same view
        out = sdpa_heads(q, self.to_k(first), self.to_v(first), self.heads)  # [B*V, F*L, C]
        out = out.reshape(b, v, f, l, c).permute(0, 2, 1, 3, 4).reshape(n, l, c)
        return x + self.to_out(out)


class ReleaseMotionModule(_MotionModuleBase):
    position = AFTER_SELF_ATTENTION

    def __init__(self, dim: int, heads: int, config: MotionConfig):
        super().__init__(heads)
        self.norm = nn.LayerNorm(dim)
        self.mask_conv = nn.Sequential(nn.Conv2d(1, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU(),
                                       nn.Conv2d(dim, 2 * dim, 3, padding=1))
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))
        self.reset_parameters()

    def mask_film(self, video: VideoContext, b: int, v: int, hw: tuple[int, int], like: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift), each [B*V, C, h, w], from the per-view standardised masks. The UNet computes these
        once per forward pass (``prepare_motion``), outside gradient checkpointing, so BatchNorm's running
        statistics are updated once per training step."""
        m = _masks(video, b, v, hw, like, "nearest")
        # Sample std as published; a 1x1 grid (the tiny model's middle block) has none: the mask is then 0.
        std = m.std(dim=(2, 3), keepdim=True) if hw[0] * hw[1] > 1 else torch.zeros_like(m)
        m = (m - m.mean(dim=(2, 3), keepdim=True)) / (std + 1e-5)
        return self.mask_conv(m.to(self.mask_conv[0].weight.dtype)).to(like.dtype).chunk(2, dim=1)

    def move(self, x: torch.Tensor, video: VideoContext, hw: tuple[int, int], v: int) -> torch.Tensor:
        n, l, c = x.shape
        f = video.num_frames
        b = n // (f * v)
        film = video.film.get(id(self))
        scale, shift = film if film is not None else self.mask_film(video, b, v, hw, x)
        as_tokens = lambda t: t.flatten(2).transpose(1, 2).reshape(b, 1, v, l, c)  # noqa: E731  [B, 1, V, L, C]
        h = self.norm(x).reshape(b, f, v, l, c) * (1 + as_tokens(scale)) + as_tokens(shift)
        h = h.permute(0, 2, 3, 1, 4).reshape(b * v * l, f, c)  # the frames of one view at one position
        out = sdpa_heads(self.to_q(h), self.to_k(h), self.to_v(h), self.heads)  # [B*V*L, F, C]
        out = out.reshape(b, v, l, f, c).permute(0, 3, 1, 2, 4).reshape(n, l, c)
        return x + self.to_out(out)


MODULE_CLASSES = {"paper": PaperMotionModule, "release": ReleaseMotionModule}


def transformer_blocks(unet: nn.Module) -> list[BasicTransformerBlock3D]:
    return [m for m in unet.modules() if isinstance(m, BasicTransformerBlock3D)]


def attach_motion_modules(unet: nn.Module, config: MotionConfig, seed: int = 0) -> int:
    """Adds a fresh motion module of ``config.variant`` to every transformer block that has none (initialised
    from ``seed``, so the same base model always gets the same fresh modules); returns how many were added."""
    added = 0
    gen = torch.Generator().manual_seed(seed)
    cls = MODULE_CLASSES[config.variant]
    for block in transformer_blocks(unet):
        if block.motion is None:
            ref = block.attn1.to_q.weight
            module = cls(ref.shape[0], block.attn1.heads, config)
            if ref.device.type != "meta":
                module.reset_parameters(gen)
            block.motion = module.to(device=ref.device, dtype=ref.dtype)
            added += 1
    return added


def is_motion_key(key: str) -> bool:
    return ".motion." in key


def motion_variant(unet: nn.Module) -> Optional[str]:
    """The variant of the UNet's motion modules (None when it is not inflated)."""
    cfg = unet.config.motion_module
    return None if cfg is None else MotionConfig.from_dict(cfg).variant


def trained_base_keys(unet: nn.Module, train_query_projections: bool = False) -> list[str]:
    """Base (non-motion) weights that train with the motion modules: the variant's own set, plus the
    attention query projections when asked."""
    variant = motion_variant(unet)
    suffixes = VARIANTS[variant].extra_trainable if variant else ()
    if train_query_projections:
        suffixes = tuple(dict.fromkeys(suffixes + QUERY_PROJECTIONS))
    return [k for k, _ in unet.named_parameters() if not is_motion_key(k) and k.endswith(suffixes)] if suffixes else []


def set_trainable(unet: nn.Module, train_query_projections: bool = False) -> list[str]:
    """Freezes everything except the motion modules and ``trained_base_keys``; returns the names of the
    trainable parameters."""
    extra = set(trained_base_keys(unet, train_query_projections))
    trainable = []
    for name, p in unet.named_parameters():
        p.requires_grad_(is_motion_key(name) or name in extra)
        if p.requires_grad:
            trainable.append(name)
    return trainable
