"""``MVModel``: everything the sampler, the fine-tuning loop and score distillation need from one loaded
ImageDream (inflated UNet, VAE, text and image encoders with their tokenizer and preprocessing, schedule)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

log = logging.getLogger("atop")

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# "none": the views alone (both ATOP designs); "pixel": ImageDream's pixel controller, the image prompt's VAE
# latent as an extra (reference) view with a zero camera in every forward pass, with no loss and no motion.
REFERENCE_VIEWS = ("none", "pixel")


def resolve_dtype(name: str, device: torch.device | str) -> tuple[torch.dtype, str]:
    """The compute dtype for a dtype choice ("auto", "fp16", "bf16", "fp32") on ``device``, and a note when
    the choice was changed (half precision on the CPU runs as fp32; "auto" is fp16 on CUDA)."""
    device = torch.device(device)
    if name not in ("auto", *DTYPES):
        raise ValueError(f"dtype must be auto, fp16, bf16 or fp32, got {name!r}")
    if device.type != "cuda":
        if name in ("fp16", "bf16"):
            note = f"{name} requested but the device is {device.type}: using fp32 (half precision needs a GPU)"
            log.warning(note)
            return torch.float32, note
        return torch.float32, ""
    if name == "auto":
        return torch.float16, ""
    if name == "bf16" and not torch.cuda.is_bf16_supported():
        note = "bf16 is not supported by this GPU: using fp16"
        log.warning(note)
        return torch.float16, note
    return DTYPES[name], ""


@dataclass
class MVModel:
    """A loaded, inflated ImageDream.

    ``dtype`` is the compute dtype of the UNet and encoders; the VAE stays in float32 (cheap, and free of
    half-precision overflow). ``image_processor`` is the CLIP preprocessing (``CLIPImageProcessor``).
    ``variant`` is "ipmv" (trained with a 5th reference view), "ipmv-local" or "" when unknown.
    ``reference_view`` is one of ``REFERENCE_VIEWS``. The encoders are None when only the UNet and the VAE
    were loaded.
    """

    unet: nn.Module
    vae: nn.Module
    text_encoder: Optional[nn.Module]
    tokenizer: object
    image_encoder: Optional[nn.Module]
    image_processor: object
    scheduler_config: dict
    dtype: torch.dtype = torch.float32
    source: str = ""
    source_format: str = ""
    motion_source: str = "fresh"
    variant: str = ""
    reference_view: str = "none"
    notes: list[str] = field(default_factory=list)

    def modules(self) -> dict[str, nn.Module]:
        found = {"unet": self.unet, "vae": self.vae, "text_encoder": self.text_encoder,
                 "image_encoder": self.image_encoder}
        return {k: m for k, m in found.items() if m is not None}

    @property
    def motion_variant(self) -> Optional[str]:
        from .motion import motion_variant

        return motion_variant(self.unet)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device: torch.device | str) -> "MVModel":
        for module in self.modules().values():
            module.to(device)
        return self

    def make_scheduler(self):
        from .schedule import make_scheduler

        return make_scheduler(self.scheduler_config)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return int(self.unet.config.image_size)

    @property
    def image_size(self) -> int:
        return self.latent_size * self.vae_scale_factor

    def summary(self) -> str:
        """One line per fact, for node outputs and logs."""
        n = sum(p.numel() for p in self.unet.parameters())
        motion = sum(p.numel() for k, p in self.unet.named_parameters() if ".motion." in k)
        lines = [f"source: {self.source} ({self.source_format}{', ' + self.variant if self.variant else ''})",
                 f"UNet: {n:,} parameters, motion modules: {motion:,} ({self.motion_source})",
                 f"motion variant: {self.motion_variant or 'none'}",
                 "reference view: " + ("pixel (the image prompt's latent as a 5th view)" if self.reference_view
                                       == "pixel" else "none (the views alone)"),
                 f"dtype: {str(self.dtype).replace('torch.', '')}, image {self.image_size} px, "
                 f"latent {self.latent_size}"]
        return "\n".join(lines + self.notes)
