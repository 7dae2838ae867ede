"""ImageDream's multi-view UNet (SD-2.1 layout) with the original checkpoint key names, inflatable to
multi-view video with motion modules (see ``motion.py``).

Images are laid out ``(batch, frame, view)`` and flattened with views innermost: ``N = B * F * V``. Every
frozen layer sees one image at a time except the multi-view self-attention, which joins the V views of one
(batch, frame) group, so the network equals ImageDream exactly when ``F = 1`` and before training.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .attention import GroupNorm32, SpatialTransformer3D, VideoContext
from .motion import MotionConfig, ReleaseMotionModule, attach_motion_modules, is_motion_key
from .resampler import Resampler


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:  # [N, dim]
    """Sinusoidal embedding in ImageDream's order: [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class ResBlock(nn.Module):
    """``in_layers`` / ``emb_layers`` / ``out_layers`` / ``skip_connection`` (1x1 conv when channels change)."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int):
        super().__init__()
        self.in_layers = nn.Sequential(GroupNorm32(32, channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(GroupNorm32(32, out_channels), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb_layers(emb).to(x.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedSequential(nn.ModuleList):
    """One UNet stage: layers called in order, each with what it needs."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, video: VideoContext) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer3D):
                x = layer(x, context, video)
            else:
                x = layer(x)
        return x


