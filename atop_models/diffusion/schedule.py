"""ImageDream's noise schedule: LDM's "linear" betas (diffusers ``scaled_linear``) from 0.00085 to 0.012
over 1000 steps, epsilon prediction, DDIM with ``steps_offset=1`` (50 steps -> timesteps 981, 961, ..., 1)."""
from __future__ import annotations

from typing import Optional

import torch

IMAGEDREAM_SCHEDULER_CONFIG: dict = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}

# Settings that must hold for a scheduler config to describe ImageDream's training schedule.
_REQUIRED = ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "prediction_type")


def check_scheduler_config(config: dict) -> list[str]:
    """Differences between ``config`` and ImageDream's schedule on the settings that matter."""
    out = []
    for key in _REQUIRED:
        want, got = IMAGEDREAM_SCHEDULER_CONFIG[key], config.get(key)
        if got is None or (isinstance(want, float) and abs(float(got) - want) > 1e-9) or (
                not isinstance(want, float) and got != want):
            out.append(f"{key}={got!r} (ImageDream: {want!r})")
    return out


def make_scheduler(config: Optional[dict] = None):
    """A diffusers ``DDIMScheduler`` with ImageDream's schedule (``config`` overrides, e.g. from a model folder)."""
    from diffusers import DDIMScheduler

    merged = dict(IMAGEDREAM_SCHEDULER_CONFIG)
    merged.update({k: v for k, v in (config or {}).items() if not k.startswith("_")})
    merged.pop("_class_name", None)
    return DDIMScheduler.from_config(merged)


def alphas_cumprod(config: Optional[dict] = None, device=None) -> torch.Tensor:  # [1000] float32
    """Cumulative alpha products of the training schedule (for training losses and SDS)."""
    return make_scheduler(config).alphas_cumprod.to(device=device, dtype=torch.float32)
