"""Few-shot fine-tuning of the motion modules on reference multi-view motion clips.

Epsilon-prediction MSE under ImageDream's training schedule. Only the motion modules train (optionally also
the attention query projections); their weights are kept in float32 while the frozen model may run in
fp16/bf16 under autocast. Text and image conditions are dropped (each with probability ``cond_dropout``) so
classifier-free guidance works at sampling time. Checkpoints are motion-module files written atomically;
training resumes from one."""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import DivergenceError, InputError
from ..progress import OnStep, no_progress
from ..types import CameraRig

log = logging.getLogger("atop")


@dataclass
class TrainingClip:
    """One reference clip: ``frames[v, f]`` (frame 0 = rest state), first-frame part masks, cameras, prompt."""

    frames: np.ndarray  # [V, F, H, W, 3] float 0..1
    masks: np.ndarray  # [V, H, W] float 0..1
    cameras: object  # CameraRig, [V, 4, 4] or [V, 16]
    prompt: str
    name: str = ""


@dataclass
class FinetuneConfig:
    steps: int = 500
    learning_rate: float = 3e-5
    batch_size: int = 1  # clips per optimiser micro-batch
    grad_accumulation: int = 1
    cond_dropout: float = 0.1  # probability of dropping the text and, independently, the image condition
    mixed_precision: str = "auto"  # auto (model dtype) | fp16 | bf16 | no
    gradient_checkpointing: bool = True
    max_grad_norm: float = 1.0
    weight_decay: float = 1e-2
    seed: int = 0
    checkpoint_every: int = 0  # 0: only at the end (when a checkpoint path is given)
    train_query_projections: bool = False


@dataclass
class EncodedClip:
    latents: torch.Tensor  # [F*V, 4, h, w] (frame, view) order, views innermost
    context: torch.Tensor  # [1, 77, Dc]
    image_tokens: torch.Tensor  # [V, T, De] from each view's first frame
    camera: torch.Tensor  # [V, 16]
    mask: torch.Tensor  # [V, 1, H, W]
    num_frames: int
    prompt: str


@dataclass
class FinetuneResult:
    losses: list[float] = field(default_factory=list)
    steps_done: int = 0
    checkpoint: Optional[str] = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@torch.no_grad()
def encode_clip(model, clip: TrainingClip, generator: Optional[torch.Generator] = None) -> EncodedClip:
    """VAE latents of every frame (posterior mean), text tokens, first-frame CLIP tokens per view, cameras
    and masks of one clip, on the model's device."""
    from ..diffusion.encoders import encode_image_tokens, encode_text, vae_encode
    from ..diffusion.sampler import camera_vectors

    frames = np.asarray(clip.frames, np.float32)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise InputError(f"clip '{clip.name}': frames must be [V, F, H, W, 3], got {list(frames.shape)}")
    v, f = frames.shape[:2]
    cams = camera_vectors(clip.cameras)
    masks = np.asarray(clip.masks, np.float32)
    if cams.shape[0] != v or masks.shape[0] != v:
        raise InputError(f"clip '{clip.name}': {v} views but {cams.shape[0]} cameras and {masks.shape[0]} masks")
    size = model.image_size
    rgb = torch.from_numpy(frames.transpose(1, 0, 4, 2, 3).reshape(f * v, 3, *frames.shape[2:4]))  # (frame, view)
    if rgb.shape[-2:] != (size, size):
        rgb = torch.nn.functional.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
    latents = vae_encode(model.vae, rgb.clamp(0, 1), sample=False).float()
    dtype, device = model.dtype, model.device
    context = encode_text(model.text_encoder, model.tokenizer, [clip.prompt]).to(dtype)
    tokens = encode_image_tokens(model.image_encoder, model.image_processor, frames[:, 0]).to(dtype)
    return EncodedClip(latents=latents, context=context, image_tokens=tokens,
                       camera=torch.as_tensor(cams, dtype=torch.float32).to(device, dtype),
                       mask=torch.from_numpy(masks)[:, None].to(device, dtype), num_frames=f, prompt=clip.prompt)


def _autocast_dtype(config: FinetuneConfig, model) -> Optional[torch.dtype]:
    if model.device.type != "cuda":
        return None
    return {"auto": model.dtype if model.dtype != torch.float32 else None, "fp16": torch.float16,
            "bf16": torch.bfloat16, "no": None}[config.mixed_precision]


def training_loss(unet, clip: EncodedClip, alphas_cumprod: torch.Tensor, gen: torch.Generator,
                  empty_context: torch.Tensor, cond_dropout: float) -> torch.Tensor:
    """One epsilon-MSE sample: a random timestep for the clip, fresh noise, conditions dropped at random."""
    device = clip.latents.device
    v = clip.camera.shape[0]
    t = int(torch.randint(0, alphas_cumprod.shape[0], (1,), generator=gen))
    noise = torch.randn(clip.latents.shape, generator=gen).to(device)
    a = alphas_cumprod[t].to(device)
    noisy = a.sqrt() * clip.latents + (1 - a).sqrt() * noise
    drop_text, drop_image = (torch.rand(2, generator=gen) < cond_dropout).tolist()
    context = empty_context if drop_text else clip.context
    tokens = torch.zeros_like(clip.image_tokens) if drop_image else clip.image_tokens
    eps = unet(noisy, torch.tensor([t], device=device), context, clip.camera, image_tokens=tokens, num_views=v,
               num_frames=clip.num_frames, mask=clip.mask)
    return torch.nn.functional.mse_loss(eps.float(), noise)