class MultiViewUNet(ModelMixin, ConfigMixin):
    """The ImageDream UNet. Parameter names equal ``model.diffusion_model.*`` of the released checkpoints
    (and ``unet/`` of the diffusers port); with ``motion_module`` set, every transformer block also has a
    ``motion`` sub-module."""

    config_name = "config.json"
    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        image_size: int = 32,
        in_channels: int = 4,
        model_channels: int = 320,
        out_channels: int = 4,
        num_res_blocks: int = 2,
        attention_resolutions: tuple = (4, 2, 1),
        channel_mult: tuple = (1, 2, 4, 4),
        num_head_channels: int = 64,
        transformer_depth: int = 1,
        context_dim: int = 1024,
        camera_dim: int = 16,
        ip_dim: int = 16,
        image_embedding_dim: int = 1280,
        resampler_depth: int = 4,
        resampler_heads: int = 12,
        resampler_dim_head: int = 64,
        motion_module: Optional[dict] = None,
    ):
        super().__init__()
        self.gradient_checkpointing = False
        c0 = model_channels
        emb_dim = 4 * c0
        self.time_embed = nn.Sequential(nn.Linear(c0, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.camera_embed = nn.Sequential(nn.Linear(camera_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if ip_dim > 0:
            self.image_embed = Resampler(dim=context_dim, depth=resampler_depth, dim_head=resampler_dim_head,
                                         heads=resampler_heads, num_queries=ip_dim, embedding_dim=image_embedding_dim,
                                         output_dim=context_dim)

        def transformer(ch: int) -> SpatialTransformer3D:
            return SpatialTransformer3D(ch, ch // num_head_channels, num_head_channels, transformer_depth,
                                        context_dim, ip_dim)

        self.input_blocks = nn.ModuleList([TimestepEmbedSequential([nn.Conv2d(in_channels, c0, 3, padding=1)])])
        skip_channels = [c0]
        ch, ds = c0, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb_dim, mult * c0)]
                ch = mult * c0
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                self.input_blocks.append(TimestepEmbedSequential(layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential([Downsample(ch)]))
                skip_channels.append(ch)
                ds *= 2
        self.middle_block = TimestepEmbedSequential([ResBlock(ch, emb_dim, ch), transformer(ch),
                                                     ResBlock(ch, emb_dim, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), emb_dim, mult * c0)]
                ch = mult * c0
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(layers))
        self.out = nn.Sequential(GroupNorm32(32, ch), nn.SiLU(), nn.Conv2d(c0, out_channels, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)
        if motion_module is not None:
            attach_motion_modules(self, MotionConfig.from_dict(motion_module))

    # --- inflation ---------------------------------------------------------------------------------
    @property
    def is_inflated(self) -> bool:
        return self.config.motion_module is not None

    def inflate(self, config: Optional[MotionConfig] = None) -> "MultiViewUNet":
        """Adds fresh (zero-output) motion modules to every transformer block; base weights are untouched."""
        if self.is_inflated:
            raise ValueError("the UNet already has motion modules")
        config = config or MotionConfig()
        attach_motion_modules(self, config)
        self.register_to_config(motion_module=config.to_dict())
        return self

    def base_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not is_motion_key(k)}

    def motion_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if is_motion_key(k)}

    def _transformer_scales(self):
        """(transformer block, downsampling factor of its feature map) for every transformer block."""
        ds = 1
        for blocks in (self.input_blocks, [self.middle_block], self.output_blocks):
            for block in blocks:
                for layer in block:
                    if isinstance(layer, SpatialTransformer3D):
                        for tb in layer.transformer_blocks:
                            yield tb, ds
                    elif isinstance(layer, Downsample):
                        ds *= 2
                    elif isinstance(layer, Upsample):
                        ds //= 2

    def _prepare_motion(self, video: VideoContext, size: tuple[int, int], b: int, like: torch.Tensor) -> None:
        """Mask features of the release modules, once per forward pass and outside gradient checkpointing."""
        for tb, ds in self._transformer_scales():
            if isinstance(tb.motion, ReleaseMotionModule):
                hw = (-(-size[0] // ds), -(-size[1] // ds))
                video.film[id(tb.motion)] = tb.motion.mask_film(video, b, video.motion_views, hw, like)

    # --- forward -----------------------------------------------------------------------------------
    def _stage(self, block: TimestepEmbedSequential, h, emb, context, video):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(block, h, emb, context, video)
        return block(h, emb, context, video)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        context: torch.Tensor,
        camera: torch.Tensor,
        image_tokens: Optional[torch.Tensor] = None,
        num_views: int = 4,
        num_frames: int = 1,
        mask: Optional[torch.Tensor] = None,
        reference_latent: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Predicts the noise of every image.

        sample:          [N, C, h, w], N = B*F*V, images ordered (batch, frame, view), views innermost
        timestep:        scalar, [B] or [N]
        context:         text tokens [N, T, Dc] or [B*V, T, Dc] or [B, T, Dc]
        camera:          [N, 16] or [V, 16] (ImageDream camera vectors)
        image_tokens:    CLIP vision tokens (penultimate layer) [N, T', De] or [B*V, T', De] (per view,
                         shared by every frame) or [B, T', De]; zeros for the unconditional branch
        mask:            first-frame part masks [B*V, 1, Hm, Wm] or [B, V, Hm, Wm], 0..1 (motion modules only)
        reference_latent: [B, C, h, w] or [B*F, C, h, w]: ImageDream's pixel mode; the last view of every group
                         is replaced by this clean latent with a zero camera (inputs are not modified); it is
                         the reference view, which motion modules leave unmoved (``mask`` then holds the
                         other views only)
        returns          [N, C, h, w]
        """
        n = sample.shape[0]
        v, f = num_views, num_frames
        if n % (v * f):
            raise ValueError(f"batch of {n} images is not a multiple of views x frames = {v} x {f}")
        b = n // (v * f)
        dtype = self.dtype

        if reference_latent is not None:
            ref = reference_latent.to(sample.dtype)
            if ref.shape[0] == b:
                ref = ref[:, None].expand(b, f, *ref.shape[1:]).reshape(b * f, *ref.shape[1:])
            sample = sample.reshape(b * f, v, *sample.shape[1:]).clone()
            sample[:, -1] = ref
            sample = sample.reshape(n, *sample.shape[2:])

        t = torch.as_tensor(timestep, device=sample.device)
        t = t.reshape(-1).expand(n) if t.numel() == 1 else _per_image(t, n, b, v, f, "timestep", per_view_ok=False)
        cam = camera.to(sample.device, dtype)
        if cam.shape[0] == v and n != v:
            cam = cam[None].expand(n // v, v, cam.shape[-1]).reshape(n, -1)
        elif cam.shape[0] != n:
            raise ValueError(f"camera must be [{n}, 16] or [{v}, 16], got {list(cam.shape)}")
        if reference_latent is not None:
            cam = cam.reshape(n // v, v, -1).clone()
            cam[:, -1] = 0
            cam = cam.reshape(n, -1)

        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(dtype)) + self.camera_embed(cam)
        context = _per_image(context.to(sample.device, dtype), n, b, v, f, "context")
        if self.config.ip_dim > 0:
            if image_tokens is None:
                raise ValueError("image_tokens are required (zeros for the unconditional branch)")
            tokens = image_tokens.to(sample.device, dtype)
            ip = self.image_embed(tokens)  # [*, ip_dim, Dc]
            context = torch.cat([context, _per_image(ip, n, b, v, f, "image_tokens")], dim=1)
        video = VideoContext(num_frames=f, num_views=v, reference_view=reference_latent is not None)
        if mask is not None:
            video.mask = mask.to(sample.device, dtype).reshape(b * video.motion_views, 1, *mask.shape[-2:])
        if self.is_inflated:
            self._prepare_motion(video, tuple(sample.shape[-2:]), b, sample.to(dtype))

        h = sample.to(dtype)
        skips = []
        for block in self.input_blocks:
            h = self._stage(block, h, emb, context, video)
            skips.append(h)
        h = self._stage(self.middle_block, h, emb, context, video)
        for block in self.output_blocks:
            h = self._stage(block, torch.cat([h, skips.pop()], dim=1), emb, context, video)
        return self.out(h).to(sample.dtype)

    def forward_with_reference_view(self, sample: torch.Tensor, timestep, context: torch.Tensor, camera: torch.Tensor,
                                    image_tokens: torch.Tensor, reference_latent: torch.Tensor, num_views: int = 4,
                                    num_frames: int = 1, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ImageDream's pixel mode for the V views of ``sample`` [B*F*V, C, h, w]: a reference view is appended
        to every frame (the clean ``reference_latent`` [B, C, h, w], zero camera, the image tokens of view 0,
        which is the image prompt), and its output is dropped. Inputs as in ``forward``; returns [B*F*V, ...]."""
        n = sample.shape[0]
        v, f = num_views, num_frames
        if n % (v * f):
            raise ValueError(f"batch of {n} images is not a multiple of views x frames = {v} x {f}")
        b = n // (v * f)

        def with_reference(x: torch.Tensor, fill: Optional[torch.Tensor] = None) -> torch.Tensor:
            x = x.reshape(b * f, v, *x.shape[1:])
            extra = x[:, :1] if fill is None else fill.expand_as(x[:, :1])
            return torch.cat([x, extra], dim=1).reshape(b * f * (v + 1), *x.shape[2:])

        t = torch.as_tensor(timestep, device=sample.device)
        if t.numel() not in (1, b):
            t = with_reference(_per_image(t, n, b, v, f, "timestep", per_view_ok=False))
        cam = camera if camera.shape[0] == n else camera[None].expand(n // v, v, camera.shape[-1]).reshape(n, -1)
        eps = self.forward(
            with_reference(sample, sample.new_zeros(())), t,
            with_reference(_per_image(context, n, b, v, f, "context")), with_reference(cam, cam.new_zeros(())),
            image_tokens=with_reference(_per_image(image_tokens, n, b, v, f, "image_tokens")),
            num_views=v + 1, num_frames=f, mask=mask, reference_latent=reference_latent)
        return eps.reshape(b * f, v + 1, *eps.shape[1:])[:, :v].reshape(n, *eps.shape[1:])


def _per_image(x: torch.Tensor, n: int, b: int, v: int, f: int, name: str, per_view_ok: bool = True) -> torch.Tensor:
    """Expands a per-image [N, ...], per-(batch, view) [B*V, ...] or per-sample [B, ...] tensor to [N, ...]."""
    rest = x.shape[1:]
    if x.shape[0] == n:
        return x
    if per_view_ok and x.shape[0] == b * v:
        return x.reshape(b, 1, v, *rest).expand(b, f, v, *rest).reshape(n, *rest)
    if x.shape[0] == b:
        return x.reshape(b, 1, *rest).expand(b, f * v, *rest).reshape(n, *rest)
    allowed = f"{n} (images), {b * v} (batch x views) or {b} (batch)" if per_view_ok else f"{n} or {b}"
    raise ValueError(f"{name} has leading size {x.shape[0]}; expected {allowed}")