def finetune_motion(model, clips: Sequence[TrainingClip], config: FinetuneConfig = FinetuneConfig(),
                    on_step: OnStep = no_progress, checkpoint: Optional[str | Path] = None,
                    resume: bool = True, metadata: Optional[dict] = None,
                    preview: Optional[Callable[[], np.ndarray]] = None) -> FinetuneResult:
    """Trains ``model.unet``'s motion modules in place on ``clips``. With ``checkpoint`` (a .safetensors
    path) the modules are saved there every ``checkpoint_every`` steps and at the end, and an existing file
    from an earlier run of the same settings is resumed (its ``steps`` metadata says where to continue).

    ``on_step(step, steps, preview)`` is called after every optimiser step (``preview()`` every 10 steps when
    given). A NaN/Inf loss stops training with a DivergenceError; the last checkpoint stays as it was."""
    from ..diffusion.checkpoints import apply_motion_module, read_motion_module, save_motion_module
    from ..diffusion.encoders import encode_text
    from ..diffusion.motion import set_trainable
    from ..diffusion.schedule import alphas_cumprod

    if not clips:
        raise InputError("no training clips")
    if config.steps < 1 or config.batch_size < 1 or config.grad_accumulation < 1:
        raise InputError("steps, batch_size and grad_accumulation must be at least 1")
    unet = model.unet
    if not unet.is_inflated:
        unet.inflate()
    result = FinetuneResult()
    start_step = 0
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and resume and ckpt.is_file():
        _, meta, _ = read_motion_module(ckpt)
        start_step = int(json.loads(meta.get("steps", "0")))
        apply_motion_module(unet, ckpt)
        result.notes.append(f"resumed from {ckpt.name} at step {start_step}")
        log.info("resuming motion-module training from %s at step %d", ckpt, start_step)

    trainable = set_trainable(unet, config.train_query_projections)
    params = [p for n, p in unet.named_parameters() if p.requires_grad]
    for p in params:  # float32 master weights for what trains
        p.data = p.data.float()
    encoded = [encode_clip(model, c) for c in clips]
    views = {e.camera.shape[0] for e in encoded}
    if len(views) != 1:
        raise InputError(f"clips have different view counts {sorted(views)}; use clips rendered with one rig")
    with torch.no_grad():
        empty = encode_text(model.text_encoder, model.tokenizer, [""]).to(model.dtype)
    acp = alphas_cumprod(model.scheduler_config)
    gen = torch.Generator().manual_seed(config.seed + start_step)
    opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    amp = _autocast_dtype(config, model)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    was_training = unet.training
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    t0 = time.perf_counter()
    meta_base = dict(metadata or {}, config=asdict(config), prompts=sorted({c.prompt for c in clips}),
                     trainable_tensors=len(trainable))

    def save(step: int) -> None:
        if ckpt is not None:
            save_motion_module(unet, ckpt, dict(meta_base, steps=step))
            result.checkpoint = str(ckpt)

    try:
        with torch.inference_mode(False), torch.enable_grad():
            for step in range(start_step, config.steps):
                opt.zero_grad(set_to_none=True)
                total = 0.0
                for _ in range(config.grad_accumulation):
                    idx = torch.randint(0, len(encoded), (config.batch_size,), generator=gen).tolist()
                    for i in idx:
                        with torch.autocast(model.device.type, dtype=amp or torch.float32, enabled=amp is not None):
                            loss = training_loss(unet, encoded[i], acp, gen, empty, config.cond_dropout)
                        loss = loss / (config.batch_size * config.grad_accumulation)
                        scaler.scale(loss).backward()
                        total += float(loss.detach())
                if not math.isfinite(total):
                    raise DivergenceError(
                        f"the training loss became {total} at step {step + 1}; "
                        + (f"the checkpoint {ckpt.name} keeps the last good state; " if result.checkpoint else "")
                        + "lower the learning rate or train in bf16/fp32")
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                scaler.step(opt)
                scaler.update()
                result.losses.append(total)
                result.steps_done = step + 1
                if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
                    save(step + 1)
                on_step(step + 1, config.steps, preview() if preview and (step + 1) % 10 == 0 else None)
        save(result.steps_done)
    finally:
        if config.gradient_checkpointing:
            unet.disable_gradient_checkpointing()
        unet.train(was_training)
        for p in params:  # back to the model's compute dtype
            p.data = p.data.to(model.dtype)
        result.seconds = time.perf_counter() - t0
    return result
